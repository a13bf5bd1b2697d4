"""How the claims' verdicts are shown: every line, table and block a reader reads about a claim, made from
the judgements of :mod:`clorg.book.claims` (a judged claim, as :func:`clorg.book.report.verdicts` returns
it, or its copy in ``summary.json``). Nothing here judges; an absent number reads "not saved" (the
authors') or "not computed" (ours), never NaN.
"""

from __future__ import annotations

import math

import pandas as pd

from ..core import criteria
from .claims import POINTS, REPRODUCED

OPS = {">=": "≥", "<=": "≤", ">": ">", "<": "<"}
MARKS = {True: "✓", False: "✗", None: "—"}
NOT_SAVED, NOT_COMPUTED = "not saved", "not computed"
VERDICT_COLOURS = {"reproduced": "#d9f2d9", "inconclusive": "#fde9c8", "direction only": "#fde9c8",
                   "not reproduced": "#f8d7d7", "not comparable": "#eeeeee", "missing": "#fff3cd"}


def number(value, fmt: str = ".3f", absent: str = NOT_COMPUTED) -> str:
    """A value as printed in a verdict: ``fmt`` a format spec, "yes/no" for a flag, or
    :data:`~clorg.book.claims.POINTS` for a difference of two accuracies (fractions), in percentage points."""
    if value is None or (isinstance(value, float) and math.isnan(value)):  # a NaN in a stored result
        return absent
    if fmt == "yes/no":
        return "yes" if value else "no"
    if fmt == POINTS:
        return f"{format(100 * value, '+.1f')} points".replace("-", "−")
    return format(value, fmt).replace("-", "−")


def threshold(c: dict, absent: str = NOT_COMPUTED) -> str:
    """A condition's bar: "≥ 0.20", or "≤ 0.5 max CH = 125.7" where the bar is made from other numbers."""
    if c.get("threshold_text"):
        bar = c["threshold_text"] + ("" if c["threshold"] is None else f" = {number(c['threshold'], c['fmt'])}")
    else:
        bar = number(c["threshold"], c["fmt"], absent)
    return f"{OPS[c['op']]} {bar}"


def _label(c: dict) -> str:
    return f"({c['label']}) " if c.get("label") and c["label"] != "precondition" else \
        ("precondition: " if c.get("label") == "precondition" else "")


def condition_text(c: dict, absent: str = NOT_COMPUTED) -> str:
    """One condition: "(a) RLD_0.1(CL) − RLD_0.1(RI) 0.186 ✗ (needs ≥ 0.30)"."""
    role = "; if it holds: not reproduced" if c["role"] == "refutes" else ""
    return (f"{_label(c)}{c['quantity']} {number(c['value'], c['fmt'], absent)} {MARKS[c['holds']]} "
            f"(needs {threshold(c, absent)}{role})")


def beside_text(q: dict, absent: str = NOT_COMPUTED) -> str:
    return f"{q['quantity']} {number(q['value'], q['fmt'], absent)}"


def run_name(encoder: str, method: str, schedule: str | None = None) -> str:
    """A run's name in the pages: "resnet18 moco_queue", with its schedule where one is given (claim D's runs,
    a run under another schedule than the profile's), cosine included: in the paper profile the main run is
    paper-literal and cosine is the variant."""
    return f"{encoder} {method}" + (f" ({schedule})" if schedule else "")


def who(j: dict) -> str:
    """A comparison's name (:func:`run_name` of its encoder, contrastive method and schedule)."""
    return run_name(j["encoder"], j["contrastive"], j.get("schedule"))


def deciding(claim: dict) -> str:
    """The numbers a claim's verdict turns on: the conditions of the comparisons that decide it."""
    found = claim["comparisons"][:1] if claim["rule"] == "primary" else claim["comparisons"]
    if not found:
        return "—"
    many = len(claim["comparisons"]) > 1  # which run decides, when there are others; no "|": a table's cell

    def text(j):
        if j.get("records_missing"):  # the run the claim is judged on has no records: no other run stands in for it
            return f"{who(j)}: its records are missing"
        return (f"{who(j)}: " if many else "") + "; ".join(condition_text(c) for c in j["conditions"])
    return " — ".join(text(j) for j in found)


