"""The numbers each claim of SPEC section 7 reads, taken from stored results (ours) or from the authors'
saved outputs (SPEC section 6, :mod:`clorg.core.paper`), in the one shape :mod:`clorg.book.claims`
judges. Nothing here decides anything.

Which features a claim reads (SPEC 7, "Terms"): **CL** is the contrastive run at its last epoch; **SL**
the supervised run at the epoch the authors analysed (ResNet-18: 120; ViT and ResNet-101: 600), or its
last where it trained fewer; **RI** the same encoder at its random initialisation (epoch 0). A number
that is not in the records is None, and the claim says so rather than falling back on another epoch.

Each function returns one mapping per comparison (an encoder's contrastive run against its supervised
run), with ``encoder``, ``contrastive``, ``runs`` (the (encoder, method) pairs whose regime the comparison
needs), ``epochs`` and the numbers.
"""

from __future__ import annotations

import numpy as np

from ..analysis import classify as C
from ..analysis import dynamics as D
from ..analysis import records as R
from ..core import criteria as K
from ..core import paper
from ..core.config import CONTRASTIVE_METHODS, kind_of
from .claims import missing

SL = "supervised"


# ============================================== selection ==============================================


def analysed_epoch(records: list[dict], encoder: str, method: str) -> int | None:
    """The epoch a claim reads of a run (see the module's docstring); None when the records have none."""
    epochs = sorted({r["epoch"] for r in R.select(records, encoder=encoder, method=method) if r["epoch"] != 0})
    if not epochs:
        return None
    return paper.analysed_epoch(encoder, kind_of(method), epochs[-1])


def comparisons(records: list[dict]) -> list[tuple[str, str]]:
    """(encoder, contrastive method) pairs of the records, in order of first appearance, where the records
    hold a supervised run at all (none: nothing is comparable). An encoder whose own supervised records are
    missing stays, its SL numbers None, so that a claim over every encoder is inconclusive rather than judged
    on the others alone."""
    if not any(r["method"] == SL and r["epoch"] != 0 for r in records):
        return []
    out = []
    for r in records:
        pair = (r["encoder"], r["method"])
        if r["epoch"] != 0 and r["method"] in CONTRASTIVE_METHODS and pair not in out:
            out.append(pair)
    return out


def at(records, encoder, method, metric, parameter=None):
    """The value of a metric of a run at its analysed epoch (:func:`analysed_epoch`); None if absent."""
    epoch = analysed_epoch(records, encoder, method)
    if epoch is None:
        return None
    return R.value(records, encoder=encoder, method=method, epoch=epoch, metric=metric, parameter=parameter)


def _random_init(records, encoder, metric, parameter=None):
    found = R.select(records, encoder=encoder, epoch=0, metric=metric, parameter=parameter)
    return found[0]["value"] if found else None


def _comparison(records, encoder, cl) -> dict:
    return {"encoder": encoder, "contrastive": cl, "runs": [(encoder, cl), (encoder, SL)],
            "epochs": {"CL": analysed_epoch(records, encoder, cl), "SL": analysed_epoch(records, encoder, SL)}}


# ============================================== our numbers ==============================================


def claim1(geometry: dict) -> list[dict]:
    """CHI(1) and CHI(k_max) of CL, SL and RI per comparison; k_max from the stored class size."""
    records, k_max = geometry["records"], K.claim1_k_max(geometry["class_size"])
    out = []
    for enc, cl in comparisons(R.select(records, metric=R.CHI)):
        n = _comparison(records, enc, cl)
        for who, method in (("cl", cl), ("sl", SL)):
            n[f"chi1_{who}"] = at(records, enc, method, R.CHI, 1)
            n[f"chik_{who}"] = at(records, enc, method, R.CHI, k_max)
        n["chi1_ri"], n["chik_ri"] = _random_init(records, enc, R.CHI, 1), _random_init(records, enc, R.CHI, k_max)
        out.append({**n, "k_max": k_max})
    return out


def claim2(geometry: dict) -> list[dict]:
    records = geometry["records"]
    return [{**_comparison(records, enc, cl), "ch_cl": at(records, enc, cl, R.CH), "ch_sl": at(records, enc, SL, R.CH),
             "ch_ri": _random_init(records, enc, R.CH)}
            for enc, cl in comparisons(R.select(records, metric=R.CH))]


