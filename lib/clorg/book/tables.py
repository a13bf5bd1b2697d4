"""The book's tables and verdict lines: stored records turned into what a reader reads. Display labels
are made here (and in the figures), from the records' fields; nothing downstream parses them.
"""

from __future__ import annotations

import pandas as pd

from ..analysis import classify as C
from ..analysis import dynamics as D
from ..analysis import records as R
from ..core import paper
from ..features import label
from . import claims

_NAMES = {R.CH: "CH", R.RLD: "RLD T={:g}", R.CHI: "CHI k={}", R.KNN: "kNN k={}", R.MAP_PURITY: "purity (k=10), perplexity {:,g}",
          R.MAP_PURITY_WIDE: "global purity, perplexity {:,g}"}


def _column(metric: str, parameter) -> str:
    name = _NAMES.get(metric, metric)
    return name.format(parameter) if parameter is not None and "{" in name else name


def _row_names(records: list[dict]) -> dict:
    """A row name per feature set: its label, with the epoch where one run has several measured epochs
    (an extra snapshot beside the last, e.g. the authors' supervised ResNet-18 at epoch 120)."""
    epochs: dict = {}
    for r in records:
        if r["epoch"] != 0:
            epochs.setdefault(label(r), set()).add(r["epoch"])
    return {id(r): label(r) + (f" (epoch {r['epoch']})" if len(epochs.get(label(r), ())) > 1 else "") for r in records}


def metric_table(records: list[dict], metrics=None) -> pd.DataFrame:
    """One row per feature set, one column per (metric, parameter) in the records' order."""
    names = _row_names(records)
    rows: dict[str, dict] = {}
    for r in records:
        if metrics and r["metric"] not in metrics:
            continue
        rows.setdefault(names[id(r)], {})[_column(r["metric"], r["parameter"])] = r["value"]
    return pd.DataFrame.from_dict(rows, orient="index")


def chi_beside_authors(records: list[dict]) -> pd.DataFrame:
    """Our CHI(k) at the authors' k values (the nearest k below where ours is capped) beside their ViT."""
    ks = sorted(R.parameters(records, metric=R.CHI))
    rows = {f"authors ViT {kind}": dict(zip(paper.CHI_KS, v)) for kind, v in paper.CHI_VIT.items()}
    for r in R.select(records, metric=R.CHI):
        rows.setdefault(label(r), {})
    for name in list(rows)[2:]:
        for k in paper.CHI_KS:
            used = max([x for x in ks if x <= k], default=None)
            match = [r for r in R.select(records, metric=R.CHI, parameter=used) if label(r) == name]
            rows[name][k] = match[0]["value"] if match else None
    return pd.DataFrame.from_dict(rows, orient="index").rename(columns=lambda k: f"k={k}")


def _sets(records: list[dict]) -> list[dict]:
    out = []
    for r in records:
        ident = {k: r[k] for k in ("encoder", "method", "schedule", "epoch")}
        if ident not in out:
            out.append(ident)
    return out


def classifier_table(records: list[dict]) -> pd.DataFrame:
    """Per feature set and head: honest test accuracy (mean ± std over seeds, %), the authors' protocol
    (%), the parameter count; the GCN at each temperature."""
    heads = [("linear", None)] + [("gcn", t) for t in R.parameters(records, metric=R.head_metric("gcn", R.TEST))] \
        + [("label_spreading", None)]
    rows = {}
    for s in _sets(records):
        row = {}
        for head, t in heads:
            stats = C.summary(records, head, t, **s)
            if not stats:
                continue
            name = head.replace("_", " ") + (f" T={t:g}" if t is not None else "")
            row[f"{name}: honest %"] = f"{100 * stats['test_mean']:.1f} ± {100 * stats['test_std']:.1f}"
            if stats["authors"] is not None:
                row[f"{name}: authors' protocol %"] = round(100 * stats["authors"], 1)
            if stats["parameters"]:
                row[f"{name}: parameters"] = int(stats["parameters"])
        rows[label(s)] = row
    return pd.DataFrame.from_dict(rows, orient="index")


