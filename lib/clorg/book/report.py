"""The reproduction report: every claim of SPEC section 7 and every number of SPEC section 6, with the
paper's value, ours and a verdict, collected from a profile's results store (results/<profile>/); and
the machine-readable summary of a build (``results/<profile>/summary.json``) with the findings block
that opens the book.

Verdicts:

- **reproduced** / **not reproduced**: for a number of SPEC section 6, ours is comparable with the paper's
  and agrees (or not) within the tolerance stated in the row (:mod:`clorg.core.criteria`); for a claim,
  its criterion of SPEC section 7 holds (or fails);
- **inconclusive** (claims): a precondition fails, a number the criterion needs is absent, or claim 4's
  interval contains 0; **direction only** (claim D): CH falls and RLD rises, by less than the criterion asks;
- **not comparable**: the setting differs in what the number depends on (another encoder, a subset of
  the data, a much shorter training); the reason says which;
- **missing**: the result was not computed for this profile; the reason gives the command.

The claims (SPEC section 7, version 2) are judged by :mod:`clorg.book.claims` on the numbers
:mod:`clorg.book.evidence` takes from the stored results, beside the authors' own numbers through the same
test; each carries whether its encoders were in the paper's regime, and a verdict out of regime is not
counted for or against the paper. How they are shown: :mod:`clorg.book.verdicts`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ..analysis import records as R
from ..core import criteria, paper, paths, variants
from ..core.atomic import write_json
from ..core.config import kind_of
from . import chapters, claims, store
from . import evidence as E
from . import verdicts as V

REPORTED = ("toy", "training", "embeddings", "geometry", "tsne", "tsne_purity", "classifiers", "gcn_graphs",
            "dynamics", "near_duplicates")

VERDICTS = claims.VERDICTS + ("not comparable", "missing")


def collect(cfg: dict, data) -> dict[str, store.Status]:
    """Every stored result of the profile, ``{name: Status}``; a readable one carries ``entry``."""
    return {name: chapters.status(cfg, data, name) for name in REPORTED}


def _result(collected: dict, name: str):
    st = collected.get(name)
    return st.entry["result"] if st is not None and st.usable else None


def stored(cfg: dict, data, name: str):
    """One stored result of the profile (perhaps from older code), or None when it is not usable."""
    return _result({name: chapters.status(cfg, data, name)}, name)


def missing(collected: dict, cfg: dict) -> pd.DataFrame:
    """The results that are not there (or not usable), each with the notebook and the command that produce
    it (the command repeats the profile's overrides)."""
    folder = paths.shown(store.results_dir(variants.folder_name(cfg)))
    rows = [{"result": f"{folder}/{name}", "state": st.detail, "produced by": chapters.producer(name),
             "command": chapters.command(name, cfg)} for name, st in collected.items() if not st.usable]
    return pd.DataFrame(rows, columns=["result", "state", "produced by", "command"])


def provenance(collected: dict) -> pd.DataFrame:
    """When, where and from which commit each stored result was computed, and in how long."""
    rows = []
    for name, st in collected.items():
        if not st.usable:
            continue
        m = st.entry["meta"]
        d = m["fingerprint"]["data"]
        # the training result only lists the runs: its time is the runs' own training time
        seconds = sum(r["train_seconds"] for r in st.entry["result"]["runs"]) if name == "training" else \
            m["compute_seconds"]
        rows.append({"result": name, "computed": m["saved_at"], "commit": m["commit"][:12], "hardware": m["hardware"],
                     "compute (s)": f"{seconds:,.1f}", "code": m["fingerprint"]["code"]["sha256"],
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
    elif cfg["train"]["width_scale"] != paper.SETTINGS["train.width_scale"][0]:
        reasons.append(f"our {encoder} is at width x{cfg['train']['width_scale']:g}")
    summary, theirs = data.summary(), paper.SETTINGS["data.dataset"][0]
    if summary["name"] != theirs or summary["train_images"] != paper.TRAIN_IMAGES:
        reasons.append(f"our data is {summary['name']} with {summary['train_images']:,} training images, "
                       f"not {theirs}'s {paper.TRAIN_IMAGES:,}")
    return "; ".join(reasons) or None


def _epochs_note(cfg: dict, method: str) -> str:
    kind = kind_of(method)
    ours, theirs = cfg["train"][f"{kind}_epochs"], paper.SCHEDULE[kind]["analysed_epoch"]
    return "" if ours >= theirs else f"our {kind} run has {ours} epochs, theirs {theirs}"


def _text(value) -> str:
    """A number of the numbers table as text: four significant digits, no "-0"; text stays as it is."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return V.number(abs(value) if value == 0 else value, ".4g")
    return str(value)


def _row(section, what, theirs, ours, verdict, reason=""):
    return {"section": section, "what": what, "paper": _text(theirs), "ours": _text(ours), "verdict": verdict,
            "reason": reason or "—"}


def _missing_row(section, what, theirs, name, cfg):
    return _row(section, what, theirs, "—", "missing", f"run `{chapters.command(name, cfg)}`")


def _close(ours: float, theirs: float, tol: float, relative: bool = False) -> bool:
    return abs(ours - theirs) <= (tol * abs(theirs) if relative else tol)


# ============================================= section 6 =============================================


def numbers(collected: dict, cfg: dict, data) -> pd.DataFrame:
    """Every number of SPEC section 6 beside ours, with a verdict."""
    rows = _toy_rows(_result(collected, "toy"), cfg)
    rows += _chi_rows(_result(collected, "geometry"), cfg, data)
    rows += _heads_rows(_result(collected, "classifiers"), cfg, data)
    rows += _random_rows(_result(collected, "geometry"), _result(collected, "classifiers"), cfg, data)
    rows += _dynamics_rows(_result(collected, "dynamics"), cfg)
    return pd.DataFrame(rows)


def _toy_rows(res, cfg):
    if res is None:
        return [_missing_row("toy figure", "RLD and CH per panel", "12 values", "toy", cfg)]
    rows = []
    n = res["seeds"]
    for r in res["comparison"]:
        ours = (f"{_text(r['ours_mean'])} ± {V.number(r['ours_sd'], '.2g')} ({_text(r['ours_min'])} to "
                f"{_text(r['ours_max'])}, {n} seeds)")
        theirs = " / ".join(_text(t) for t in r["authors"])
        z = r["max_z"]
        why = "inside our range over seeds" if r["consistent"] else f"farther value {z:.1f} of our sd from our mean"
        rows.append(_row("toy figure", f"{r['panel']} {r['metric']}", theirs, ours, toy_verdict(r), why))
    return rows


def toy_verdict(row: dict) -> str:
    """A toy panel's metric: reproduced when the authors' two values lie inside the range of our seeds, or
    within 3 of our standard deviations of our mean (the same verdict on the toy chapter and here)."""
    z = row["max_z"]
    return "reproduced" if row["consistent"] or (z == z and z <= criteria.NUMBERS_TOY_Z) else "not reproduced"


def toy_table(res: dict) -> pd.DataFrame:
    """The toy chapter's comparison with the authors' two runs, as the report judges it."""
    return pd.DataFrame(_toy_rows(res, None)).drop(columns="section").rename(
        columns={"what": "panel and metric", "paper": "the authors' two runs", "ours": "ours (mean ± sd, range)"})


def _chi_rows(res, cfg, data):
    if res is None:
        return [_missing_row("CHI", "CHI(k) of the ViT", "10 values", "geometry", cfg)]
    records, rows = res["records"], []
    setting = _setting(cfg, data, "vit")
    ks = sorted(R.parameters(records, metric=R.CHI))
    for kind, values in paper.CHI_VIT.items():
        method = "supervised" if kind == "supervised" else "moco_queue"
        for k, theirs in zip(paper.CHI_KS, values):
            name = f"CHI(k), ViT {kind}, k={k}"
            used = max([x for x in ks if x <= k], default=None)
            ours = E.at(records, "vit", method, R.CHI, used) if used is not None else None
            if ours is None or setting:
                rows.append(_row("CHI", name, theirs, "—", "not comparable", setting or f"no vit {method} run"))
                continue
            note = "; ".join(filter(None, [_epochs_note(cfg, method), f"k={used}" if used != k else "",
                                           f"tolerance ±{criteria.NUMBERS_TOL_CHI}"]))
            rows.append(_row("CHI", name, theirs, round(ours, 3),
                             "reproduced" if _close(ours, theirs, criteria.NUMBERS_TOL_CHI) else "not reproduced", note))
    return rows


def _heads_rows(res, cfg, data):
    if res is None:
        theirs = f"{paper.HEADS_VIT_CONTRASTIVE['linear']:g} / {paper.HEADS_VIT_CONTRASTIVE['gcn']:g} %"
        return [_missing_row("heads", "linear vs GCN, contrastive ViT", theirs, "classifiers", cfg)]
    setting = _setting(cfg, data, "vit")
    t = paper.HEADS_VIT_GCN_TEMPERATURE
    rows = []
    for head, parameter in (("linear", None), ("gcn", t)):
        theirs = paper.HEADS_VIT_CONTRASTIVE[head]
        what = f"{head}{f' T={t:g}' if parameter else ''} on contrastive ViT (authors' protocol), %"
        ours = E.at(res["records"], "vit", "moco_queue", R.head_metric(head, R.AUTHORS), parameter)
        if ours is None or setting:
            rows.append(_row("heads", what, theirs, "—", "not comparable", setting or "no vit moco_queue run"))
            continue
        note = "; ".join(filter(None, [_epochs_note(cfg, "moco_queue"), f"tolerance ±{criteria.NUMBERS_TOL_ACCURACY:g} points"]))
        rows.append(_row("heads", what, theirs, round(100 * ours, 2),
                         "reproduced" if _close(100 * ours, theirs, criteria.NUMBERS_TOL_ACCURACY) else "not reproduced", note))
    return rows


def _random_rows(geo, heads, cfg, data):
    setting = _setting(cfg, data, "vit")
    r = paper.RANDOM_VIT
    g = [x for x in geo["records"] if x["epoch"] == 0 and x["encoder"] == "vit"] if geo else []
    h = [x for x in heads["records"] if x["epoch"] == 0 and x["encoder"] == "vit"] if heads else []

    def acc(head, parameter=None):  # the authors' protocol, as they measured it, in %
        v = R.value(h, metric=R.head_metric(head, R.AUTHORS), parameter=parameter)
        return None if v is None else 100 * v

    wanted = [("CH", r["ch"], "geometry", R.value(g, metric=R.CH), criteria.NUMBERS_TOL_CH, True)]
    wanted += [(f"RLD T={t:g}", v, "geometry", R.value(g, metric=R.RLD, parameter=t), criteria.NUMBERS_TOL_RLD, False)
               for t, v in r["rld"].items()]
    wanted += [("linear test, % (authors' protocol)", r["linear"], "classifiers", acc("linear"), criteria.NUMBERS_TOL_ACCURACY, False)]
    wanted += [(f"GCN T={t:g} test, % (authors' protocol)", v, "classifiers", acc("gcn", t), criteria.NUMBERS_TOL_ACCURACY, False)
               for t, v in r["gcn"].items()]
    rows = []
    for what, theirs, source, ours, tol, relative in wanted:
        what = f"random-init ViT {what}"
        if (geo if source == "geometry" else heads) is None:
            rows.append(_missing_row("random init", what, theirs, source, cfg))
        elif ours is None or setting:
            rows.append(_row("random init", what, theirs, "—", "not comparable", setting or "not computed here"))
        else:
            tol_text = f"tolerance ±{tol:.0%}" if relative else f"tolerance ±{tol:g}"
            rows.append(_row("random init", what, theirs, round(ours, 4),
                             "reproduced" if _close(ours, theirs, tol, relative) else "not reproduced",
                             f"{tol_text}; {paper.VARIANT_CAVEAT}"))
    return rows



def _path(points):
    return " → ".join(f"{v:g} (e{e})" for e, v in points)


def _dynamics_rows(res, cfg):
    theirs = (f"CH {_path(paper.DYNAMICS_CH)}; RLD(0.1) {_path(paper.DYNAMICS_RLD[criteria.RLD_LOCAL_T])}; "
              f"RLD(1) < {paper.DYNAMICS_RLD1_BOUND:g}")
    if res is None:
        return [_missing_row("dynamics", "CH and RLD over training", theirs, "dynamics", cfg)]
    reason = (f"levels not comparable (their ViT, 1,200 epochs); {paper.VARIANT_CAVEAT}; judged by the trend criterion "
              f"of SPEC 7 (claim D): ")
    rows = []
    for n in E.dynamics(res, cfg["train"]["schedule"]):
        j = claims.judge_dynamics(n)
        ours = (f"CH {V.number(n['ch_first'], ',.0f')} (e0) → max {V.number(n['ch_max'], ',.0f')} → "
                f"{V.number(n['ch_last'], ',.0f')} (e{n['epochs']['CL']}); RLD(0.1) {V.number(n['rld_first'])} → "
                f"{V.number(n['rld_last'])}")
        rows.append(_row("dynamics", f"trend over training, {n['encoder']} {n['contrastive']} ({n['schedule']} "
                         f"schedule)", theirs, ours, j["verdict"],
                         reason + "; ".join(V.condition_text(c) for c in j["conditions"])))
    return rows


# ============================================= section 7 =============================================

# The stored result each claim reads, and how its numbers are taken from it (clorg.book.evidence)
EVIDENCE = {"1": E.claim1, "2": E.claim2, "3": E.claim3, "4": E.claim4, "5": E.claim5, "6": E.claim6}


def regime_rows(collected: dict) -> list[dict]:
    """Each trained run's regime gate (SPEC 7): CHI(1) on training features and kNN test accuracy at its
    analysed epoch, the thresholds and whether it is in the paper's regime."""
    rows = E.regime(_result(collected, "geometry"), _result(collected, "embeddings"))
    return [{**r, **claims.regime_gate(r["kind"], r["chi1"], r["knn"])} for r in rows]


def verdicts(collected: dict, cfg: dict) -> list[dict]:
    """Every claim of SPEC section 7 judged on the stored results (:func:`clorg.book.claims.judge`), with
    the authors' numbers through the same test, the numbers that decide it, and a reason where there is
    no verdict ("missing": the result is not stored; "not comparable": no contrastive and supervised run
    of one encoder)."""
    regimes = {(r["encoder"], r["method"]): r["in_regime"] for r in regime_rows(collected)}
    authors = E.authors()
    out = []
    for cid, claim in claims.CLAIMS.items():
        res = _result(collected, claim.source)
        if res is None:
            found, verdict, reason = [], "missing", f"run `{chapters.command(claim.source, cfg)}`"
        else:
            found = E.dynamics(res, cfg["train"]["schedule"]) if cid == "D" else EVIDENCE[cid](res)
            verdict, reason = None, "the profile lacks a contrastive or the supervised run of one encoder"
        judged = claims.judge(cid, found, regimes)
        judged.update(verdict=judged["verdict"] or verdict or "not comparable",
                      authors=claims.judge_authors(cid, authors[cid]), authors_note=E.AUTHORS_NOTES[cid])
        if not judged["comparisons"]:
            judged["reason"] = reason
        judged["deciding"] = V.deciding(judged)
        out.append(judged)
    return out


def claim_lines(cfg: dict, data, ids) -> list[str]:
    """What a chapter prints for the claims ``ids`` it feeds, judged on the results stored so far."""
    return V.chapter_lines([c for c in verdicts(collect(cfg, data), cfg) if c["claim"] in ids])


# ============================================== summary ===============================================


def summary(collected: dict, cfg: dict, data, build_seconds: float | None) -> dict:
    """The machine-readable summary of a build (``results/<profile>/summary.json``): the encoders and
    their regime, and per claim the verdict, ``in_regime``, the deciding numbers, every sub-condition of
    every comparison and the authors' numbers through the same test."""
    def claim_id(cid):
        return int(cid) if cid.isdigit() else cid

    return {
        "profile": variants.folder_name(cfg), "dataset": data.summary()["name"],
        # epochs: the epoch the encoder was measured at (its last, or the authors' analysed epoch)
        "encoders": [{"encoder": r["encoder"], "method": r["method"], "epochs": r["epoch"], "knn_accuracy": r["knn"],
                      "chi1_train": r["chi1"], "in_regime": r["in_regime"], "regime_conditions": r["conditions"]}
                     for r in regime_rows(collected)],
        "claims": [{"claim": claim_id(c["claim"]), "verdict": c["verdict"], "in_regime": c["in_regime"],
                    "statement": c["statement"], "deciding": c["deciding"], "rule": c["rule"],
                    "one_training_seed": c["one_training_seed"], "comparisons": c["comparisons"],
                    "authors": c["authors"], "authors_note": c["authors_note"], "reason": c.get("reason")}
                   for c in verdicts(collected, cfg)],
        "spec_version": criteria.SPEC_VERSION,
        "build_seconds": None if build_seconds is None else round(float(build_seconds), 1),
    }


SUMMARY_KEYS = ("profile", "dataset", "encoders", "claims", "spec_version", "build_seconds")


def write_summary(cfg: dict, summary_: dict) -> Path:
    path = store.results_dir(variants.folder_name(cfg)) / "summary.json"
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