def claim3(geometry: dict) -> list[dict]:
    records, local, broad = geometry["records"], K.RLD_LOCAL_T, K.RLD_GLOBAL_T
    return [{**_comparison(records, enc, cl),
             "rld_local_cl": at(records, enc, cl, R.RLD, local), "rld_global_cl": at(records, enc, cl, R.RLD, broad),
             "rld_global_sl": at(records, enc, SL, R.RLD, broad), "rld_local_ri": _random_init(records, enc, R.RLD, local),
             "rld_global_ri": _random_init(records, enc, R.RLD, broad)}
            for enc, cl in comparisons(R.select(records, metric=R.RLD))]


def _correct(classifiers: dict, head: str, parameter, seeds, **identity) -> np.ndarray | None:
    """(seeds, test images) 0/1 array of a head's honest test predictions being right; None if not stored."""
    labels = np.asarray(classifiers.get("test_labels", []))
    rows = []
    for seed in seeds:
        found = [p for p in R.select(classifiers.get("predictions", []), parameter=parameter, seed=seed, **identity)
                 if p["head"] == head]
        if len(found) != 1 or len(found[0]["predicted"]) != len(labels):
            return None
        rows.append(np.asarray(found[0]["predicted"]) == labels)
    return np.asarray(rows, dtype=np.float64) if rows else None


def paired_gain(classifiers: dict, **ident) -> dict:
    """The GCN (temperature chosen on validation) against the linear head on one feature set (``ident``:
    encoder, method and epoch): the paired gain G, with its bootstrap interval over test images and head seeds
    where the predictions are stored (``low`` and ``high`` None where not), and the authors'-protocol gain."""
    records = classifiers["records"]
    t = C.best_gcn_temperature(records, **ident)
    if t is None:
        return {"temperature": None}
    gcn, lin = C.summary(records, "gcn", t, **ident), C.summary(records, "linear", None, **ident)
    authors = None if None in (gcn.get("authors"), lin.get("authors")) else gcn["authors"] - lin["authors"]
    ratio = lin["parameters"] / gcn["parameters"] if lin.get("parameters") and gcn.get("parameters") else None
    seeds = sorted({r["seed"] for r in R.select(records, metric=R.head_metric("gcn", R.TEST), parameter=t, **ident)})
    out = {"temperature": t, "point": gcn["test_mean"] - lin["test_mean"], "authors": authors, "ratio": ratio,
           "low": None, "high": None}
    a = _correct(classifiers, "gcn", t, seeds, **ident)
    b = _correct(classifiers, "linear", None, seeds, **ident)
    if a is not None and b is not None:
        point, low, high = C.paired_gain_interval(a, b, K.BOOTSTRAP_RESAMPLES, K.BOOTSTRAP_SEED, K.GAIN_INTERVAL)
        out.update(point=point, low=low, high=high, seeds=len(seeds), images=a.shape[1])
    return out


def _gain(classifiers: dict, encoder: str, method: str) -> dict:
    """:func:`paired_gain` on a run at the epoch the claims read."""
    epoch = analysed_epoch(classifiers["records"], encoder, method)
    return {"temperature": None} if epoch is None else \
        paired_gain(classifiers, encoder=encoder, method=method, epoch=epoch)


def claim4(classifiers: dict) -> list[dict]:
    """The paired gain of the GCN over the linear head on CL features with its bootstrap interval over test
    images and head seeds; beside it the authors'-protocol gain, the parameter ratio and the gain on SL."""
    records, out = classifiers["records"], []
    for enc, cl in comparisons(R.select(records, metric=R.head_metric("linear", R.TEST))):
        g, g_sl = _gain(classifiers, enc, cl), _gain(classifiers, enc, SL)
        n = {**_comparison(records, enc, cl), "temperature": g["temperature"], "gain": g.get("point"),
             "gain_authors_protocol": g.get("authors"), "parameter_ratio": g.get("ratio"), "gain_sl": g_sl.get("point"),
             "gain_sl_low": g_sl.get("low"), "gain_sl_high": g_sl.get("high"), "low": g.get("low"), "high": g.get("high")}
        n.update({k: g[k] for k in ("seeds", "images") if k in g})
        out.append(n)
    return out