def graph_table(records: list[dict]) -> pd.DataFrame:
    """The GCN on the dense graph and on top-k graphs (rows), honest (mean ± std) and authors' accuracy."""
    rows = {}
    for g in R.parameters(records, metric=R.head_metric("gcn", R.TEST)):
        stats = C.summary(records, "gcn", g)
        rows["dense (the authors')" if g == "dense" else f"top-{g}, (A + Aᵀ)/2"] = {
            "honest test %": f"{100 * stats['test_mean']:.2f} ± {100 * stats['test_std']:.2f}",
            "authors' protocol %": round(100 * stats["authors"], 2), "validation %": round(100 * stats["val_mean"], 2)}
    return pd.DataFrame.from_dict(rows, orient="index")


def heads_beside_authors(records: list[dict], temperatures) -> pd.DataFrame:
    """The authors' saved head accuracies (their protocol, %) beside ours under the same protocol."""
    t_cols = [f"GCN T={t:g}" for t in temperatures]
    rows = {"authors: contrastive ViT": {"linear": paper.HEADS_VIT_CONTRASTIVE["linear"],
                                         f"GCN T={paper.HEADS_VIT_GCN_TEMPERATURE:g}": paper.HEADS_VIT_CONTRASTIVE["gcn"]},
            "authors: random-init ViT": {"linear": paper.RANDOM_VIT["linear"],
                                         **{f"GCN T={t:g}": v for t, v in paper.RANDOM_VIT["gcn"].items()}}}
    for s in _sets(records):
        row = {"linear": 100 * (C.summary(records, "linear", None, **s).get("authors") or float("nan"))}
        for t, col in zip(temperatures, t_cols):
            row[col] = 100 * (C.summary(records, "gcn", t, **s).get("authors") or float("nan"))
        rows[f"ours: {label(s)}"] = row
    return pd.DataFrame.from_dict(rows, orient="index").round(2)


def dynamics_table(records: list[dict]) -> pd.DataFrame:
    """Per run: CH and RLD at each temperature and kNN accuracy at the first, peak and last snapshot,
    beside the authors' quoted points."""
    rows = {}
    temps = sorted(R.parameters(records, metric=R.RLD))
    k = (R.parameters(records, metric=R.KNN) or [None])[0]
    for run in D.runs_in(R.select(records, metric=R.CH)):
        name = f"{run['encoder']} {run['method']}, {run['schedule']}"
        row = {}
        for metric, parameter in [(R.CH, None)] + [(R.RLD, t) for t in temps] + [(R.KNN, k)]:
            tr = D.trend(D.series(records, metric, parameter, **run))
            col = _column(metric, parameter)
            row[f"{col}: first"] = f"{tr['first'][1]:.4g} (e{tr['first'][0]})"
            row[f"{col}: peak"] = f"{tr['peak'][1]:.4g} (e{tr['peak'][0]})"
            row[f"{col}: last"] = f"{tr['last'][1]:.4g} (e{tr['last'][0]})"
        rows[name] = row
    ch, rld = paper.DYNAMICS_CH, paper.DYNAMICS_RLD[0.1]
    rows[f"authors: ViT, {paper.DYNAMICS_EPOCHS} epochs"] = {
        "CH: first": f"{ch[0][1]:g} (e{ch[0][0]})", "CH: peak": f"{ch[1][1]:g} (e{ch[1][0]}, after e0)",
        "CH: last": f"{ch[-1][1]:g} (e{ch[-1][0]})", "RLD T=0.1: first": f"{rld[0][1]:g} (e0)",
        "RLD T=0.1: peak": f"{rld[1][1]:g} (e{rld[1][0]})", "RLD T=0.1: last": f"{rld[-1][1]:g} (e{rld[-1][0]})"}
    return pd.DataFrame.from_dict(rows, orient="index").T


