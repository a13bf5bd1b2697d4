"""A profile's verdicts over training seeds (clorg.book.seeds) on hand-written summaries: which folders count as
seeds of a profile, SPEC section 7's "holds when it holds for every seed", and the section's tables."""

from __future__ import annotations

import json
import shutil

import pytest

from clorg.book import seeds
from clorg.core.config import CONFIG_DIR
from clorg.core.variants import RECORD


@pytest.fixture
def configs(tmp_path):
    folder = tmp_path / "configs"
    folder.mkdir()
    for name in ("quick", "simclr", "smoke"):
        shutil.copy(CONFIG_DIR / f"{name}.yaml", folder / f"{name}.yaml")
    return folder


def _claim(cid, verdict, in_regime=True, deciding="CHI(1) 0.41"):
    return {"claim": cid, "verdict": verdict, "in_regime": in_regime, "statement": f"claim {cid}",
            "deciding": deciding, "rule": "every", "one_training_seed": True, "comparisons": [],
            "authors": None, "authors_note": None, "reason": None}


def _summary(name, claims, knn=0.47, chi1=0.41):
    return {"profile": name, "dataset": "cifar10", "spec_version": 2, "build_seconds": 1.0,
            "encoders": [{"encoder": "resnet18", "method": "moco_queue", "epochs": 40, "knn_accuracy": knn,
                          "chi1_train": chi1, "in_regime": False, "regime_conditions": []}],
            "claims": claims}


def _build(results, name, claims, overrides=None, profile="quick", **numbers):
    folder = results / name
    folder.mkdir(parents=True)
    if claims is not None:
        (folder / "summary.json").write_text(json.dumps(_summary(name, claims, **numbers)))
    if overrides is not None:
        (folder / RECORD).write_text(json.dumps({"name": name, "profile": profile, "overrides": overrides}))


def test_seed_variants_are_the_folders_changing_only_the_seed(configs, tmp_path):
    results = tmp_path / "results"
    _build(results, "quick", [_claim(1, "reproduced")])
    _build(results, "quick+seed=1-aaaa", [_claim(1, "reproduced")], {"train.seed": 1})
    _build(results, "quick+seed=2-bbbb", None, {"train.seed": 2})                       # not built yet
    _build(results, "quick+lr=1-cccc", [_claim(1, "reproduced")], {"train.seed": 3, "train.contrastive_lr": 1})
    _build(results, "simclr+seed=4-dddd", [_claim(1, "reproduced")], {"train.seed": 4}, profile="simclr")
    _build(results, "quick+seed=5-eeee", [_claim(1, "reproduced")], {"train.seed": 5}, profile="simclr")
    (results / "quick+seed=6-ffff").mkdir()
    (results / "quick+seed=6-ffff" / RECORD).write_text("{not json")
    (results / "quick+seed=7-gggg").mkdir()
    (results / "quick+seed=7-gggg" / RECORD).write_text("[1, 2]")
    _build(results, "quick+seed=true-hhhh", [_claim(1, "reproduced")], {"train.seed": True})  # JSON true: no seed
    # the profile's own build counts at the seed its file sets (quick: 0)
    assert {s: (st["profile"], st["state"]) for s, st in seeds.states("quick", results, configs).items()} == {
        0: ("quick", "built"), 1: ("quick+seed=1-aaaa", "built"), 2: ("quick+seed=2-bbbb", "not built")}


def test_a_claim_holds_when_it_holds_for_every_seed():
    r, n, i = _claim(1, "reproduced"), _claim(1, "not reproduced"), _claim(1, "inconclusive")
    assert seeds.every_seed([r, r, r]) == ("reproduced", True)
    assert seeds.every_seed([r, n, r])[0] == "not reproduced"
    assert seeds.every_seed([r, i, r])[0] == "inconclusive"
    assert seeds.every_seed([r, _claim(1, "reproduced", in_regime=False)]) == ("reproduced", False)
    assert seeds.every_seed([r, _claim("D", "direction only", None)]) == ("inconclusive", None)
    # a seed where the claim has no verdict of the criteria is not a seed where it fails
    assert seeds.every_seed([r, _claim(1, "missing", None)]) == (seeds.NOT_ON_EVERY, None)
    assert seeds.every_seed([r, None]) == (seeds.NOT_ON_EVERY, None)
    # ... but a seed where it fails decides, whatever the others lack or their regime: the verdict is in
    # regime when a seed in regime fails
    assert seeds.every_seed([n, None]) == ("not reproduced", True)
    assert seeds.every_seed([n, _claim(1, "reproduced", in_regime=False)]) == ("not reproduced", True)
    assert seeds.every_seed([_claim(1, "not reproduced", in_regime=False), r]) == ("not reproduced", False)
    assert seeds.every_seed([_claim(1, "not reproduced", in_regime=None), r]) == ("not reproduced", None)


