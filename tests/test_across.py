"""The "Across profiles" page (clorg.book.across) on hand-written summaries: a built profile's verdicts
and numbers, a profile not built (with its command), a summary of the retired criteria and a damaged file."""

from __future__ import annotations

import json
import shutil

import pytest

from clorg.book import across
from clorg.core.config import CONFIG_DIR


@pytest.fixture
def configs(tmp_path):
    """A config folder with four profiles: two CPU, one GPU, and smoke (never shown)."""
    folder = tmp_path / "configs"
    folder.mkdir()
    for name in ("quick", "simclr", "gpu10", "smoke"):
        shutil.copy(CONFIG_DIR / f"{name}.yaml", folder / f"{name}.yaml")
    return folder


def _condition(quantity, value, op, threshold, holds):
    return {"quantity": quantity, "value": value, "op": op, "threshold": threshold, "threshold_text": None,
            "holds": holds, "role": "condition", "fmt": ".3f"}


def _summary(profile, verdict1, in_regime1, deciding1, knn, chi1, **extra):
    return {"profile": profile, "dataset": "cifar10", "spec_version": 2, "build_seconds": 12.0,
            "encoders": [{"encoder": "resnet18", "method": "moco_queue", "epochs": 40, "knn_accuracy": knn,
                          "chi1_train": chi1, "in_regime": chi1 >= 0.80 and knn >= 0.80, "regime_conditions": []}],
            "claims": [{"claim": 1, "verdict": verdict1, "in_regime": in_regime1, "statement": "CHI falls",
                        "deciding": deciding1, "rule": "every", "one_training_seed": True, "comparisons": [],
                        "authors": None, "authors_note": None, "reason": None},
                       {"claim": "D", "verdict": "missing", "in_regime": None, "statement": "CH collapses",
                        "deciding": "—", "rule": "every", "one_training_seed": True, "comparisons": [],
                        "authors": None, "authors_note": None, "reason": None}], **extra}


def _write(results, profile, content):
    (results / profile).mkdir(parents=True, exist_ok=True)
    (results / profile / "summary.json").write_text(content if isinstance(content, str) else json.dumps(content))


def test_the_page_shows_every_profile_but_smoke(configs):
    assert across.profiles(configs) == ["gpu10", "quick", "simclr"]


def test_a_profile_not_built_gives_its_command(configs, tmp_path):
    md = across.markdown(tmp_path / "results", configs)
    assert "| `quick` | not built: `make book PROFILE=quick` builds it |" in md
    # a GPU profile is built by its Makefile target, which trains first
    assert "| `gpu10` | not built: `make gpu10` builds it |" in md
    assert "No profile has a summary of the current criteria yet." in md


def test_built_profiles_side_by_side_with_their_numbers(configs, tmp_path):
    results = tmp_path / "results"
    _write(results, "quick", _summary("quick", "reproduced", False, "D(CL) 0.329 ✓ (needs ≥ 0.200)", 0.448, 0.412))
    _write(results, "gpu10", _summary("gpu10", "not reproduced", True, "D(CL) 0.150 ✗ (needs ≥ 0.200)", 0.881, 0.853))
    md = across.markdown(results, configs)
    # the glance table: one column per built profile, in the order of the profiles
    assert "| claim | `gpu10` | `quick` |" in md
    assert "| 1 | **not reproduced** (in regime: yes) | **reproduced** (in regime: no) |" in md
    assert "| D | **missing** (in regime: unknown) | **missing** (in regime: unknown) |" in md
    # each claim's table carries the deciding numbers as the summary wrote them
    assert "| `quick` | **reproduced** | no | D(CL) 0.329 ✓ (needs ≥ 0.200) |" in md
    assert "| `gpu10` | **not reproduced** | yes | D(CL) 0.150 ✗ (needs ≥ 0.200) |" in md
    # the encoders: kNN as a percentage, CHI(1) to three places, the regime in words
    assert "| `quick` | resnet18 | moco_queue | 40 | 44.8% | 0.412 | no |" in md
    assert "| `gpu10` | resnet18 | moco_queue | 40 | 88.1% | 0.853 | yes |" in md
    assert "| `simclr` | not built: `make book PROFILE=simclr` builds it |" in md
    # claim 1 comes before the dynamics, as in the criteria
    assert md.index("## Claim 1:") < md.index("## Claim D:")


def test_a_summary_of_the_retired_criteria_is_named_and_not_shown(configs, tmp_path):
    results = tmp_path / "results"
    old = _summary("quick", "reproduced", None, "ratio 14.5", 0.448, 0.412)
    del old["spec_version"]  # the first summaries carried no version
    _write(results, "quick", old)
    _write(results, "simclr", _summary("simclr", "inconclusive", False, "D(CL) 0.190", 0.47, 0.40))
    md = across.markdown(results, configs)
    assert ("| `quick` | older format: judged by SPEC section 7 version 1; the criteria are now version 2; "
            "`make book PROFILE=quick` builds it again |") in md
    assert "ratio 14.5" not in md and "| claim | `simclr` |" in md


def test_a_damaged_summary_is_named_with_the_reason(configs, tmp_path):
    results = tmp_path / "results"
    _write(results, "quick", "{not json")
    _write(results, "simclr", json.dumps({"profile": "simclr", "claims": "none"}))
    states = {s["profile"]: s for s in (across.read(p, results) for p in across.profiles(configs))}
    assert states["quick"]["state"] == across.UNREADABLE and "summary.json: cannot be read" in states["quick"]["why"]
    assert states["simclr"]["state"] == across.UNREADABLE and states["simclr"]["why"] == "summary.json: no list of claims"
    assert states["gpu10"]["state"] == across.NOT_BUILT and states["gpu10"]["written"] is None


def test_a_run_under_another_schedule_is_named_with_it(configs, tmp_path):
    """A followed run under another schedule than the profile's is gated too (claim D may read it): the
    encoders table names its schedule; older summaries, without the field, show the method alone."""
    results = tmp_path / "results"
    summary = _summary("quick", "reproduced", False, "—", 0.448, 0.412)
    summary["encoders"].append({"encoder": "resnet18", "method": "moco_queue", "schedule": "paper-compressed",
                                "epochs": 40, "knn_accuracy": 0.41, "chi1_train": 0.39, "in_regime": False,
                                "regime_conditions": []})
    _write(results, "quick", summary)
    md = across.markdown(results, configs)
    assert "| `quick` | resnet18 | moco_queue | 40 | 44.8% | 0.412 | no |" in md
    assert "| `quick` | resnet18 | moco_queue (paper-compressed) | 40 | 41.0% | 0.390 | no |" in md


def test_a_summary_is_dated_by_its_own_field_not_by_its_file(configs, tmp_path):
    """A committed summary.json's file date is its checkout's: the page reads the date the summary carries
    (summary.build writes it), and calls one written before the field undated."""
    import os

    results = tmp_path / "results"
    _write(results, "quick", _summary("quick", "reproduced", False, "—", 0.448, 0.412, written="2026-12-04 09:30 UTC"))
    _write(results, "simclr", _summary("simclr", "reproduced", False, "—", 0.448, 0.412))
    for p in results.rglob("summary.json"):
        os.utime(p, (0, 0))  # a file date that says nothing of when it was judged
    md = across.markdown(results, configs)
    assert "| `quick` | built (cifar10), summary written 2026-12-04 09:30 UTC |" in md
    assert "| `simclr` | built (cifar10), summary undated (written before summaries were dated) |" in md
    assert "1970" not in md