def claim5(purity: dict) -> list[dict]:
    """Map purity (10 map neighbours) of CL and SL at the smallest and largest perplexity, chance = 1/C."""
    records, out = purity["records"], []
    ps = sorted(R.parameters(records, metric=R.MAP_PURITY))
    for enc, cl in comparisons(R.select(records, metric=R.MAP_PURITY)):
        n = {**_comparison(records, enc, cl), "chance": 1 / purity["classes"], "perplexities": [ps[0], ps[-1]]}
        for who, method in (("cl", cl), ("sl", SL)):
            for end, p in (("min", ps[0]), ("max", ps[-1])):
                # one perplexity is no largest beside a smallest: read as both, (a) would hold and (b) fail
                # by construction, a "not reproduced" that no map decided; absent, the claim is inconclusive
                one_map = end == "max" and ps[0] == ps[-1]
                n[f"p_{end}_{who}"] = None if one_map else at(records, enc, method, R.MAP_PURITY, p)
                n[f"wide_{end}_{who}"] = None if one_map else at(records, enc, method, R.MAP_PURITY_WIDE, p)
        out.append(n)
    return out


def claim6(near_duplicates: dict) -> list[dict]:
    """The most similar cross-class pair of each contrastive run, its SL cosine and the median SL cosine of
    random cross-class pairs; the primary encoder (ResNet-101 when trained, else the first) comes first."""
    out = []
    for comp in near_duplicates["comparisons"]:
        c, s = np.asarray(comp["cl_cosines"], float), np.asarray(comp["sl_cosines"], float)
        top = int(np.argmax(c)) if len(c) else None
        out.append({"encoder": comp["encoder"], "contrastive": comp["method"],
                    "runs": [(comp["encoder"], comp["method"]), (comp["encoder"], SL)],
                    "epochs": {"CL": comp["epoch"], "SL": comp["reference"]["epoch"]},
                    "cos_cl": None if top is None else float(c[top]), "cos_sl": None if top is None else float(s[top]),
                    "sl_median": comp["baseline"].get("sl_median"), "pair": comp["pairs"][0] if comp["pairs"] else None,
                    # beside the single pair the criterion reads: the same test over every pair the search kept
                    "searched": len(c), "share_at_or_below_median": None if not len(s) or comp["baseline"].get(
                        "sl_median") is None else float(np.mean(s <= comp["baseline"]["sl_median"]))})
    primary = [n for n in out if n["encoder"] == K.NEAR_DUPLICATE_PRIMARY_ENCODER]
    return primary + [n for n in out if n not in primary]


def judged_schedule(schedules, own: str) -> str:
    """The schedule of the run that decides claim D: the run closer to the authors, under their rising
    learning-rate curve (``paper-literal``, or ``paper-compressed`` into a short run), where the profile
    follows one; else the profile's own schedule. Issue 24's default: claim D is about one contrastive run
    (no supervised baseline is set against it), and the authors' run rose from 2.7e-5 to about 4e-3."""
    if own.startswith("paper"):  # the profile's own runs already follow the authors' curve (paper-literal)
        return own
    return next((s for s in ("paper-literal", "paper-compressed") if s in schedules), own)