def regime_word(in_regime) -> str:
    return {True: "yes", False: "no", None: "unknown"}[in_regime]


def shown_verdict(claim: dict) -> str:
    """The verdict as a reader sees it: out of regime, or with the regime unknown (a number of the gate
    absent), it is marked and not counted (only a verdict in regime counts: :func:`findings_markdown`)."""
    v = claim["verdict"]
    if v not in ("reproduced", "not reproduced", "inconclusive", "direction only"):
        return v
    mark = {False: " (out of regime: not counted)", None: " (regime unknown: not counted)"}
    return v + mark.get(claim.get("in_regime"), "")


def chapter_lines(claims_: list[dict]) -> list[str]:
    """What a chapter prints for the claims it feeds: each comparison's verdict and conditions, then the
    claim's verdict, whether it is in the regime, and "one training seed" where that applies."""
    out = []
    for c in claims_:
        for j in c["comparisons"]:
            out.append(f"claim {c['claim']}, {who(j)}: {j['verdict']} (in regime: {regime_word(j['in_regime'])})")
            out += [f"    {condition_text(x)}" for x in j["conditions"]]
            out += [f"    beside: {beside_text(q)}" for q in j["beside"]]
        seed = "; one training seed" if c["one_training_seed"] else ""
        out.append(f"claim {c['claim']} on this profile: {shown_verdict(c)}{seed}")
    return out


def overview(claims_: list[dict]) -> pd.DataFrame:
    """One row per claim: the claim, our verdict, in regime, the deciding numbers, and the authors' own
    numbers through the same test."""
    rows = []
    for c in claims_:
        a = c.get("authors")
        theirs = "no number saved (figures only)" if a is None else f"{a['verdict']}: " + "; ".join(
            condition_text(x, NOT_SAVED) for x in a["conditions"])
        rows.append({"claim": c["claim"], "statement": c["statement"], "verdict": c["verdict"],
                     "in regime": regime_word(c["in_regime"]), "deciding numbers (ours)": c.get("deciding") or deciding(c),
                     "the authors' numbers, same test": theirs,
                     "note": "one training seed" if c["one_training_seed"] else "interval over test images and head seeds"})
    return pd.DataFrame(rows)


def styled(table: pd.DataFrame):
    """A table with a verdict column for the page: left-aligned, top-aligned, each verdict coloured."""
    def colour(v):
        return f"background-color: {VERDICT_COLOURS[v]}" if v in VERDICT_COLOURS else ""
    return (table.style.hide(axis="index").map(colour, subset=["verdict"])
            .set_properties(**{"text-align": "left", "vertical-align": "top"}))


def _cell(c: dict | None, absent: str) -> str:
    if c is None:
        return ""
    return f"{number(c['value'], c['fmt'], absent)} {MARKS[c['holds']]}"


def _beside(judgement: dict, name: str):
    """The value a judgement shows beside under ``name``; None where it shows none."""
    return next((q["value"] for q in judgement["beside"] if q["quantity"] == name), None)


