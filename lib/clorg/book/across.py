"""Every profile's verdicts side by side (the "Across profiles" page): what each profile's last build wrote
in ``results/<profile>/summary.json``, read and set out, never judged again.

A profile is in one of four states: **built** (a summary of the current criteria), **not built** (no
summary: the page gives the command that builds it), **older format** (a summary written under retired
criteria, before SPEC section 7 version 2: its verdicts are not shown, since the criteria that made them
are retired) or **unreadable** (a damaged file, named with the reason). The smoke profile is left out: it
checks that the code runs, on tiny encoders whose numbers are not evidence.
"""

from __future__ import annotations

from pathlib import Path

from ..core import config, criteria
from . import store, summary
from . import verdicts as V

BUILT, NOT_BUILT, OLDER, UNREADABLE = "built", "not built", "older format", "unreadable"
NOT_EVIDENCE = ("smoke",)  # tiny encoders that check the code runs


def profiles(config_dir: Path = config.CONFIG_DIR) -> list[str]:
    """The profiles the page shows: every profile in ``configs/`` but those whose numbers are not evidence."""
    return [p for p in config.available_profiles(config_dir) if p not in NOT_EVIDENCE]


def build_command(profile: str, config_dir: Path = config.CONFIG_DIR) -> str:
    """The command that builds a profile's book (and so its summary)."""
    needs_gpu = config.load_profile(profile, config_dir=config_dir)["profile"]["needs_gpu"]
    # the Makefile's GPU targets train every run first, then build the book
    return f"make {profile}" if needs_gpu else f"make book PROFILE={profile}"


def read(profile: str, results_root: Path | None = None) -> dict:
    """One profile's state: ``{"profile", "state", "summary", "why", "written"}``."""
    path = store.results_dir(profile, results_root) / "summary.json"
    out = {"profile": profile, "state": NOT_BUILT, "summary": None, "why": None, "written": None}
    if not path.is_file():
        return out
    try:
        found = summary.read(path)
        # summaries before the field: undated (the file's own date is its checkout's once committed)
        return {**out, "state": BUILT, "summary": found, "written": found.get("written")}
    except summary.UnusableSummary as exc:
        if exc.older:
            return {**out, "state": OLDER, "why": exc.reason}
        return {**out, "state": UNREADABLE, "why": f"{path.name}: {exc.reason}"}


def claim_ids(states: list[dict]) -> list:
    """Every claim any built profile judged, in the order of the criteria (ids as the summaries write them:
    1-6 as numbers, "D" for the dynamics)."""
    order = list(criteria.CLAIM_STATEMENTS)
    found = {c["claim"] for s in states if s["summary"] for c in s["summary"]["claims"]}
    return sorted(found, key=lambda c: (order.index(str(c)) if str(c) in order else len(order), str(c)))


def claim(built: dict, cid) -> dict | None:
    """Claim ``cid`` as the summary ``built`` judged it; None where it judged no such claim."""
    return next((c for c in built["claims"] if c["claim"] == cid), None)


def verdict_cell(c: dict | None, bold: bool = True) -> str:
    """A claim's cell in the verdict tables: its verdict, then whether its encoders were in regime."""
    if c is None:
        return "not judged"
    verdict = f"**{c['verdict']}**" if bold else c["verdict"]
    return f"{verdict} (in regime: {V.regime_word(c['in_regime'])})"


def encoder_cells(e: dict) -> list[str]:
    """An encoder's cells in the encoder tables: encoder, method (with its schedule, where the summary names one:
    older summaries do not), kNN accuracy, CHI(1) on training features, in regime."""
    method = e["method"] + (f" ({e['schedule']})" if e.get("schedule") else "")
    return [e["encoder"], method, V.number(e.get("knn_accuracy"), ".1%"), V.number(e.get("chi1_train")),
            V.regime_word(e.get("in_regime"))]


def _status_line(s: dict, config_dir: Path) -> str:
    if s["state"] == BUILT:
        sm = s["summary"]
        return f"built ({sm.get('dataset', '?')}), " + (f"summary written {s['written']}" if s["written"] else
                                                         "summary undated (written before summaries were dated)")
    if s["state"] == NOT_BUILT:
        return f"not built: `{build_command(s['profile'], config_dir)}` builds it"
    return f"{s['state']}: {s['why']}; `{build_command(s['profile'], config_dir)}` builds it again"


def markdown(results_root: Path | None = None, config_dir: Path = config.CONFIG_DIR) -> str:
    """The page's tables: the profiles and their state, the verdicts at a glance (claims by profiles),
    each claim's verdict, regime and deciding numbers per profile, and every encoder's kNN and CHI(1)."""
    states = [read(p, results_root) for p in profiles(config_dir)]
    built = [s for s in states if s["state"] == BUILT]
    lines = ["| profile | state |", "|---|---|"]
    lines += [f"| `{s['profile']}` | {_status_line(s, config_dir)} |" for s in states]
    if not built:
        return "\n".join(lines + ["", "No profile has a summary of the current criteria yet."]) + "\n"

    claims = claim_ids(states)
    lines += ["", "## At a glance", "",
              "Each cell: the verdict, then whether the encoders were in the paper's regime. A verdict out of "
              "regime is not counted for or against the paper.", "",
              "| claim | " + " | ".join(f"`{s['profile']}`" for s in built) + " |",
              "|---|" + "---|" * len(built)]
    for cid in claims:
        cells = [verdict_cell(claim(s["summary"], cid)) for s in built]
        lines.append(f"| {cid} | " + " | ".join(cells) + " |")

    for cid in claims:
        statement = next(c["statement"] for s in built if (c := claim(s["summary"], cid)))
        lines += ["", f"## Claim {cid}: {statement}", "",
                  "| profile | verdict | in regime | the numbers that decide it |", "|---|---|---|---|"]
        for s in built:
            c = claim(s["summary"], cid)
            lines.append(f"| `{s['profile']}` | not judged | | |" if c is None else
                         f"| `{s['profile']}` | **{c['verdict']}** | {V.regime_word(c['in_regime'])} | "
                         f"{c.get('deciding') or '—'} |")

    gate = ", ".join(f"{kind} {v:.2f}" for kind, v in criteria.REGIME_CHI1.items())
    lines += ["", "## The encoders", "",
              f"The regime: CHI(1) on training features at least {gate}, and kNN test accuracy (k = "
              f"{criteria.REGIME_KNN_K}) at least {criteria.REGIME_KNN:.0%}.", "",
              "| profile | encoder | method | epochs | kNN accuracy | CHI(1), training | in regime |",
              "|---|---|---|---:|---:|---:|---|"]
    for s in built:
        for e in s["summary"].get("encoders", []):
            encoder, method, *measures = encoder_cells(e)
            lines.append(f"| `{s['profile']}` | {encoder} | {method} | {e.get('epochs', '—')} | "
                         + " | ".join(measures) + " |")
    return "\n".join(lines) + "\n"