def dynamics(result: dict, schedule: str, judged: tuple[str, str, str] | None) -> list[dict]:
    """CH and RLD(0.1) along each followed contrastive run, the one that decides first, the others after it.
    Each names the runs whose regime gate it reads: the profile's main run (chapter 04's numbers) under the
    profile's ``schedule``, else the run itself, gated at its last snapshot (:func:`variant_regimes`).

    ``judged``: (encoder, method, schedule) of the run the profile says decides (:func:`clorg.book.chapters.
    judged_run`; None: the profile follows none); when its records are absent it still comes first, with no
    numbers, so that claim D is inconclusive and says which run is missing instead of being decided by
    another run."""
    records, out = result["records"], []
    for run in D.runs_in(R.select(records, metric=R.CH)):
        ch = D.series(records, R.CH, **run)
        rld = D.series(records, R.RLD, K.RLD_LOCAL_T, **run)
        rld_start, ch_start = [v for e, v in rld if e == 0], [v for e, v in ch if e == 0]
        # a NaN among the snapshots leaves the maximum unknown (max() would pass over it, or return it when first)
        ch_max = None if not ch or missing(*(v for _, v in ch)) else max(v for _, v in ch)
        out.append({**_followed(run["encoder"], run["method"], run["schedule"], schedule),
                    "epochs": {"CL": ch[-1][0] if ch else None},
                    "ch_first": ch_start[0] if ch_start else None, "ch_max": ch_max,
                    "ch_last": ch[-1][1] if ch else None, "rld_first": rld_start[0] if rld_start else None,
                    "rld_last": rld[-1][1] if rld else None})
    if judged is None:
        return out
    first = [n for n in out if (n["encoder"], n["contrastive"], n["schedule"]) == tuple(judged)]
    if not first:  # the deciding run's records are missing: no other run stands in for it
        first = [{**_followed(*judged, schedule), "epochs": {"CL": None}, "ch_first": None, "ch_max": None,
                  "ch_last": None, "rld_first": None, "rld_last": None, "records_missing": True}]
    # the others: those under the deciding schedule (other methods of a profile with two) before the rest
    return first + sorted((n for n in out if n not in first), key=lambda n: n["schedule"] != judged[2])


def gate_key(encoder: str, method: str, schedule: str | None = None) -> tuple:
    """The key of a run's regime gate: (encoder, method) for a main run, whose gate is chapter 04's, and
    (encoder, method, schedule) for a run under another schedule than the profile's, gated on its own
    (:func:`variant_regimes`). The claims and the regime rows both key by it."""
    return (encoder, method) if schedule is None else (encoder, method, schedule)


def _followed(encoder: str, method: str, run_schedule: str, schedule: str) -> dict:
    """A followed run's names, and the key of the regime gate it reads (the profile runs under ``schedule``)."""
    return {"encoder": encoder, "contrastive": method, "schedule": run_schedule,
            "runs": [gate_key(encoder, method, None if run_schedule == schedule else run_schedule)]}


def variant_regimes(dynamics_: dict | None, schedule: str) -> list[dict]:
    """The regime gate's numbers of each followed run under another schedule than the profile's ``schedule``
    (chapter 04 measures only the main runs): CHI(1) and kNN test accuracy (k = 10) at its last snapshot,
    from the dynamics records; kNN None when the profile's ``dynamics.knn_k`` is another k."""
    if dynamics_ is None:
        return []
    records, out = dynamics_["records"], []
    for run in D.runs_in(R.select(records, metric=R.CH)):
        if run["schedule"] == schedule:
            continue
        chi1, knn = D.series(records, R.CHI, 1, **run), D.series(records, R.KNN, K.REGIME_KNN_K, **run)
        epoch = max(e for e, _ in D.series(records, R.CH, **run))
        out.append({"encoder": run["encoder"], "method": run["method"], "schedule": run["schedule"],
                    "kind": kind_of(run["method"]), "epoch": epoch, "chi1": dict(chi1).get(epoch),
                    "knn": dict(knn).get(epoch)})
    return out


def toward_regime(dynamics_: dict, geometry: dict | None) -> dict[str, list[dict]]:
    """Per followed run of the dynamics records (its name -> :func:`clorg.analysis.dynamics.toward_regime`):
    the claims' deciding statistics at each snapshot, the CH ratio against the same encoder's supervised
    run at its analysed epoch (from the geometry records; None when they are not stored)."""
    records, out = dynamics_["records"], {}
    for run in D.runs_in(R.select(records, metric=R.CH)):
        ch_sl = at(geometry["records"], run["encoder"], SL, R.CH) if geometry else None
        out[f"{run['encoder']} {run['method']}, {run['schedule']}"] = D.toward_regime(records, run, ch_sl)
    return out


