"""The reproduction report: every claim of SPEC section 7 and every number of SPEC section 6, with the
paper's value, ours and a verdict, collected from a profile's results store (results/<profile>/); and
the machine-readable summary of a build (``results/<profile>/summary.json``) with the findings block
that opens the book.

Verdicts:

- **reproduced** / **not reproduced**: our numbers are comparable with the paper's and agree (or not)
  within the tolerance stated in the row (claims: the SPEC's thresholds, :mod:`clorg.book.claims`);
- **inconclusive**: the deciding margin lies within the seeds' spread or the test set's binomial
  standard error;
- **not comparable**: the setting differs in what the number depends on (another encoder, a subset of
  the data, a much shorter training); the reason says which;
- **missing**: the result was not computed for this profile; the reason gives the command.

Each claim also says whether the encoders were in the regime it is about (:func:`clorg.book.claims.regime`):
a verdict on encoders far from the authors' says little about the paper.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ..analysis import dynamics as D
from ..analysis import records as R
from ..core import paper, paths
from ..core.atomic import write_json
from ..core.config import kind_of
from . import chapters, claims, store

REPORTED = ("toy", "training", "embeddings", "geometry", "tsne_purity", "classifiers", "gcn_graphs", "dynamics",
            "near_duplicates")

# tolerances for "reproduced" on the numbers of SPEC section 6
TOL_CHI = 0.05        # absolute, CHI(k)
TOL_ACCURACY = 2.0    # percentage points
TOL_RLD = 0.01        # absolute
TOL_CH = 0.10         # relative
TOY_Z = 3.0           # the authors' toy values within 3 of our seed standard deviations
VERDICTS = ("reproduced", "inconclusive", "not reproduced", "not comparable", "missing")


def collect(cfg: dict, data) -> dict[str, store.Status]:
    """Every stored result of the profile, ``{name: Status}``; a readable one carries ``entry``."""
    return {name: chapters.status(cfg, data, name) for name in REPORTED}


def _result(collected: dict, name: str):
    st = collected.get(name)
    return st.entry["result"] if st is not None and st.usable else None


def missing(collected: dict, profile: str) -> pd.DataFrame:
    rows = [{"result": f"results/{profile}/{name}", "state": st.detail, "produced by": chapters.producer(name),
             "command": chapters.command(name, profile)} for name, st in collected.items() if not st.usable]
    return pd.DataFrame(rows, columns=["result", "state", "produced by", "command"])


def provenance(collected: dict) -> pd.DataFrame:
    """When, where and from which commit each stored result was computed, and in how long."""
    rows = []
    for name, st in collected.items():
        if not st.usable:
            continue
        m = st.entry["meta"]
        d = m["fingerprint"]["data"]
        rows.append({"result": name, "computed": m["saved_at"], "commit": m["commit"][:12], "hardware": m["hardware"],
                     "compute (s)": m["compute_seconds"], "code": m["fingerprint"]["code"]["sha256"],
                     "state": "current" if st.kind == "current" else st.detail,
                     "data sha256": d["sha256"][:16] if d else "(no data)"})
    return pd.DataFrame(rows)


def runs(collected: dict) -> pd.DataFrame:
    """The training runs behind the numbers: epochs, wall time, device and hardware of each."""
    res = _result(collected, "training")
    return runs_table(res) if res is not None else pd.DataFrame()


def runs_table(training: dict) -> pd.DataFrame:
    """The training chapter's stored runs as a table: schedule, epochs, time, throughput, loss, hardware."""
    rows = []
    for r in training["runs"]:
        hw = r["hardware"]
        gpu = f"; GPU {hw['gpu']}" if hw.get("gpu") else ""
        rows.append({"encoder": r["encoder"], "method": r["method"], "schedule": r["schedule"],
                     "epochs": r["epochs_done"] if r["epochs_done"] == r["epochs"] else
                     f"{r['epochs_done']} of {r['epochs']} (stopped early)", "batch": r["batch_size"],
                     "parameters": r["parameters"], "train time (min)": round(r["train_seconds"] / 60, 1),
                     "images/s": round(r["images_per_s"]), "final loss": None if r["final_loss"] is None else round(r["final_loss"], 4),
                     "hardware": f"{hw['cpu']} ({hw['cores']} cores){gpu}; {r['processes']} process(es) on {r['device']}"})
    return pd.DataFrame(rows)


