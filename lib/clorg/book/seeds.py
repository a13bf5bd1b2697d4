"""A profile's verdicts over training seeds: its own build beside its variants that change only the training
seed (``--override train.seed=N``), each as its build wrote it in ``summary.json``, never judged again, and
per claim the verdict over every seed by SPEC section 7's rule: "where a profile trains several seeds, each
claim is judged per seed and holds when it holds for every seed" (:func:`clorg.book.claims.across_seeds`).

    >>> seeds.states("quick")          # {0: state of "quick", 1: of "quick+seed=1-...", ...}
    >>> print(seeds.markdown("quick")) # "" unless two seeds or more are built
    >>> seeds.sections()               # every such profile's section: the Across-profiles page's end

The claims' statistics are exact functions of the features, so one seed gives no interval (SPEC section
7, "Noise"); the seeds are what shows how far a verdict, and the numbers that decide it, move with the
training seed alone: the data subset, the heads' seeds and every other setting stay the profile's.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..core import config, variants
from . import across, store
from .claims import NOT_REPRODUCED, VERDICTS, across_seeds, verdict_regime

SEED_KEY = "train.seed"
NOT_ON_EVERY = "not judged on every seed"


def states(profile: str, results_root: Path | None = None, config_dir: Path = config.CONFIG_DIR) -> dict[int, dict]:
    """``{seed: state}``, sorted by seed (a state as :func:`clorg.book.across.read` gives it: built, not built,
    older format or unreadable; its ``profile`` the folder name): the profile's own build, at the seed its
    file sets, and every variant folder whose overrides change ``train.seed`` and nothing else."""
    own_seed = config.load_profile(profile, config_dir=config_dir)["train"]["seed"]
    found = {own_seed: across.read(profile, results_root)}
    root = store.results_dir(profile, results_root).parent
    for record in sorted(root.glob(f"{profile}{variants.SEPARATOR}*/{variants.RECORD}")):
        try:
            rec = json.loads(record.read_text())
        except (OSError, ValueError):
            continue  # a damaged record belongs to `make clean-variants`, not to this page
        if not isinstance(rec, dict) or rec.get("profile") != profile:
            continue
        overrides = rec.get("overrides")
        if not isinstance(overrides, dict) or set(overrides) != {SEED_KEY}:
            continue
        seed = overrides[SEED_KEY]
        if type(seed) is int and seed >= 0 and seed not in found:  # not bool: JSON's true is no seed
            found[seed] = across.read(record.parent.name, results_root)
    return dict(sorted(found.items()))


def _judged(c: dict | None) -> bool:
    return c is not None and c.get("verdict") in VERDICTS


def every_seed(claims: list[dict | None]) -> tuple[str, bool | None]:
    """(verdict over every seed, in regime) from one judged claim per seed (None: not judged there). A seed
    without a verdict of the criteria ("missing": its result not stored; "not comparable") is not a seed where
    the claim fails: the claim is then not judged on every seed, unless a judged seed already says not
    reproduced, which no other seed can undo."""
    judged = [c for c in claims if _judged(c)]
    if len(judged) < len(claims):
        if not any(c["verdict"] == NOT_REPRODUCED for c in judged):
            return NOT_ON_EVERY, None
        return NOT_REPRODUCED, verdict_regime(NOT_REPRODUCED, judged, "every")
    verdict = across_seeds([c["verdict"] for c in claims])
    return verdict, verdict_regime(verdict, claims, "every")


def markdown(profile: str, results_root: Path | None = None, config_dir: Path = config.CONFIG_DIR,
             heading: str | None = None, only: list[int] | None = None, failed: dict[int, str] | None = None) -> str:
    """The profile's seeds section: verdicts (claims by seeds, and over every seed), the numbers that decide
    each claim per seed, and each encoder's kNN and CHI(1) per seed; "" when fewer than two seeds are built.
    ``heading``: the section's title (default "Training seeds of `<profile>`"); ``only``: these seeds, not
    every seed build found; ``failed``: seeds whose build the caller saw fail, with why (what their folder
    holds is an older build's). A seed found but not built (or failed) has no column, and the claim is not
    judged on every seed, as for a seed whose summary lacks the claim (:func:`every_seed`)."""
    failed = failed or {}
    found = {s: st for s, st in states(profile, results_root, config_dir).items() if only is None or s in only}
    found.update({s: {**found.get(s, {"profile": f"{profile} --override {SEED_KEY}={s}"}), "state": "build failed",
                      "why": why}
                  for s, why in failed.items() if only is None or s in only})
    built = {s: st for s, st in found.items() if st["state"] == across.BUILT}
    if len(built) < 2:
        return ""
    seeds = list(built)
    lines = [f"## {heading or f'Training seeds of `{profile}`'}", "",
             f"The profile's build and its variants that change only the training seed (`--override "
             f"{SEED_KEY}=N`): the data, the heads' seeds and every other setting are the profile's. Each cell: "
             f"the verdict, then whether the encoders were in the paper's regime. By SPEC section 7 a claim "
             f"holds when it holds for every seed (last column).", "",
             "| claim | " + " | ".join(f"seed {s}" for s in seeds) + " | every seed |",
             "|---|" + "---|" * (len(seeds) + 1)]
    claim_ids = across.claim_ids(list(built.values()))
    for cid in claim_ids:
        judged = [across.claim(st["summary"], cid) for st in built.values()]
        cells = [across.verdict_cell(c, bold=False) for c in judged]
        # a seed not built is not a seed where the claim holds: "every seed" counts every seed found
        verdict, regime = every_seed(judged + [None] * (len(found) - len(built)))
        last = verdict if verdict == NOT_ON_EVERY else across.verdict_cell({"verdict": verdict, "in_regime": regime})
        lines.append(f"| {cid} | " + " | ".join(cells) + f" | {last} |")
    if skipped := {s: st for s, st in found.items() if s not in built}:
        lines += ["", "Not counted: " + "; ".join(
            f"seed {s} (`{st['profile']}`): {st['state']}" + (f", {st['why']}" if st["why"] else "")
            for s, st in skipped.items()) + "."]

    lines += ["", "The numbers that decide each claim, per seed:", "", "| claim | seed | the numbers that decide it |",
              "|---|---:|---|"]
    for cid in claim_ids:
        for s, st in built.items():
            c = across.claim(st["summary"], cid)
            lines.append(f"| {cid} | {s} | {(c or {}).get('deciding') or '—'} |")

    lines += ["", "The encoders, per seed:", "",
              "| encoder | method | seed | kNN accuracy | CHI(1), training | in regime |", "|---|---|---:|---:|---:|---|"]
    rows = sorted(((across.encoder_cells(e), s) for s, st in built.items() for e in st["summary"].get("encoders", [])),
                  key=lambda row: (row[0][0], row[0][1], row[1]))  # encoder, method, seed
    for (encoder, method, *measures), s in rows:
        lines.append(f"| {encoder} | {method} | {s} | " + " | ".join(measures) + " |")
    return "\n".join(lines) + "\n"


def sections(results_root: Path | None = None, config_dir: Path = config.CONFIG_DIR) -> str:
    """The seeds section of every profile on the Across-profiles page that is built under two seeds or more,
    each after a blank line; "" when none is."""
    return "".join("\n" + md for p in across.profiles(config_dir) if (md := markdown(p, results_root, config_dir)))