def regime(geometry: dict | None, embeddings: dict | None) -> list[dict]:
    """Per trained run of the geometry records, at its analysed epoch: CHI(1) on training features and kNN
    test accuracy (k = 10), the numbers of the regime gate."""
    if geometry is None:
        return []
    geo, knn = geometry["records"], embeddings["records"] if embeddings else []
    out = []
    for enc, method in dict.fromkeys((r["encoder"], r["method"]) for r in geo if r["epoch"] != 0):
        epoch = analysed_epoch(geo, enc, method)
        out.append({"encoder": enc, "method": method, "kind": kind_of(method), "epoch": epoch,
                    "chi1": R.value(geo, encoder=enc, method=method, epoch=epoch, metric=R.CHI, parameter=1),
                    "knn": R.value(knn, encoder=enc, method=method, epoch=epoch, metric=R.KNN, parameter=K.REGIME_KNN_K)})
    return out


# ============================================ the authors' numbers ============================================


def authors() -> dict[str, dict | None]:
    """The authors' saved numbers (SPEC section 6) in the shape each claim reads; None where they saved none
    (claim 5: figures only). Absent numbers are None: the claim then says "not saved"."""
    k_max = K.claim1_k_max(paper.CLASS_SIZE)
    cl, sl = (dict(zip(paper.CHI_KS, paper.CHI_VIT[kind])) for kind in ("contrastive", "supervised"))
    rld_local = dict(paper.DYNAMICS_RLD[K.RLD_LOCAL_T])
    ch = dict(paper.DYNAMICS_CH)
    last = paper.DYNAMICS_EPOCHS
    heads = paper.HEADS_VIT_CONTRASTIVE
    gain = (heads["gcn"] - heads["linear"]) / 100  # their test-selected protocol: no interval can be computed
    return {
        "1": {"encoder": "vit", "k_max": k_max, "chi1_cl": cl[1], "chik_cl": cl.get(k_max), "chi1_sl": sl[1],
              "chik_sl": sl.get(k_max), "chi1_ri": None, "chik_ri": None},
        "2": {"encoder": "vit", "ch_cl": ch[last], "ch_sl": None, "ch_ri": paper.RANDOM_VIT["ch"]},
        # RLD(T = 1) of the contrastive run is only said to stay below a bound: judged at the bound
        "3": {"encoder": "vit", "rld_local_cl": rld_local[last], "rld_local_ri": rld_local[0],
              "rld_global_cl": paper.DYNAMICS_RLD1_BOUND, "rld_global_sl": None,
              "rld_global_ri": paper.RANDOM_VIT["rld"][K.RLD_GLOBAL_T]},
        "4": {"encoder": "vit", "gain": gain, "low": gain, "high": gain, "gain_authors_protocol": gain,
              "parameter_ratio": paper.HEADS_PARAMETERS["linear"] / paper.HEADS_PARAMETERS["gcn"], "gain_sl": None, "temperature": paper.HEADS_VIT_GCN_TEMPERATURE},
        "5": None,
        "6": {"encoder": "resnet101", "cos_cl": paper.NEAR_DUPLICATE_RESNET101["cl_cosine"],
              "cos_sl": paper.NEAR_DUPLICATE_RESNET101["sl_cosine"], "sl_median": None},
        "D": {"encoder": "vit", "ch_first": ch[0], "ch_max": max(ch.values()), "ch_last": ch[last],
              "rld_first": rld_local[0], "rld_last": rld_local[last]},
    }


# What the authors' row rests on, for the reader (shown beside their verdicts)
AUTHORS_NOTES = {
    "1": "their ViT, CHI(1) and CHI(1,000) of SPEC 6; random init not saved",
    "2": "CL: CH 8 at epoch 1,200 of their dynamics run; SL not saved; RI: CH of their random-init ViT; both on a "
         "CIFAR-10 variant, indicative only",
    "3": "CL from their dynamics run: RLD_0.1 at epochs 0 and 1,200, RLD_1 only said to stay below 0.02 (judged at "
         "0.02); RLD_1(SL) not saved; RI: RLD_0.1 at epoch 0 of that run, RLD_1 of their random-init ViT; all on a "
         "CIFAR-10 variant, indicative only",
    "4": "their saved ViT run under their test-selected protocol: one point, no interval can be computed, so the "
         "point is judged as an interval of zero width",
    "5": "figures only: no number saved",
    "6": "ResNet-101's top pair; the median of random pairs not saved",
    "D": "their contrastive ViT run on a CIFAR-10 variant (SPEC 6)",
}
