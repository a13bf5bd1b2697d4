"""The machine-readable summary of a build, ``results/<profile>/summary.json``: the encoders and their
regime, and per claim the verdict with its sub-conditions and the authors' numbers through the same test
(:func:`clorg.book.report.verdicts`). The intro's findings block and the Across-profiles page read it.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from ..core import criteria, paths, variants
from ..core.atomic import write_json
from . import report, store


def build(collected: dict, cfg: dict, data, seconds: float | None) -> dict:
    """The machine-readable summary of a build (``results/<profile>/summary.json``): the encoders and
    their regime, and per claim the verdict, ``in_regime``, the deciding numbers, every sub-condition of
    every comparison and the authors' numbers through the same test.

    ``seconds`` (stored as ``build_seconds``) has one meaning whoever writes it: the wall time of executing
    every chapter once, as the writer measured it (``python -m clorg.book``: its own run; the notebooks: the
    sum of each notebook's last execution, the report's own excluded: it writes this before its run is timed,
    :func:`build_seconds`), or None from a writer that executed only
    some chapters (``--only``, a spent budget, the GPU job). It is not what the stored results cost: a
    chapter may reuse them (the report's provenance table gives each result's own compute time). Both it and
    ``written`` are the build's that last judged differently: :func:`write` keeps a summary that judged the same."""
    def claim_id(cid):
        return int(cid) if cid.isdigit() else cid

    return {
        "profile": variants.folder_name(cfg), "dataset": data.summary()["name"],
        # epochs: the epoch the encoder was measured at (its last, or the authors' analysed epoch)
        # schedule: set for a run under another schedule than the profile's (gated at its last snapshot)
        "encoders": [{"encoder": r["encoder"], "method": r["method"], "schedule": r.get("schedule"), "epochs": r["epoch"],
                      "knn_accuracy": r["knn"], "chi1_train": r["chi1"], "in_regime": r["in_regime"],
                      "regime_conditions": r["conditions"]}
                     for r in report.regime_rows(collected, cfg)],
        "claims": [{"claim": claim_id(c["claim"]), "verdict": c["verdict"], "in_regime": c["in_regime"],
                    "statement": c["statement"], "deciding": c["deciding"], "rule": c["rule"],
                    "one_training_seed": c["one_training_seed"], "comparisons": c["comparisons"],
                    "authors": c["authors"], "authors_note": c["authors_note"], "reason": c.get("reason")}
                   for c in report.verdicts(collected, cfg)],
        "spec_version": criteria.SPEC_VERSION,
        "build_seconds": None if seconds is None else round(float(seconds), 1),
        # when it was judged, for the across-profiles page (a file's own date is its checkout's once committed)
        "written": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


# what every summary holds (``written``, the date it was judged, came later: older summaries lack it)
KEYS = ("profile", "dataset", "encoders", "claims", "spec_version", "build_seconds")


# when and how fast a summary was written: not what it judged
_WHEN = ("build_seconds", "written")


def write(cfg: dict, summary: dict) -> Path:
    """Store ``summary`` (from :func:`build`) as the profile's summary.json, atomically; its path. A stored
    summary that judged the same (all but :data:`_WHEN` equal) is kept as it is, with its date and time: a
    build that renders a committed summary again leaves the file, and the checkout, unchanged."""
    path = store.results_dir(variants.folder_name(cfg)) / "summary.json"
    try:
        stored = json.loads(path.read_text())
    except (OSError, ValueError):  # none yet, or damaged: written anew
        stored = None
    if isinstance(stored, dict) and {k: v for k, v in stored.items() if k not in _WHEN} == \
            json.loads(json.dumps({k: v for k, v in summary.items() if k not in _WHEN})):
        return path
    write_json(path, summary)
    return path


class UnusableSummary(ValueError):
    """A summary.json that exists but cannot be used: ``reason`` says why (without the path); ``older``: it is
    whole but was judged by retired criteria."""

    def __init__(self, path: Path, reason: str, older: bool = False):
        self.reason, self.older = reason, older
        super().__init__(f"{path}: {reason}; re-run notebooks/09_report.ipynb to write it again")


def read(path: Path) -> dict | None:
    """A summary.json of the current criteria, checked for its keys; None when absent; UnusableSummary naming
    the file and the reason when damaged or written under retired criteria."""
    if not path.is_file():
        return None
    try:
        out = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UnusableSummary(path, f"cannot be read ({exc})") from exc
    if not isinstance(out, dict):
        raise UnusableSummary(path, "not a JSON object")
    if not isinstance(out.get("claims"), list):
        raise UnusableSummary(path, "no list of claims")
    version = out.get("spec_version", 1)  # the first summaries carried no version: criteria version 1
    if version != criteria.SPEC_VERSION:
        raise UnusableSummary(path, f"judged by SPEC section 7 version {version}; the criteria are now version "
                                    f"{criteria.SPEC_VERSION}", older=True)
    lacking = [k for k in KEYS if k not in out]
    if lacking:
        raise UnusableSummary(path, f"lacks {lacking}")
    return out


def build_seconds(profile: str) -> float | None:
    """The wall time of the chapters executed so far in this build (build/<profile>/execution.json)."""
    path = paths.ROOT / "build" / profile / "execution.json"
    try:
        return sum(n["seconds"] for n in json.loads(path.read_text())["notebooks"])
    except (OSError, ValueError, KeyError):
        return None
