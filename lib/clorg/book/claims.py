"""The paper's claims judged by the pre-registered criteria of SPEC section 7 (version 2).

Every function here is pure: it takes the *numbers* a criterion reads (a plain mapping, one per
comparison of a contrastive run with the supervised run and the random initialisation of the same
encoder) and returns a judgement. Our numbers (read from stored records by :mod:`clorg.book.evidence`)
and the authors' saved numbers (SPEC section 6, also assembled there) go through the same functions, so
a reader sees the bar is one the paper itself clears or not.

A judgement is a JSON-able mapping::

    {"verdict": "reproduced" | "not reproduced" | "inconclusive" | "direction only",
     "conditions": [condition, ...],   # each with its number, threshold and whether it holds
     "beside": [quantity, ...],         # shown, never deciding (the random-init control, ...)
     "absent": [quantity name, ...]}    # numbers the criterion needs that are not there

A condition: ``{"quantity", "value", "op" (">=", "<=", ">" or "<"), "threshold", "threshold_text", "holds",
"role"}``; ``role`` is "condition" (must hold), "precondition" (must hold, else the verdict is
inconclusive) or "refutes" (holding it means not reproduced). A value that is absent makes ``holds``
None. Thresholds come from :mod:`clorg.core.criteria` only.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Callable

from ..core import criteria as K

# how a difference of two accuracies is printed (clorg.book.verdicts.number): in percentage points, not "%"
POINTS = "points"
REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE, DIRECTION = "reproduced", "not reproduced", "inconclusive", "direction only"
VERDICTS = (REPRODUCED, INCONCLUSIVE, DIRECTION, NOT_REPRODUCED)


# ============================================ building blocks ============================================


# Not a threshold: SPEC 7's bars are decimals and its statistics float arithmetic (0.85 - 0.65 is
# 0.19999999999999996 in binary, which would fail "D(CL) >= 0.20" though the criterion, read in decimals, holds).
# A statistic within ON_THE_BAR of a bar (relative to the bar, at least 1: far below any printed digit) is on
# it, where ">=" and "<=" hold and ">" and "<" do not (claim 4's interval touching 0). Here, not in
# clorg.core.criteria, whose every change marks the stored results of the chapters that import it as older.
ON_THE_BAR = 1e-9
OPS = {">=": lambda a, b, tol: a >= b - tol, "<=": lambda a, b, tol: a <= b + tol,
       ">": lambda a, b, tol: a > b + tol, "<": lambda a, b, tol: a < b - tol}


def missing(*values) -> bool:
    """Whether any value is absent: None, or a number that is not finite (a NaN in a stored result, which a
    comparison would silently turn into a failed condition and "not reproduced")."""
    return any(v is None or (isinstance(v, numbers.Real) and not math.isfinite(v)) for v in values)


def condition(quantity: str, value, op: str, threshold, threshold_text: str | None = None,
              role: str = "condition", fmt: str = ".3f") -> dict:
    """``value op threshold`` (op one of :data:`OPS`), None-safe: an absent value or threshold holds None."""
    if op not in OPS:
        raise ValueError(f"op must be one of {list(OPS)}, got {op!r}")
    holds = None if missing(value, threshold) else bool(OPS[op](value, threshold, ON_THE_BAR * max(1, abs(threshold))))
    return {"quantity": quantity, "value": value, "op": op, "threshold": threshold,
            "threshold_text": threshold_text, "holds": holds, "role": role, "fmt": fmt}


def quantity(name: str, value, fmt: str = ".3f") -> dict:
    """A number shown beside a verdict, never deciding it (``fmt``: how to print it)."""
    return {"quantity": name, "value": value, "fmt": fmt}


def _judgement(verdict: str, conditions: list[dict], beside: list[dict] = ()) -> dict:
    absent = [c["quantity"] for c in conditions if c["holds"] is None]
    return {"verdict": verdict, "conditions": conditions, "beside": list(beside), "absent": absent}


def all_hold(conditions: list[dict]) -> str:
    """Reproduced when every condition holds; not reproduced when one fails; else (a number absent)
    inconclusive."""
    if any(c["holds"] is False for c in conditions):
        return NOT_REPRODUCED
    if any(c["holds"] is None for c in conditions):
        return INCONCLUSIVE
    return REPRODUCED


def _difference(a, b):
    return None if missing(a, b) else a - b


def _scaled(factor, x):
    return None if x is None else factor * x


# ============================================== the claims ==============================================


def judge_claim1(n: dict) -> dict:
    """CHI falls with k for CL and not for SL: D(CL) >= 0.20, D(SL) <= 0.05, D(CL) - D(SL) >= 0.15.
    ``n``: chi1_cl, chik_cl, chi1_sl, chik_sl, chi1_ri, chik_ri (CHI(1) and CHI(k_max)), k_max."""
    d_cl, d_sl = K.chi_drop(n.get("chi1_cl"), n.get("chik_cl")), K.chi_drop(n.get("chi1_sl"), n.get("chik_sl"))
    conds = [condition("D(CL)", d_cl, ">=", K.CHI_DROP_CL_MIN),
             condition("D(SL)", d_sl, "<=", K.CHI_DROP_SL_MAX),
             condition("D(CL) − D(SL)", _difference(d_cl, d_sl), ">=", K.CHI_DROP_GAP_MIN)]
    beside = [quantity("D(RI)", K.chi_drop(n.get("chi1_ri"), n.get("chik_ri"))),
              quantity("k_max", n.get("k_max"), ",d")]
    return _judgement(all_hold(conds), conds, beside)


def judge_claim2(n: dict) -> dict:
    """CH is higher for SL than CL: CH(SL) >= 2 CH(CL). ``n``: ch_cl, ch_sl, ch_ri."""
    conds = [condition("CH(SL)", n.get("ch_sl"), ">=", _scaled(K.CH_RATIO_MIN, n.get("ch_cl")),
                       f"{K.CH_RATIO_MIN:g} CH(CL)", fmt=",.1f")]
    beside = [quantity("CH(CL)", n.get("ch_cl"), ",.1f"), quantity("CH(RI)", n.get("ch_ri"), ",.1f")]
    return _judgement(all_hold(conds), conds, beside)


def judge_claim3(n: dict) -> dict:
    """RLD: (a) training made CL locally dense, RLD_0.1(CL) - RLD_0.1(RI) >= 0.30; (b) CL is not globally
    dense, RLD_1(CL) <= 0.05; (c) SL is, RLD_1(SL) >= 0.05 and >= 3 RLD_1(CL). ``n``: rld_local_cl,
    rld_local_ri, rld_global_cl, rld_global_sl, rld_global_ri (local: T = 0.1, global: T = 1)."""
    cl_local, ri_local = n.get("rld_local_cl"), n.get("rld_local_ri")
    cl_global, sl_global = n.get("rld_global_cl"), n.get("rld_global_sl")
    conds = [condition("RLD_0.1(CL) − RLD_0.1(RI)", _difference(cl_local, ri_local), ">=", K.RLD_LOCAL_GAIN_MIN),
             condition("RLD_1(CL)", cl_global, "<=", K.RLD_GLOBAL_CL_MAX),
             condition("RLD_1(SL)", sl_global, ">=", K.RLD_GLOBAL_SL_MIN),
             condition("RLD_1(SL)", sl_global, ">=", _scaled(K.RLD_GLOBAL_RATIO_MIN, cl_global),
                       f"{K.RLD_GLOBAL_RATIO_MIN:g} RLD_1(CL)")]
    for c, label in zip(conds, ("a", "b", "c", "c")):
        c["label"] = label
    beside = [quantity("RLD_0.1(RI)", ri_local), quantity("RLD_1(RI)", n.get("rld_global_ri"))]
    return _judgement(all_hold(conds), conds, beside)


def judge_claim4(n: dict) -> dict:
    """The paired gain G = acc(GCN) - acc(linear) (honest protocol, GCN temperature chosen on validation):
    reproduced when its 95 % interval lies above 0, not reproduced when below, inconclusive when it
    contains 0. ``n``: gain, low, high (the interval), and beside: gain_authors_protocol,
    parameter_ratio, gain_sl with gain_sl_low and gain_sl_high (its interval), temperature."""
    low, high = n.get("low"), n.get("high")
    # strict: an interval that touches 0 contains it
    conds = [condition("G, lower end of the 95 % interval", low, ">", 0.0, fmt=POINTS),
             condition("G, upper end of the 95 % interval", high, "<", 0.0, role="refutes", fmt=POINTS)]
    if missing(low, high):
        verdict = INCONCLUSIVE
    elif conds[0]["holds"]:
        verdict = REPRODUCED
    elif conds[1]["holds"]:
        verdict = NOT_REPRODUCED
    else:
        verdict = INCONCLUSIVE
    gain, gain_sl = n.get("gain"), n.get("gain_sl")
    beside = [quantity("G", gain, POINTS),
              quantity("G under the authors' test-selected protocol", n.get("gain_authors_protocol"), POINTS),
              quantity("parameters, linear / GCN", n.get("parameter_ratio"), ".1f"), quantity("G on SL", gain_sl, POINTS),
              # its interval beside it: "larger for CL" compares two points, each with its own noise
              quantity("G on SL, lower end of the 95 % interval", n.get("gain_sl_low"), POINTS),
              quantity("G on SL, upper end of the 95 % interval", n.get("gain_sl_high"), POINTS),
              quantity("gain larger for CL than SL", None if missing(gain, gain_sl) else gain > gain_sl, "yes/no"),
              quantity("GCN temperature (ours chosen on validation, the authors' on test)", n.get("temperature"), "g")]
    return _judgement(verdict, conds, beside)


def judge_claim5(n: dict) -> dict:
    """t-SNE map purity (10 map neighbours) at the smallest and largest perplexity: (a) SL stays separated,
    P_max(SL) >= 0.9 P_min(SL); (b) CL falls at least half way to chance, P_max(CL) <= P_min(CL) -
    0.5 (P_min(CL) - chance); precondition: CL separated at small perplexity, P_min(CL) >= chance + 0.30.
    ``n``: p_min_cl, p_max_cl, p_min_sl, p_max_sl, chance; beside: wide_*."""
    p_min_cl, p_max_cl, chance = n.get("p_min_cl"), n.get("p_max_cl"), n.get("chance")
    a = condition("P_max(SL)", n.get("p_max_sl"), ">=", _scaled(K.MAP_SL_KEPT_MIN, n.get("p_min_sl")),
                  f"{K.MAP_SL_KEPT_MIN:g} P_min(SL)")
    pre = condition("P_min(CL)", p_min_cl, ">=", None if chance is None else chance + K.MAP_CL_SEPARATED_MIN,
                    f"chance + {K.MAP_CL_SEPARATED_MIN:.2f}", role="precondition")
    fall_to = None if missing(p_min_cl, chance) else p_min_cl - K.MAP_CL_FALL_MIN * (p_min_cl - chance)
    b = condition("P_max(CL)", p_max_cl, "<=", fall_to, f"P_min(CL) − {K.MAP_CL_FALL_MIN:g} (P_min(CL) − chance)")
    a["label"], pre["label"], b["label"] = "a", "precondition", "b"
    # "Not reproduced when (a) fails, or when the precondition holds and (b) fails": either decides whatever
    # else is absent; "inconclusive when (a) holds and the precondition fails", or a number is absent
    if a["holds"] is False or (pre["holds"] is True and b["holds"] is False):
        verdict = NOT_REPRODUCED
    elif a["holds"] is True and pre["holds"] is True and b["holds"] is True:
        verdict = REPRODUCED
    else:
        verdict = INCONCLUSIVE
    beside = [quantity(f"wide purity (class-sized k), {who} at the {end} perplexity", n.get(f"wide_{which}"))
              for which, who, end in (("min_cl", "CL", "smallest"), ("max_cl", "CL", "largest"),
                                      ("min_sl", "SL", "smallest"), ("max_sl", "SL", "largest"))]
    return _judgement(verdict, [pre, a, b], [quantity("chance", chance, ".2f")] + beside)


def judge_claim6(n: dict) -> dict:
    """The single cross-class training pair most similar under CL: cos_CL >= 0.99 and its cos_SL at most
    the median cos_SL of random cross-class pairs. ``n``: cos_cl, cos_sl, sl_median."""
    cos_sl = n.get("cos_sl")
    conds = [condition("cos_CL of the top pair", n.get("cos_cl"), ">=", K.NEAR_DUPLICATE_CL_MIN),
             condition("its cos_SL", cos_sl, "<=", n.get("sl_median"),
                       f"median cos_SL of {K.NEAR_DUPLICATE_BASELINE_PAIRS:,} random cross-class pairs")]
    literal = None if missing(cos_sl) else cos_sl <= K.NEAR_DUPLICATE_SL_LITERAL_MAX
    searched = n.get("searched")
    beside = [quantity(f"its cos_SL ≤ {K.NEAR_DUPLICATE_SL_LITERAL_MAX:g} (the literal reading)", literal, "yes/no")]
    if searched:  # the claim turns on one pair; the share over the pairs the search kept shows how much rests on it
        beside.append(quantity(f"share of the {searched:,} most similar cross-class CL pairs whose cos_SL is at most "
                               f"the median", n.get("share_at_or_below_median"), ".1%"))
    return _judgement(all_hold(conds), conds, beside)


def judge_dynamics(n: dict) -> dict:
    """Along the contrastive run: CH collapses, CH(last) <= 0.5 max CH, and RLD_0.1 rises by at least 0.30
    from epoch 0. "direction only", as SPEC 7 words it, "when CH(last) < max CH but the collapse is smaller":
    CH ends below its maximum but above half of it, whatever RLD_0.1 does (a run whose CH collapses but whose
    RLD_0.1 rises too little is not reproduced). ``n``: ch_max, ch_last, rld_first, rld_last (and epochs
    beside)."""
    ch_max, ch_last = n.get("ch_max"), n.get("ch_last")
    gain = _difference(n.get("rld_last"), n.get("rld_first"))
    conds = [condition("CH(last)", ch_last, "<=", _scaled(K.DYNAMICS_CH_KEPT_MAX, ch_max),
                       f"{K.DYNAMICS_CH_KEPT_MAX:g} max CH", fmt=",.1f"),
             condition("RLD_0.1(last) − RLD_0.1(epoch 0)", gain, ">=", K.DYNAMICS_RLD_GAIN_MIN)]
    verdict = all_hold(conds)
    if verdict == NOT_REPRODUCED and conds[0]["holds"] is False and ch_last < ch_max:
        verdict = DIRECTION
    ch_first = n.get("ch_first")
    # the paper's CH falls from epoch 0 on; a run whose CH rises first and falls back less is told apart here
    beside = [quantity("max CH", ch_max, ",.1f"),
              quantity("CH(last) / max CH", None if missing(ch_max, ch_last) or not ch_max else ch_last / ch_max),
              quantity("CH(epoch 0)", ch_first, ",.1f"),
              quantity("CH(last) / CH(epoch 0)", None if missing(ch_first, ch_last) or not ch_first else ch_last / ch_first)]
    return _judgement(verdict, conds, beside)


def regime_gate(kind: str, chi1, knn) -> dict:
    """Whether an encoder of ``kind`` ("contrastive" or "supervised") is in the paper's regime: CHI(1) on
    training features at least 0.80 / 0.95 and kNN test accuracy (k = 10) at least 0.80. ``in_regime`` is
    None when a number is absent and no condition fails."""
    conds = [condition("CHI(1), training", chi1, ">=", K.REGIME_CHI1[kind]),
             condition(f"kNN accuracy (k = {K.REGIME_KNN_K}), test", knn, ">=", K.REGIME_KNN, fmt=".1%")]
    verdict = all_hold(conds)
    return {"in_regime": {REPRODUCED: True, NOT_REPRODUCED: False}.get(verdict), "conditions": conds}


def both_in_regime(*flags) -> bool | None:
    """A comparison is in regime when every encoder in it is: False when one is not, None when unknown."""
    if any(f is False for f in flags):
        return False
    return None if any(f is None for f in flags) else True


# ======================================== several comparisons =========================================


def verdict_regime(verdict: str, judged: list[dict], rule: str) -> bool | None:
    """Whether a combined verdict rests on comparisons in the paper's regime (``judged``: each with its
    ``verdict`` and ``in_regime``). Under rule "every" one failing comparison decides, whatever the others say
    or lack, so a "not reproduced" is in regime when a comparison in regime fails (unknown when none is known
    to be). Under "majority" the comparisons of the majority decide, so they must all be in regime. Any other
    verdict needs every comparison, and so every one in regime."""
    if rule == "every" and verdict == NOT_REPRODUCED:
        failing = [j["in_regime"] for j in judged if j["verdict"] == NOT_REPRODUCED]
        return True if True in failing else (None if None in failing else False)
    if rule == "majority" and verdict in (REPRODUCED, NOT_REPRODUCED):
        return both_in_regime(*(j["in_regime"] for j in judged if j["verdict"] == verdict))
    return both_in_regime(*(j["in_regime"] for j in judged))


def combine(verdicts: list[str], rule: str) -> str:
    """One verdict from several comparisons (encoders, or training seeds with rule "every"):

    - "every": reproduced when every one is, not reproduced when one is not, else inconclusive;
    - "majority": reproduced (or not reproduced) when more than half are, else inconclusive;
    - "primary": the first comparison's (the caller puts the primary encoder first)."""
    if not verdicts:
        raise ValueError("no verdicts to combine")
    if rule == "primary":
        return verdicts[0]
    if rule == "majority":
        for v in (REPRODUCED, NOT_REPRODUCED):
            if sum(x == v for x in verdicts) * 2 > len(verdicts):
                return v
        return INCONCLUSIVE
    if rule != "every":
        raise ValueError(f"unknown rule {rule!r}; valid: every, majority, primary")
    if all(v == verdicts[0] for v in verdicts):
        return verdicts[0]
    return NOT_REPRODUCED if NOT_REPRODUCED in verdicts else INCONCLUSIVE