# ============================================ comparability ===========================================


def _setting(cfg: dict, data, encoder: str) -> str | None:
    """Why features of ``encoder`` under this profile cannot be compared with the paper's, or None."""
    reasons = []
    if encoder not in cfg["train"]["encoders"]:
        reasons.append(f"this profile trains no {encoder}")
    elif cfg["train"]["width_scale"] != 1.0:
        reasons.append(f"our {encoder} is at width x{cfg['train']['width_scale']:g}")
    summary = data.summary()
    if summary["name"] != "cifar10" or summary["train_images"] != 50_000:
        reasons.append(f"our data is {summary['name']} with {summary['train_images']:,} training images, "
                       f"not CIFAR-10's 50,000")
    return "; ".join(reasons) or None


def _epochs_note(cfg: dict, method: str) -> str:
    kind = kind_of(method)
    ours, theirs = cfg["train"][f"{kind}_epochs"], paper.SCHEDULE[kind]["analysed_epoch"]
    return "" if ours >= theirs else f"our {kind} run has {ours} epochs, theirs {theirs}"


def _row(section, what, theirs, ours, verdict, reason=""):
    return {"section": section, "what": what, "paper": theirs, "ours": ours, "verdict": verdict, "reason": reason}


def _missing_row(section, what, theirs, name, profile):
    return _row(section, what, theirs, "—", "missing", f"run `{chapters.command(name, profile)}`")


def _close(ours: float, theirs: float, tol: float, relative: bool = False) -> bool:
    return abs(ours - theirs) <= (tol * abs(theirs) if relative else tol)


# ============================================= section 6 =============================================


def numbers(collected: dict, cfg: dict, data) -> pd.DataFrame:
    """Every number of SPEC section 6 beside ours, with a verdict."""
    profile = cfg["profile"]["name"]
    rows = _toy_rows(_result(collected, "toy"), profile)
    rows += _chi_rows(_result(collected, "geometry"), cfg, data)
    rows += _heads_rows(_result(collected, "classifiers"), cfg, data)
    rows += _random_rows(_result(collected, "geometry"), _result(collected, "classifiers"), cfg, data)
    rows += _dynamics_rows(_result(collected, "dynamics"), cfg)
    return pd.DataFrame(rows)


def _toy_rows(res, profile):
    if res is None:
        return [_missing_row("toy figure", "RLD and CH per panel", "12 values", "toy", profile)]
    rows = []
    n = res["seeds"]
    for r in res["comparison"]:
        ours = f"{r['ours mean']:.3g} ± {r['ours sd']:.2g} ({r['ours min']:.3g} to {r['ours max']:.3g}, {n} seeds)"
        theirs = f"{r['authors run 1']:g} / {r['authors run 2']:g}"
        z = r["max |z|"]
        ok = r["consistent"] or (z == z and z <= TOY_Z)
        why = "inside our range over seeds" if r["consistent"] else f"farther value {z:.1f} of our sd from our mean"
        rows.append(_row("toy figure", f"{r['panel']} {r['metric']}", theirs, ours,
                         "reproduced" if ok else "not reproduced", why))
    return rows


def _chi_rows(res, cfg, data):
    if res is None:
        return [_missing_row("CHI", "CHI(k) of the ViT", "10 values", "geometry", cfg["profile"]["name"])]
    records, rows = res["records"], []
    setting = _setting(cfg, data, "vit")
    ks = sorted(R.parameters(records, metric=R.CHI))
    for kind, values in paper.CHI_VIT.items():
        method = "supervised" if kind == "supervised" else "moco_queue"
        for k, theirs in zip(paper.CHI_KS, values):
            name = f"CHI(k), ViT {kind}, k={k}"
            used = max([x for x in ks if x <= k], default=None)
            ours = R.value(claims.final_epochs(records), encoder="vit", method=method, metric=R.CHI,
                           parameter=used) if used is not None else None
            if ours is None or setting:
                rows.append(_row("CHI", name, theirs, "—", "not comparable", setting or f"no vit {method} run"))
                continue
            note = "; ".join(filter(None, [_epochs_note(cfg, method), f"k={used}" if used != k else "",
                                           f"tolerance ±{TOL_CHI}"]))
            rows.append(_row("CHI", name, theirs, round(ours, 3),
                             "reproduced" if _close(ours, theirs, TOL_CHI) else "not reproduced", note))
    return rows


