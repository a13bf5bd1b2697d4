"""The paper's claims (SPEC section 7) as checks on stored records, written once: the chapters print
them, the report collects them.

Each check returns one row per comparison (an encoder's contrastive run against its supervised run):
``holds`` (True/False, None when it cannot be checked), ``margin`` (how far the deciding number lies
from the claim's threshold, in the number's own unit; positive: on the claim's side), ``noise`` (the
spread that margin must beat, when there is one: the seeds' spread or the test set's binomial standard
error) and ``numbers``, the line a reader checks it by. A claim whose margin lies within its noise is
*inconclusive*, not reproduced (:func:`verdict`).

The thresholds are the SPEC's. Where a profile's temperatures or k values differ from the paper's, each
check uses the profile's nearest equivalents (smallest and largest T, smallest and largest k) and says
which.
"""

from __future__ import annotations

import math

import numpy as np

from ..analysis import classify as C
from ..analysis import records as R
from ..core.config import CONTRASTIVE_METHODS, kind_of

CHI_DROP_CL, CHI_DROP_SL = 0.2, 0.05     # claim 1
RLD_RATIO = 3.0                          # claim 3
MAP_DROP_CL, MAP_DROP_SL = 0.1, 0.05     # claim 5
# the regime the claims are about: encoders as fitted as the authors' (CHI(1) on training features:
# supervised 0.990, contrastive 0.873)
REGIME_CHI1 = {"supervised": 0.95, "contrastive": 0.80}

STATEMENTS = {
    1: "CHI(1) − CHI(1000) is large for CL (> 0.2) and small for SL (< 0.05), for every encoder",
    2: "CH(SL) > CH(CL) for every encoder",
    3: "RLD(T = 0.1) ≫ RLD(T = 1) for CL features; SL keeps a high RLD at large T too",
    4: "GCN ≥ linear on CL features for most encoders, with about 8× fewer parameters; larger gain for CL than SL",
    5: "t-SNE: SL separates ten classes at every perplexity; CL only at small perplexity",
    6: "cross-class CL pairs with cosine > 0.99 exist whose SL cosine is ≤ 0",
}


def final_epochs(records: list[dict]) -> list[dict]:
    """The records of each run's last measured epoch, metric by metric (not its random initialisation, nor
    an extra, earlier snapshot such as the authors' supervised ResNet-18 at epoch 120)."""
    def key(r):
        return r["encoder"], r["method"], r["schedule"], r["metric"]

    last: dict = {}
    for r in records:
        if r["epoch"] != 0:
            last[key(r)] = max(last.get(key(r), 0), r["epoch"])
    return [r for r in records if r["epoch"] != 0 and r["epoch"] == last[key(r)]]


def _pairs(records: list[dict], metric: str):
    """(encoder, contrastive method) pairs that have a supervised run of the same encoder in ``records``
    (final epochs only)."""
    final = final_epochs(R.select(records, metric=metric))
    encs = {r["encoder"] for r in final if r["method"] == "supervised"}
    out = []
    for r in final:
        pair = (r["encoder"], r["method"])
        if r["encoder"] in encs and r["method"] in CONTRASTIVE_METHODS and pair not in out:
            out.append(pair)
    return out


def _final(records, encoder, method, metric, parameter=None):
    return R.value(final_epochs(records), encoder=encoder, method=method, metric=metric, parameter=parameter)


def _row(claim, encoder, method, holds, margin, numbers, deciding, noise=None, **extra):
    """A comparison: ``numbers`` is the full line, ``deciding`` the one number the verdict turns on."""
    return {"claim": claim, "encoder": encoder, "contrastive": method, "holds": holds, "margin": margin,
            "noise": noise, "numbers": numbers, "deciding": deciding, **extra}


def claim1(geometry: list[dict]) -> list[dict]:
    """CHI(k_min) − CHI(k_max) > 0.2 for CL and < 0.05 for SL (k_max: 1000, or the profile's largest)."""
    ks = sorted(R.parameters(geometry, metric=R.CHI))
    lo, hi = ks[0], ks[-1]
    out = []
    for enc, m in _pairs(geometry, R.CHI):
        cl = _final(geometry, enc, m, R.CHI, lo) - _final(geometry, enc, m, R.CHI, hi)
        sl = _final(geometry, enc, "supervised", R.CHI, lo) - _final(geometry, enc, "supervised", R.CHI, hi)
        margin = min(cl - CHI_DROP_CL, CHI_DROP_SL - sl)
        line = f"CHI({lo}) − CHI({hi}): CL {cl:.3f}, SL {sl:.3f}"
        out.append(_row(1, enc, m, margin > 0, margin, line, line, drop_cl=cl, drop_sl=sl))
    return out