def across_seeds(verdicts: list[str]) -> str:
    """SPEC 7: where a profile trains several seeds, a claim holds when it holds for every seed."""
    return combine(verdicts, "every")


@dataclass(frozen=True)
class Claim:
    """A claim of SPEC section 7: its words, its judge, how comparisons combine, the stored result it
    reads, and whether it rests on one training seed (no interval: its statistics are exact functions of
    the features)."""

    id: str
    statement: str
    judge: Callable[[dict], dict]
    rule: str
    source: str
    one_training_seed: bool = True


CLAIMS: dict[str, Claim] = {c.id: c for c in [
    Claim("1", K.CLAIM_STATEMENTS["1"], judge_claim1, "every", "geometry"),
    Claim("2", K.CLAIM_STATEMENTS["2"], judge_claim2, "every", "geometry"),
    Claim("3", K.CLAIM_STATEMENTS["3"], judge_claim3, "every", "geometry"),
    Claim("4", K.CLAIM_STATEMENTS["4"], judge_claim4, "majority", "classifiers", one_training_seed=False),
    Claim("5", K.CLAIM_STATEMENTS["5"], judge_claim5, "every", "tsne_purity"),
    Claim("6", K.CLAIM_STATEMENTS["6"], judge_claim6, "primary", "near_duplicates"),
    Claim("D", K.CLAIM_STATEMENTS["D"], judge_dynamics, "primary", "dynamics"),
]}