def detail_markdown(claim: dict) -> str:
    """A claim's reasoning as a markdown table: one row per sub-condition with its threshold, our number
    and whether it holds for each comparison, and the authors' numbers through the same test; then the
    numbers shown beside (random-init control and the rest), never deciding."""
    comps, a = claim["comparisons"], claim.get("authors")
    seed = " One training seed: the statistics are exact functions of the features; no interval." \
        if claim["one_training_seed"] else ""
    head = (f"**Claim {claim['claim']}: {shown_verdict(claim)}.** {claim['statement'][0].upper() + claim['statement'][1:]}. "
            f"In regime: **{regime_word(claim['in_regime'])}**.{seed} Rule over encoders: {claim['rule']}.\n\n")
    if not comps:
        return head + f"Nothing to judge: {claim.get('reason', 'no comparison')}.\n"
    cols = [who(j) + ("" if j["in_regime"] else " (out of regime)" if j["in_regime"] is False else "") for j in comps]
    theirs = f"the authors ({a['encoder']})" if a else "the authors"
    lines = ["| condition | threshold | " + " | ".join(cols) + f" | {theirs} |",
             "|---|---|" + "---|" * len(cols) + "---|"]
    for i, c in enumerate(comps[0]["conditions"]):
        mine = [_cell(j["conditions"][i], NOT_COMPUTED) for j in comps]
        ours_bar = "; ".join(dict.fromkeys(threshold(j["conditions"][i]) for j in comps))
        lines.append(f"| {_label(c)}{c['quantity']}{' (refutes)' if c['role'] == 'refutes' else ''} | {ours_bar} | "
                     + " | ".join(mine) + f" | {_cell(a['conditions'][i], NOT_SAVED) if a else 'not saved'} |")
    lines.append("| **verdict** | | " + " | ".join(f"**{j['verdict']}**" for j in comps)
                 + f" | **{a['verdict'] if a else 'not saved'}** |")
    # by name, not position: a number shown beside one comparison may be absent from another, or from the
    # authors' (claim 6's share of the pairs the search kept: they saved one pair)
    shown = {q["quantity"]: q["fmt"] for j in comps for q in j["beside"]}
    for name, fmt in shown.items():
        mine = [number(_beside(j, name), fmt) for j in comps]
        lines.append(f"| beside: {name} | | " + " | ".join(mine)
                     + f" | {number(_beside(a, name), fmt, NOT_SAVED) if a else ''} |")
    note = f"\n\nThe authors' row: {claim['authors_note']}." if claim.get("authors_note") else ""
    return head + "\n".join(lines) + note + "\n"


def findings_markdown(summary: dict, link: str | None = None) -> str:
    """The "What we found" block (intro and report): a table of every claim's verdict, whether it is in
    the regime and the numbers that decide it, then the encoders' kNN accuracy and CHI(1)."""
    lines = [f"On the `{summary['profile']}` profile ({summary['dataset']}), judged by the pre-registered criteria "
             f"of SPEC section 7 (version {summary.get('spec_version', 1)}):", "",
             "| claim | verdict | in regime | the numbers that decide it |", "|---|---|---|---|"]
    for c in summary["claims"]:
        lines.append(f"| {c['claim']}. {c['statement']} | **{shown_verdict(c)}** | {regime_word(c['in_regime'])} | "
                     f"{c['deciding']} |")
    counted = [c for c in summary["claims"] if c["in_regime"] is True]
    held = sum(c["verdict"] == REPRODUCED for c in counted)
    lines += ["", f"Counted as evidence (in the paper's regime): {len(counted)} of {len(summary['claims'])} claims"
              + (f", {held} of them reproduced." if counted else "; a verdict out of regime is not counted for or "
                 "against the paper.")]
    # a run under another schedule than the profile's is named with it (summary.json's encoders carry it)
    encs = [f"{run_name(e['encoder'], e['method'], e.get('schedule'))}: kNN "
            f"{number(e['knn_accuracy'], '.1%')}, CHI(1) {number(e['chi1_train'])} "
            f"({'in' if e['in_regime'] else 'not in' if e['in_regime'] is False else 'unknown'} regime)"
            for e in summary["encoders"]]
    if encs:
        gate = ", ".join(f"{kind} {v:.2f}" for kind, v in criteria.REGIME_CHI1.items())
        lines += ["", f"Encoders (regime: CHI(1) on training features at least {gate}, and kNN test accuracy at least "
                      f"{criteria.REGIME_KNN:.0%}): " + "; ".join(encs) + "."]
    if link:
        lines += ["", f"The {link} gives every number and how it was judged."]
    return "\n".join(lines) + "\n"