def claim2(geometry: list[dict]) -> list[dict]:
    """CH(SL) > CH(CL); the margin is the relative difference CH(SL) / CH(CL) − 1."""
    out = []
    for enc, m in _pairs(geometry, R.CH):
        cl, sl = _final(geometry, enc, m, R.CH), _final(geometry, enc, "supervised", R.CH)
        line = f"CH: SL {sl:.1f}, CL {cl:.1f}"
        out.append(_row(2, enc, m, sl > cl, sl / cl - 1, line, line))
    return out


def claim3(geometry: list[dict]) -> list[dict]:
    """RLD(T_small) / RLD(T_large) > 3 for CL and above SL's ratio, and RLD(T_large) of SL above CL's
    (T_small, T_large: 0.1 and 1, or the profile's smallest and largest temperature)."""
    ts = sorted(R.parameters(geometry, metric=R.RLD))
    small, large = ts[0], ts[-1]
    out = []
    for enc, m in _pairs(geometry, R.RLD):
        cl_s, cl_l = _final(geometry, enc, m, R.RLD, small), _final(geometry, enc, m, R.RLD, large)
        sl_s, sl_l = _final(geometry, enc, "supervised", R.RLD, small), _final(geometry, enc, "supervised", R.RLD, large)
        ratio_cl, ratio_sl = cl_s / cl_l, sl_s / sl_l
        margin = min(ratio_cl / RLD_RATIO - 1, ratio_cl / ratio_sl - 1, sl_l / cl_l - 1)
        ratios = f"RLD({small:g})/RLD({large:g}): CL {ratio_cl:.2f}, SL {ratio_sl:.2f}"
        out.append(_row(3, enc, m, margin > 0, margin, f"{ratios}; RLD({large:g}): CL {cl_l:.4f}, SL {sl_l:.4f}",
                        ratios))
    return out


def _binomial_se(p: float, n: int) -> float:
    return math.sqrt(max(p * (1 - p), 0.0) / max(n, 1))


def claim4(classifiers: list[dict], test_images: int) -> list[dict]:
    """GCN (temperature chosen on validation) ≥ linear on CL features (honest protocol, mean over seeds),
    and a larger gain than on SL features; the noise is the larger of the seeds' spread and the test
    set's binomial standard error."""
    out = []
    for enc, m in _pairs(classifiers, R.head_metric("linear", R.TEST)):
        def gain(method):
            ident = {"encoder": enc, "method": method}
            finals = final_epochs(classifiers)
            t = C.best_gcn_temperature(finals, **ident)
            g, lin = C.summary(finals, "gcn", t, **ident), C.summary(finals, "linear", None, **ident)
            return t, g, lin, g["test_mean"] - lin["test_mean"]

        t, gcn, lin, g_cl = gain(m)
        _, _, _, g_sl = gain("supervised")
        noise = max(gcn["test_std"], lin["test_std"], _binomial_se(gcn["test_mean"], test_images))
        ratio = lin["parameters"] / gcn["parameters"]
        margin = min(g_cl, g_cl - g_sl)
        holds = g_cl >= 0 and g_cl > g_sl
        numbers = (f"CL: GCN (T={t:g}) {gcn['test_mean']:.1%} ± {gcn['test_std']:.1%} vs linear "
                   f"{lin['test_mean']:.1%} ± {lin['test_std']:.1%} (gain {g_cl:+.1%}); SL gain {g_sl:+.1%}; "
                   f"parameters {lin['parameters']:,.0f} / {gcn['parameters']:,.0f} = {ratio:.1f}x; noise {noise:.1%}")
        deciding = f"GCN − linear on CL {g_cl:+.1%} (noise {noise:.1%}), on SL {g_sl:+.1%}"
        out.append(_row(4, enc, m, holds, margin, numbers, deciding, noise, gain_cl=g_cl, gain_sl=g_sl,
                        parameter_ratio=ratio))
    return out