# ============================================ judging a profile ============================================


def judge(claim_id: str, comparisons: list[dict], regimes: dict) -> dict:
    """A claim over its comparisons (numbers from :mod:`clorg.book.evidence`): each judged, marked
    ``in_regime`` from ``regimes`` ({(encoder, method): True / False / None}, the gate of every run the
    comparison reads), and combined by the claim's rule. ``verdict`` is None when there is nothing to
    compare (no contrastive and supervised run of one encoder)."""
    c = CLAIMS[claim_id]
    judged = []
    for n in comparisons:
        runs = [tuple(r) for r in n.get("runs", [])]
        in_regime = both_in_regime(*(regimes.get(r) for r in runs)) if runs else None
        judged.append({**c.judge(n), "encoder": n["encoder"], "contrastive": n["contrastive"],
                       "schedule": n.get("schedule"), "epochs": n.get("epochs"), "in_regime": in_regime,
                       **({"records_missing": True} if n.get("records_missing") else {})})  # of the deciding run
    deciding = judged[:1] if c.rule == "primary" else judged
    verdict = combine([j["verdict"] for j in deciding], c.rule) if judged else None
    return {"claim": c.id, "statement": c.statement, "rule": c.rule, "one_training_seed": c.one_training_seed,
            "verdict": verdict, "in_regime": verdict_regime(verdict, deciding, c.rule) if judged else None,
            "comparisons": judged}


def judge_authors(claim_id: str, numbers: dict | None) -> dict | None:
    """The authors' saved numbers through the same criterion; None where they saved none."""
    if numbers is None:
        return None
    return {**CLAIMS[claim_id].judge(numbers), "encoder": numbers.get("encoder")}