def test_the_section_sets_seeds_side_by_side(configs, tmp_path):
    results = tmp_path / "results"
    _build(results, "quick", [_claim(1, "reproduced", deciding="CHI(1) 0.410"), _claim("D", "direction only", None)])
    _build(results, "quick+seed=2-bbbb", [_claim(1, "not reproduced", deciding="CHI(1) 0.520"),
                                          _claim("D", "direction only", None)], {"train.seed": 2}, knn=0.455, chi1=0.52)
    _build(results, "quick+seed=1-aaaa", [_claim(1, "reproduced", deciding="CHI(1) 0.400")], {"train.seed": 1})
    (results / "quick+seed=3-cccc").mkdir()
    (results / "quick+seed=3-cccc" / "summary.json").write_text("{damaged")
    (results / "quick+seed=3-cccc" / RECORD).write_text(
        json.dumps({"profile": "quick", "overrides": {"train.seed": 3}}))
    md = seeds.markdown("quick", results, configs)
    assert md.startswith("## Training seeds of `quick`")
    assert "| claim | seed 0 | seed 1 | seed 2 | every seed |" in md
    assert ("| 1 | reproduced (in regime: yes) | reproduced (in regime: yes) | not reproduced (in regime: yes) | "
            "**not reproduced** (in regime: yes) |") in md
    # seed 1's summary has no claim D: D is not judged on every seed
    assert "| D | direction only (in regime: unknown) | not judged | direction only (in regime: unknown) | " \
           f"{seeds.NOT_ON_EVERY} |" in md
    assert "Not counted: seed 3 (`quick+seed=3-cccc`): unreadable, summary.json: cannot be read" in md
    assert "| 1 | 2 | CHI(1) 0.520 |" in md and "| 1 | 1 | CHI(1) 0.400 |" in md
    assert "| resnet18 | moco_queue | 2 | 45.5% | 0.520 | no |" in md
    # the page's end: this profile's section, and none for a profile with one seed
    assert seeds.sections(results, configs) == "\n" + md


def test_one_seed_gives_no_section(configs, tmp_path):
    results = tmp_path / "results"
    _build(results, "quick", [_claim(1, "reproduced")])
    _build(results, "quick+seed=1-aaaa", None, {"train.seed": 1})
    assert seeds.markdown("quick", results, configs) == ""
    assert seeds.sections(results, configs) == ""


def test_the_profiles_own_build_missing_or_older_is_named_not_counted(configs, tmp_path):
    results = tmp_path / "results"
    _build(results, "quick+seed=1-aaaa", [_claim(1, "reproduced")], {"train.seed": 1})
    _build(results, "quick+seed=2-bbbb", [_claim(1, "reproduced")], {"train.seed": 2})
    _build(results, "quick+seed=3-cccc", [_claim(1, "reproduced")], {"train.seed": 3})
    older = json.loads((results / "quick+seed=3-cccc" / "summary.json").read_text())
    (results / "quick+seed=3-cccc" / "summary.json").write_text(json.dumps({**older, "spec_version": 1}))
    md = seeds.markdown("quick", results, configs)
    assert "| claim | seed 1 | seed 2 | every seed |" in md
    assert ("Not counted: seed 0 (`quick`): not built; seed 3 (`quick+seed=3-cccc`): older format, judged by SPEC "
            "section 7 version 1") in md
    # reproduced on both seeds built, but seeds 0 and 3 are not judged: not on every seed
    assert f"| 1 | reproduced (in regime: yes) | reproduced (in regime: yes) | {seeds.NOT_ON_EVERY} |" in md
    # the seeds asked for, and only those
    asked = seeds.markdown("quick", results, configs, only=[1, 2])
    assert "| claim | seed 1 | seed 2 | every seed |" in asked and "Not counted" not in asked
    assert "| 1 | reproduced (in regime: yes) | reproduced (in regime: yes) | **reproduced** (in regime: yes) |" in asked
    # a seed whose build failed in the caller's hands (bench/seeds.py): named, and not counted as holding
    failed = seeds.markdown("quick", results, configs, only=[1, 2, 3], failed={3: "its build ended with exit status 1"})
    assert "Not counted: seed 3 (`quick+seed=3-cccc`): build failed, its build ended with exit status 1." in failed
    assert f"| {seeds.NOT_ON_EVERY} |" in failed
    # one that failed before it left a folder is named by the command that builds it
    never = seeds.markdown("quick", results, configs, only=[1, 2, 4], failed={4: "its build ended with exit status 2"})
    assert "Not counted: seed 4 (`quick --override train.seed=4`): build failed, its build ended with exit status 2." in never
    assert seeds.markdown("quick", results, configs, only=[1]) == ""


def test_smoke_seeds_are_not_on_the_page(configs, tmp_path):
    results = tmp_path / "results"
    _build(results, "smoke", [_claim(1, "reproduced")])
    _build(results, "smoke+seed=1-aaaa", [_claim(1, "reproduced")], {"train.seed": 1}, profile="smoke")
    assert seeds.markdown("smoke", results, configs) != "" and seeds.sections(results, configs) == ""