def _heads_rows(res, cfg, data):
    if res is None:
        return [_missing_row("heads", "linear vs GCN, contrastive ViT", "86.43 / 85.74 %", "classifiers",
                             cfg["profile"]["name"])]
    setting = _setting(cfg, data, "vit")
    finals = claims.final_epochs(res["records"])
    t = paper.HEADS_VIT_GCN_TEMPERATURE
    rows = []
    for head, parameter in (("linear", None), ("gcn", t)):
        theirs = paper.HEADS_VIT_CONTRASTIVE[head]
        what = f"{head}{f' T={t:g}' if parameter else ''} on contrastive ViT (authors' protocol), %"
        ours = R.value(finals, encoder="vit", method="moco_queue", metric=R.head_metric(head, R.AUTHORS),
                       parameter=parameter)
        if ours is None or setting:
            rows.append(_row("heads", what, theirs, "—", "not comparable", setting or "no vit moco_queue run"))
            continue
        note = "; ".join(filter(None, [_epochs_note(cfg, "moco_queue"), f"tolerance ±{TOL_ACCURACY:g} points"]))
        rows.append(_row("heads", what, theirs, round(100 * ours, 2),
                         "reproduced" if _close(100 * ours, theirs, TOL_ACCURACY) else "not reproduced", note))
    return rows


def _random_rows(geo, heads, cfg, data):
    setting = _setting(cfg, data, "vit")
    r = paper.RANDOM_VIT
    g = [x for x in geo["records"] if x["epoch"] == 0 and x["encoder"] == "vit"] if geo else []
    h = [x for x in heads["records"] if x["epoch"] == 0 and x["encoder"] == "vit"] if heads else []

    def acc(head, parameter=None):  # the authors' protocol, as they measured it, in %
        v = R.value(h, metric=R.head_metric(head, R.AUTHORS), parameter=parameter)
        return None if v is None else 100 * v

    wanted = [("CH", r["ch"], "geometry", R.value(g, metric=R.CH), TOL_CH, True)]
    wanted += [(f"RLD T={t:g}", v, "geometry", R.value(g, metric=R.RLD, parameter=t), TOL_RLD, False)
               for t, v in r["rld"].items()]
    wanted += [("linear test, % (authors' protocol)", r["linear"], "classifiers", acc("linear"), TOL_ACCURACY, False)]
    wanted += [(f"GCN T={t:g} test, % (authors' protocol)", v, "classifiers", acc("gcn", t), TOL_ACCURACY, False)
               for t, v in r["gcn"].items()]
    rows = []
    for what, theirs, source, ours, tol, relative in wanted:
        what = f"random-init ViT {what}"
        if (geo if source == "geometry" else heads) is None:
            rows.append(_missing_row("random init", what, theirs, source, cfg["profile"]["name"]))
        elif ours is None or setting:
            rows.append(_row("random init", what, theirs, "—", "not comparable", setting or "not computed here"))
        else:
            tol_text = f"tolerance ±{tol:.0%}" if relative else f"tolerance ±{tol:g}"
            rows.append(_row("random init", what, theirs, round(ours, 4),
                             "reproduced" if _close(ours, theirs, tol, relative) else "not reproduced", tol_text))
    return rows


def _path(points):
    return " → ".join(f"{v:g} (e{e})" for e, v in points)


def _dynamics_rows(res, cfg):
    theirs = (f"CH {_path(paper.DYNAMICS_CH)}; RLD(0.1) {_path(paper.DYNAMICS_RLD[0.1])}; "
              f"RLD(1) < {paper.DYNAMICS_RLD1_BOUND:g}")
    if res is None:
        return [_missing_row("dynamics", "CH and RLD over training", theirs, "dynamics", cfg["profile"]["name"])]
    rows = []
    reason = ("levels not comparable (their ViT, 1,200 epochs, an undocumented CIFAR-10 variant); the trend "
              "is: CH ends below its epoch-0 value while RLD(0.1) ends above its own")
    records = res["records"]
    temps = sorted(R.parameters(records, metric=R.RLD))
    for run in D.runs_in(R.select(records, metric=R.CH)):
        f = D.follows_paper(records, temps[0], **run)
        broad = D.trend(D.series(records, R.RLD, temps[-1], **run))
        ch, local = f["CH"], f["RLD"]
        ours = (f"CH {ch['first'][1]:.0f} (e{ch['first'][0]}) → peak {ch['peak'][1]:.0f} (e{ch['peak'][0]}) → "
                f"{ch['last'][1]:.0f} (e{ch['last'][0]}); RLD({temps[0]:g}) {local['first'][1]:.3f} → "
                f"{local['last'][1]:.3f}; RLD({temps[-1]:g}) at most {broad['peak'][1]:.3f}")
        rows.append(_row("dynamics", f"trend over training, {run['encoder']} {run['method']} ({run['schedule']} "
                         f"schedule)", theirs, ours, "reproduced" if f["holds"] else "not reproduced", reason))
    return rows


