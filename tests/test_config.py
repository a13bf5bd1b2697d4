"""Profiles: every shipped profile is valid, and every mistake in one is named."""

from __future__ import annotations

import pytest

from clorg.config import SCHEMA, ConfigError, available_profiles, dataset_candidates, load_profile


def test_shipped_profiles_are_valid_and_complete():
    assert {"smoke", "quick", "paper"} <= set(available_profiles())
    for name in ("smoke", "quick", "paper"):
        cfg = load_profile(name)
        assert cfg["profile"]["name"] == name
        assert set(cfg) == set(SCHEMA)
    assert dataset_candidates(load_profile("quick")) == ["cifar10", "fashion-mnist", "digits"]
    assert dataset_candidates(load_profile("paper")) == ["cifar10"]
    paper = load_profile("paper")
    # the authors' setup (SPEC section 3): full data, full-size encoders, their batch sizes
    assert paper["data"]["train_per_class"] is None and paper["train"]["width_scale"] == 1.0
    assert (paper["train"]["contrastive_batch_size"], paper["train"]["supervised_batch_size"]) == (700, 1000)


def test_unknown_profile_lists_the_valid_ones():
    with pytest.raises(ConfigError, match=r"unknown profile 'fast': valid profiles are \[.*'paper', 'quick', 'smoke'"):
        load_profile("fast")


def test_overrides_replace_dotted_keys():
    cfg = load_profile("smoke", {"data.train_per_class": 7, "metrics.chi_ks": [1, 5]})
    assert cfg["data"]["train_per_class"] == 7 and cfg["metrics"]["chi_ks"] == [1, 5]
    assert load_profile("smoke")["data"]["train_per_class"] != 7  # the file itself is untouched


@pytest.mark.parametrize("overrides, message", [
    ({"data.train_per_clas": 7}, r"unknown override key 'data.train_per_clas'; valid keys: .*data.train_per_class"),
    ({"dat.train_per_class": 7}, "unknown override key 'dat.train_per_class'"),
    ({"data.train_per_class": -1}, r"data.train_per_class = -1 must be a positive integer or null"),
    ({"train.encoders": ["resnet50"]}, r"train.encoders = \['resnet50'\] must be a non-empty list drawn from"),
    ({"train.schedule": "linear"}, r"must be one of \['cosine', 'paper-literal'\]"),
    ({"metrics.rld_temperatures": [0.1, 0]}, "rld_temperatures"),
    ({"toy.seeds": True}, "toy.seeds = True must be a positive integer"),
])
def test_bad_overrides_are_named(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_profile("smoke", overrides)


def test_profile_file_with_unknown_and_missing_keys(tmp_path):
    text = (load_profile.__globals__["CONFIG_DIR"] / "smoke.yaml").read_text()
    bad = tmp_path / "mine.yaml"
    bad.write_text(text.replace("  subset_seed: 0\n", "  subset_sed: 0\n") + "extra:\n  x: 1\n")
    with pytest.raises(ConfigError) as err:
        load_profile(bad)
    msg = str(err.value)
    assert "unknown key data.subset_sed" in msg and "missing key data.subset_seed" in msg
    assert "unknown section 'extra'" in msg
    broken = tmp_path / "broken.yaml"
    broken.write_text("data: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_profile(broken)
    with pytest.raises(ConfigError, match="does not exist"):
        load_profile(tmp_path / "absent.yaml")