def schedule_experiment(records: list[dict]) -> list[str]:
    """The verdict lines of the learning-rate experiment: along each run, does CH fall while RLD at the
    smallest temperature rises (the paper's trend)? Then: does that happen under the authors' curve and
    not under cosine?"""
    temps = sorted(R.parameters(records, metric=R.RLD))
    lines, held = [], {}
    for run in D.runs_in(R.select(records, metric=R.CH)):
        f = D.follows_paper(records, temps[0], **run)
        ch, rld = f["CH"], f["RLD"]
        held.setdefault((run["encoder"], run["method"]), {})[run["schedule"]] = f["holds"]
        lines.append(
            f"{run['encoder']} {run['method']}, {run['schedule']} schedule: CH {ch['first'][1]:.1f} (e{ch['first'][0]}) -> "
            f"peak {ch['peak'][1]:.1f} (e{ch['peak'][0]}) -> {ch['last'][1]:.1f} (e{ch['last'][0]}), "
            f"{'falls' if f['CH falls'] else 'does NOT fall'} below its start ({ch['last'][1] / ch['peak'][1] - 1:+.1%} from "
            f"its peak; the authors' {paper.DYNAMICS_CH[-1][1] / paper.DYNAMICS_CH[1][1] - 1:+.1%}); "
            f"RLD({temps[0]:g}) {rld['first'][1]:.3f} -> peak "
            f"{rld['peak'][1]:.3f} (e{rld['peak'][0]}) -> {rld['last'][1]:.3f}, "
            f"{'rises' if f['RLD rises'] else 'does NOT rise'}: the paper's trend "
            f"{'holds' if f['holds'] else 'does NOT hold'}")
    for (encoder, method), by_schedule in held.items():  # the comparison is within one encoder and method
        literal = [s for s in by_schedule if s.startswith("paper")]
        if not literal or "cosine" not in by_schedule:
            continue
        s, paper_holds, cosine_holds = literal[0], by_schedule[literal[0]], by_schedule["cosine"]
        who = f"{encoder} {method}"
        if paper_holds and not cosine_holds:
            lines.append(f"-> {who}: the trend appears under the authors' curve ({s}) and not under cosine: here "
                         f"it comes with the rising learning rate, not with the method alone")
        elif paper_holds and cosine_holds:
            lines.append(f"-> {who}: the trend appears under both schedules: here it comes with the method, "
                         f"whatever the learning rate does")
        elif not paper_holds and not cosine_holds:
            lines.append(f"-> {who}: the trend appears under neither schedule at this scale")
        else:
            lines.append(f"-> {who}: the trend appears under cosine but not under the authors' curve ({s})")
    return lines


def claim_lines(rows: list[dict], claim: int) -> list[str]:
    """One line per comparison and one verdict line for a claim, as the chapters print them."""
    out = [f"claim {claim}, {r['encoder']} {r['contrastive']}: "
           f"{ {True: 'holds', False: 'does NOT hold', None: 'not checked'}[r['holds']]} ({r['numbers']})"
           for r in rows]
    return out + [f"claim {claim} on this profile: {claims.verdict(rows, claim)}"]


def pairs_table(comparisons: list[dict], class_names) -> pd.DataFrame:
    """The most similar cross-class pairs of each contrastive run with their CL and SL cosines."""
    frames = {}
    for comp in comparisons:
        t = pd.DataFrame(comp["pairs"])
        if t.empty:
            continue
        t["class i"] = [class_names[k] for k in t["label_i"]]
        t["class j"] = [class_names[k] for k in t["label_j"]]
        frames[label(comp)] = t[["i", "j", "class i", "class j", "cosine", "sl_cosine"]].rename(
            columns={"cosine": "CL cos", "sl_cosine": "SL cos"})
    return pd.concat(frames, names=["run", "rank"]).round(4) if frames else pd.DataFrame()


def regime_frame(regime: list[dict]) -> pd.DataFrame:
    """The regime table: each encoder's kNN accuracy and CHI(1) on training features beside the authors'."""
    if not regime:
        return pd.DataFrame()
    t = pd.DataFrame(regime)
    t["features"] = [label({**r, "schedule": None}) for r in regime]
    return t.set_index("features")[["epochs", "knn_accuracy", "chi1_train", "authors_chi1", "threshold", "in_regime"]]