# ============================================= section 7 =============================================

PAPER_EVIDENCE = {
    1: "ViT: CL 0.873 → 0.527 (drop 0.346); SL 0.990 → 0.988 (drop 0.002)",
    2: "stated for ResNet-18, ResNet-101 and ViT",
    3: "random ViT RLD(1) 0.0137 vs RLD(0.1) 0.1255; CL ViT RLD(0.1) 0.75 with RLD(1) < 0.02",
    4: "their saved ViT run: GCN 85.74 % vs linear 86.43 % (test-selected), 652 vs 5,130 parameters",
    5: "figure: SL ten blobs / ring of arcs; CL fragments / one mixed disc",
    6: (f"most similar cross-class pair under CL ResNet-101: CL cosine {paper.NEAR_DUPLICATE_RESNET101['cl_cosine']}, "
        f"SL cosine {paper.NEAR_DUPLICATE_RESNET101['sl_cosine']}"),
}


def claim_rows(collected: dict, cfg: dict, data) -> dict[int, list[dict]]:
    """Each claim's comparisons (:mod:`clorg.book.claims`) from the stored results; a claim whose result
    is missing maps to None."""
    geo, heads = _result(collected, "geometry"), _result(collected, "classifiers")
    purity, nd = _result(collected, "tsne_purity"), _result(collected, "near_duplicates")
    out = {}
    for n in (1, 2, 3):
        out[n] = getattr(claims, f"claim{n}")(geo["records"]) if geo else None
    out[4] = claims.claim4(heads["records"], data.summary()["test_images"]) if heads else None
    out[5] = claims.claim5(purity["records"]) if purity else None
    out[6] = claims.claim6(nd["comparisons"], cfg["near_duplicates"]["threshold"]) if nd else None
    return out


def _regime_of(regime: list[dict], encoder: str, method: str) -> bool | None:
    kinds = [r["in_regime"] for r in regime if r["encoder"] == encoder and r["method"] in (method, "supervised")]
    return all(kinds) if kinds else None


def claim_table(collected: dict, cfg: dict, data) -> pd.DataFrame:
    """Claims 1-6: statement, the paper's evidence, our numbers, the verdict and whether the encoders
    were in the regime the claim is about."""
    profile = cfg["profile"]["name"]
    source = {1: "geometry", 2: "geometry", 3: "geometry", 4: "classifiers", 5: "tsne_purity", 6: "near_duplicates"}
    reg = regime_table(collected)
    rows = []
    for n, found in claim_rows(collected, cfg, data).items():
        row = {"claim": n, "statement": claims.STATEMENTS[n], "paper": PAPER_EVIDENCE[n]}
        if found is None:
            rows.append({**row, "ours": "—", "verdict": "missing", "in regime": None,
                         "reason": f"run `{chapters.command(source[n], profile)}`"})
            continue
        verdict = claims.verdict(found, n)
        regimes = [_regime_of(reg, r["encoder"], r["contrastive"]) for r in found]
        in_regime = all(regimes) if regimes and None not in regimes else None
        ours = "; ".join(f"{r['encoder']} {r['contrastive']}: {r['numbers']}" for r in found) or "—"
        reason = "" if found else "the profile lacks a contrastive or the supervised run"
        if verdict == "inconclusive":
            reason = "a deciding margin lies within the seeds' spread or the test set's standard error"
        rows.append({**row, "ours": ours, "verdict": verdict, "in regime": in_regime, "reason": reason})
    return pd.DataFrame(rows)