def claim5(purity: list[dict]) -> list[dict]:
    """From the smallest to the largest perplexity, the global map purity (``map_purity_wide``) of CL
    falls by more than 0.1 and that of SL by less than 0.05: SL stays separated, CL does not."""
    ps = sorted(R.parameters(purity, metric=R.MAP_PURITY_WIDE))
    lo, hi = ps[0], ps[-1]
    out = []
    for enc, m in _pairs(purity, R.MAP_PURITY_WIDE):
        def drop(method, metric):
            a = _final(purity, enc, method, metric, lo)
            b = _final(purity, enc, method, metric, hi)
            return a, b, a - b

        cl, sl = drop(m, R.MAP_PURITY_WIDE), drop("supervised", R.MAP_PURITY_WIDE)
        local_cl, local_sl = drop(m, R.MAP_PURITY), drop("supervised", R.MAP_PURITY)
        margin = min(cl[2] - MAP_DROP_CL, MAP_DROP_SL - sl[2])
        line = (f"global map purity, perplexity {lo:,g} → {hi:,g}: CL {cl[0]:.3f} → {cl[1]:.3f}, "
                f"SL {sl[0]:.3f} → {sl[1]:.3f}")
        out.append(_row(5, enc, m, margin > 0, margin, f"{line} (local: CL {local_cl[0]:.3f} → {local_cl[1]:.3f}, "
                        f"SL {local_sl[0]:.3f} → {local_sl[1]:.3f})", line))
    return out


def claim6(comparisons: list[dict], threshold: float) -> list[dict]:
    """Among each contrastive run's most similar cross-class pairs: one with CL cosine > ``threshold`` and
    SL cosine <= 0 exists. The margin is the most negative SL cosine among the pairs above the threshold
    (negated: positive when such a pair exists), or the gap of the best CL cosine to the threshold."""
    out = []
    for comp in comparisons:
        c, s = np.asarray(comp["cl_cosines"], float), np.asarray(comp["sl_cosines"], float)
        above = c > threshold
        hits = above & (s <= 0)
        capped = bool(len(c) and above.all())
        margin = float(-s[above].min()) if above.any() else float(c.max() - threshold)
        top = int(np.argmax(c))
        bound = "at least " if capped else ""
        numbers = (f"max CL cos {c[top]:.4f} (SL cos {s[top]:.2f}); {bound}{int(above.sum())} of the {len(c)} most "
                   f"similar cross-class pairs have CL cos > {threshold:g}, {int(hits.sum())} of them SL cos <= 0")
        deciding = f"{int(hits.sum())} pairs with CL cos > {threshold:g} and SL cos <= 0 (max CL cos {c[top]:.4f})"
        out.append(_row(6, comp["encoder"], comp["method"], bool(hits.any()), margin, numbers, deciding,
                        above=int(above.sum()), hits=int(hits.sum()), max_cl=float(c[top]), sl_at_max=float(s[top])))
    return out


def verdict(rows: list[dict], claim: int) -> str:
    """One verdict for a claim over its comparisons: "reproduced", "not reproduced", "inconclusive" (the
    verdict would change if the comparisons whose margin lies within their noise went the other way), or
    "not comparable" (nothing to compare). Claim 4 asks for "most encoders": more than half of the
    comparisons; the others, every one."""
    rows = [r for r in rows if r["holds"] is not None]
    if not rows:
        return "not comparable"
    needed = len(rows) // 2 + 1 if claim == 4 else len(rows)
    unresolved = [r["noise"] is not None and abs(r["margin"]) <= r["noise"] for r in rows]
    sure = sum(bool(r["holds"]) for r, u in zip(rows, unresolved) if not u)
    best, worst = sure + sum(unresolved) >= needed, sure >= needed
    if best != worst:
        return "inconclusive"
    return "reproduced" if worst else "not reproduced"


def regime(geometry: list[dict], knn: list[dict]) -> list[dict]:
    """Per trained encoder at its last measured epoch (not an extra, earlier snapshot): kNN test accuracy
    (k = 10, or the profile's smallest k), CHI(1) on training features, the authors' CHI(1) and whether it
    reaches the regime the claims are about."""
    from ..core import paper

    out = []
    ks = sorted(R.parameters(knn, metric=R.KNN)) or [None]
    for r in final_epochs(R.select(geometry, metric=R.CHI, parameter=1)):
        kind = kind_of(r["method"])
        acc = R.value(knn, encoder=r["encoder"], method=r["method"], schedule=r["schedule"], epoch=r["epoch"],
                      metric=R.KNN, parameter=10 if 10 in ks else ks[0])
        authors = paper.CHI_VIT[kind][0]
        out.append({"encoder": r["encoder"], "method": r["method"], "epochs": r["epoch"], "knn_accuracy": acc,
                    "chi1_train": r["value"], "authors_chi1": authors, "threshold": REGIME_CHI1[kind],
                    "in_regime": r["value"] >= REGIME_CHI1[kind]})
    return out
