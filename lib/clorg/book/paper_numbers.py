"""The paper's numbers (SPEC section 6) beside ours: the toy figure, the ViT's CHI, the heads, the
random initialisation and the training dynamics, each with a verdict:

- **reproduced** / **not reproduced**: ours is comparable with the paper's and agrees (or not) within the
  tolerance stated in the row (:mod:`clorg.core.criteria`);
- **not comparable**: the setting differs in what the number depends on (another encoder, a subset of the
  data, a much shorter training); the reason says which;
- **missing**: the result was not computed for this profile; the reason gives the command.

The claims (SPEC section 7) are :mod:`clorg.book.report`'s; this module reads the same collected results.
"""

from __future__ import annotations

import pandas as pd

from ..analysis import records as R
from ..core import criteria, paper
from ..core.config import kind_of
from . import chapters, claims
from . import evidence as E
from . import report as R_
from . import verdicts as V


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


def table(collected: dict, cfg: dict, data) -> pd.DataFrame:
    """Every number of SPEC section 6 beside ours, with a verdict (``collected``: :func:`clorg.book.report.collect`)."""
    rows = _toy_rows(R_.result(collected, "toy"), cfg)
    rows += _chi_rows(R_.result(collected, "geometry"), cfg, data)
    rows += _heads_rows(R_.result(collected, "classifiers"), cfg, data)
    rows += _random_rows(R_.result(collected, "geometry"), R_.result(collected, "classifiers"), cfg, data)
    rows += _dynamics_rows(R_.result(collected, "dynamics"), cfg)
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
    for n in E.dynamics(res, cfg["train"]["schedule"], chapters.judged_run(cfg)):
        j = claims.judge_dynamics(n)
        ours = "no records of this run" if n.get("records_missing") else (
            f"CH {V.number(n['ch_first'], ',.0f')} (e0) → max {V.number(n['ch_max'], ',.0f')} → "
            f"{V.number(n['ch_last'], ',.0f')} (e{n['epochs']['CL']}); RLD(0.1) {V.number(n['rld_first'])} → "
            f"{V.number(n['rld_last'])}")
        rows.append(_row("dynamics", f"trend over training, {n['encoder']} {n['contrastive']} ({n['schedule']} "
                         f"schedule)", theirs, ours, j["verdict"],
                         reason + "; ".join(V.condition_text(c) for c in j["conditions"])))
    return rows