def regime_table(collected: dict) -> list[dict]:
    """How close each encoder is to the authors' regime (:func:`clorg.book.claims.regime`)."""
    geo, emb = _result(collected, "geometry"), _result(collected, "embeddings")
    if geo is None or emb is None:
        return []
    return claims.regime(geo["records"], emb["records"])


# ============================================== summary ===============================================


def summary(collected: dict, cfg: dict, data, build_seconds: float | None) -> dict:
    """The machine-readable summary of a build (``results/<profile>/summary.json``)."""
    reg = regime_table(collected)
    table = claim_table(collected, cfg, data)
    rows = claim_rows(collected, cfg, data)
    return {
        "profile": cfg["profile"]["name"], "dataset": data.summary()["name"],
        # epochs: the epoch the encoder was measured at, its last (where a deadline stopped it, if it did)
        "encoders": [{"encoder": r["encoder"], "method": r["method"], "epochs": r["epochs"],
                      "knn_accuracy": r["knn_accuracy"], "chi1_train": r["chi1_train"], "in_regime": r["in_regime"]}
                     for r in reg],
        "claims": [{"claim": int(row["claim"]), "verdict": row["verdict"],
                    "in_regime": None if row["in regime"] is None else bool(row["in regime"]),
                    "statement": row["statement"], "deciding": "; ".join(r["deciding"] for r in rows[int(row["claim"])] or []) or "—"}
                   for row in table.to_dict("records")],
        "build_seconds": None if build_seconds is None else round(float(build_seconds), 1),
    }


SUMMARY_KEYS = ("profile", "dataset", "encoders", "claims", "build_seconds")


def write_summary(cfg: dict, summary_: dict) -> Path:
    path = store.results_dir(cfg["profile"]["name"]) / "summary.json"
    write_json(path, summary_)
    return path


def read_summary(path: Path) -> dict | None:
    """A summary.json, checked for its keys; None when absent; ValueError naming the file when broken."""
    if not path.is_file():
        return None
    try:
        out = json.loads(path.read_text())
    except ValueError as exc:
        raise ValueError(f"{path} cannot be read ({exc}); re-run notebooks/09_report.ipynb to write it again") from exc
    if not isinstance(out, dict):
        raise ValueError(f"{path} is not a JSON object; re-run notebooks/09_report.ipynb to write it again")
    lacking = [k for k in SUMMARY_KEYS if k not in out]
    if lacking:
        raise ValueError(f"{path} lacks {lacking}; re-run notebooks/09_report.ipynb to write it again")
    return out


def build_seconds(profile: str) -> float | None:
    """The wall time of the chapters executed so far in this build (build/<profile>/execution.json)."""
    path = paths.ROOT / "build" / profile / "execution.json"
    try:
        return sum(n["seconds"] for n in json.loads(path.read_text())["notebooks"])
    except (OSError, ValueError, KeyError):
        return None


def findings_markdown(summary_: dict, link: str | None = None) -> str:
    """The "What we found" block: each claim, its verdict and the number that decides it."""
    lines = [f"On the `{summary_['profile']}` profile ({summary_['dataset']}):", ""]
    for c in summary_["claims"]:
        regime = {True: "", False: " (encoders not in the paper's regime)", None: ""}[c["in_regime"]]
        lines.append(f"- **Claim {c['claim']}: {c['verdict']}**{regime}. {c['statement']}. Ours: {c['deciding']}.")
    encs = [f"{e['encoder']} {e['method']}: kNN {e['knn_accuracy']:.1%}, CHI(1) {e['chi1_train']:.3f}"
            for e in summary_["encoders"] if e["knn_accuracy"] is not None]
    if encs:
        lines += ["", "Encoders: " + "; ".join(encs) + "."]
    if link:
        lines += ["", f"The {link} gives every number and how it was judged."]
    return "\n".join(lines) + "\n"


VERDICT_COLOURS = {"reproduced": "#d9f2d9", "inconclusive": "#fde9c8", "not reproduced": "#f8d7d7",
                   "not comparable": "#eeeeee", "missing": "#fff3cd"}


def styled(table: pd.DataFrame):
    """``table`` (claims or numbers) for the page: left-aligned, top-aligned, each verdict coloured."""
    def colour(v):
        return f"background-color: {VERDICT_COLOURS[v]}" if v in VERDICT_COLOURS else ""
    return (table.style.hide(axis="index").map(colour, subset=["verdict"])
            .set_properties(**{"text-align": "left", "vertical-align": "top"}))
