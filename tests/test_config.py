"""Profiles: every shipped profile is valid, and every mistake in one is named. (Unknown profiles, unknown
keys, values of the wrong type and code hidden in a profile are faults of the catalogue: tests/test_faults.py.)"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml

from clorg.core import config
from clorg.core.config import SCHEMA, ConfigError, available_profiles, dataset_candidates, load_profile
from clorg.core.paths import CONFIG_DIR, ROOT


def test_shipped_profiles_are_valid_and_complete():
    assert {"smoke", "quick", "gpu10", "paper"} <= set(available_profiles())
    for name in ("smoke", "quick", "gpu10", "paper"):
        cfg = load_profile(name)
        assert cfg["profile"]["name"] == name
        assert set(cfg) == set(SCHEMA)
        # the file's keys, and what loading adds: the variant (its own name here), the profile and its overrides
        assert set(cfg["profile"]) == set(SCHEMA["profile"]) | {"variant", "base", "overrides"}
        assert (cfg["profile"]["variant"], cfg["profile"]["base"], cfg["profile"]["overrides"]) == (name, name, {})
        for section, keys in SCHEMA.items():
            if section != "profile":  # checked above, with what loading adds
                assert set(cfg[section]) == set(keys), section
        # the CPU profiles run anywhere; gpu10 and paper are trained by ci/train_profile.py on a GPU
        assert cfg["profile"]["needs_gpu"] is (name in ("gpu10", "paper"))
    assert dataset_candidates(load_profile("quick")) == ["cifar10", "fashion-mnist", "digits"]
    assert dataset_candidates(load_profile("paper")) == ["cifar10"]
    paper = load_profile("paper")
    # the authors' setup (SPEC section 3): full data, full-size encoders, their batch sizes
    assert paper["data"]["train_per_class"] is None and paper["train"]["width_scale"] == 1.0
    assert (paper["train"]["contrastive_batch_size"], paper["train"]["supervised_batch_size"]) == (700, 1000)


def test_gpu10_is_real_cifar10_scale_with_enough_checkpoints():
    cfg = load_profile("gpu10")
    d, t = cfg["data"], cfg["train"]
    assert dataset_candidates(cfg) == ["cifar10"]
    assert d["train_per_class"] is None and d["test_per_class"] is None  # all 50,000 / 10,000 images
    assert t["width_scale"] == 1.0 and "resnet18" in t["encoders"]
    assert {"moco_queue", "supervised"} <= set(t["methods"])
    assert t["methods"][0] == "supervised"  # first: a deadline can then only shorten the contrastive run
    assert cfg["tsne"]["sample_size"] == 5_000 and cfg["heads"]["seeds"] == 3
    assert cfg["heads"]["dense_max_nodes"] >= 60_000  # the authors' dense graph over all 60,000 nodes
    snapshots = 1 + t["contrastive_epochs"] // t["checkpoint_every"]  # epoch 0, every n-th, the last
    assert snapshots >= 8  # enough points for the dynamics chapter
    for kind in ("contrastive", "supervised"):
        assert t[f"{kind}_batch_size"] % 8 == 0  # splits over 1, 2, 4 or 8 GPUs under torchrun


def test_overrides_replace_dotted_keys():
    cfg = load_profile("smoke", {"data.train_per_class": 7, "metrics.chi_ks": [1, 5]})
    assert cfg["data"]["train_per_class"] == 7 and cfg["metrics"]["chi_ks"] == [1, 5]
    assert load_profile("smoke")["data"]["train_per_class"] != 7  # the file itself is untouched


def test_broken_or_absent_profile_file_is_named(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("data: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_profile(broken)
    with pytest.raises(ConfigError, match="does not exist"):
        load_profile(tmp_path / "absent.yaml")


def test_parse_overrides_reads_yaml_values_and_rejects_a_missing_equals():
    from clorg.core.config import parse_overrides

    assert parse_overrides(["data.train_per_class=50", "train.methods=[simclr]", "data.test_per_class=null"]) == {
        "data.train_per_class": 50, "train.methods": ["simclr"], "data.test_per_class": None}
    # YAML 1.1 reads 1e-3 (no dot) as a string: an override means the number, inside a list too
    assert parse_overrides(["train.contrastive_lr=1e-3", "profile.name=abc", "metrics.rld_temperatures=[1, 1e-1]",
                            "data.train_per_class=1_000", "tsne.perplexities=[5, 1.5e3]"]) == {
        "train.contrastive_lr": 1e-3, "profile.name": "abc", "metrics.rld_temperatures": [1, 0.1],
        "data.train_per_class": 1000, "tsne.perplexities": [5, 1500.0]}
    assert parse_overrides(["profile.name=nan"]) == {"profile.name": "nan"}  # text stays text
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_overrides(["data.train_per_class"])


def test_a_number_with_an_exponent_is_a_number_in_a_profile_file_and_named_where_it_arrives_as_text(tmp_path):
    """YAML 1.1 reads 2e-3 as text; the profile reader reads it as YAML 1.2 does. Where it still arrives as
    text (papermill's -y passes a mapping read by YAML 1.1), the refusal says so and gives the number."""
    text = (CONFIG_DIR / "smoke.yaml").read_text()
    assert "  contrastive_lr: " in text
    mine = tmp_path / "mine.yaml"
    mine.write_text("\n".join("  contrastive_lr: 2e-3" if line.startswith("  contrastive_lr: ") else line
                              for line in text.splitlines()).replace("name: smoke", "name: mine"))
    assert load_profile(mine)["train"]["contrastive_lr"] == 0.002
    for shipped in available_profiles():  # the reader reads every shipped profile as before
        assert yaml.load((CONFIG_DIR / f"{shipped}.yaml").read_text(), Loader=config._UniqueKeyLoader) == \
            yaml.safe_load((CONFIG_DIR / f"{shipped}.yaml").read_text()), shipped
    with pytest.raises(ConfigError, match=r"train.contrastive_lr = '2e-3' must be a positive number .*'2e-3' is "
                                          r"text, not a number: .*papermill's -y.* write it as 0.002"):
        load_profile("smoke", {"train.contrastive_lr": "2e-3"})
    with pytest.raises(ConfigError) as err:
        load_profile("smoke", {"train.contrastive_lr": "nan"})
    assert "is text, not a number" not in str(err.value)  # no number was meant


def test_a_profile_file_that_is_not_text_is_named(tmp_path):
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\xff\xfe\x00profile")
    with pytest.raises(ConfigError, match=rf"profile {binary} is not UTF-8 text .*save it as UTF-8 YAML"):
        load_profile(binary)
    folder = tmp_path / "folder.yaml"
    folder.mkdir()
    with pytest.raises(ConfigError, match=rf"profile file {folder} is a folder: give the path of a profile's"):
        load_profile(folder)


def test_an_edited_copy_of_a_shipped_profile_may_not_keep_its_name_over_the_projects_results(tmp_path, monkeypatch):
    """configs/gpu10.yaml copied, edited and computed by path keeps profile.name gpu10: with the project's own
    results/ it would replace gpu10's committed results; refused, with both ways out, by what writes results (a
    chapter's setup, the notebook executor), not by a reader of the profile (an import of a GPU job's weights
    reads it). A copy that changes only the description, a scratch $CLORG_RESULTS (the device rehearsal's tiny
    gpu10) and a name of its own pass."""
    from clorg.book import chapters

    monkeypatch.delenv("CLORG_RESULTS", raising=False)
    shipped = yaml.safe_load((CONFIG_DIR / "gpu10.yaml").read_text())
    copy = tmp_path / "gpu10-mine.yaml"
    copy.write_text(yaml.safe_dump({**shipped, "train": {**shipped["train"], "width_scale": 0.5}}))
    cfg = load_profile(copy)  # reading it is harmless
    refusal = (r"keeps the name 'gpu10' of the shipped profile configs/gpu10.yaml with other settings "
               r"\(train.width_scale\): its results would replace that profile's in results/gpu10/. Give it a name of "
               r"its own \(profile.name: my-gpu10\), or point \$CLORG_RESULTS")
    with pytest.raises(ConfigError, match=refusal):
        config.check_own_name(cfg)
    with pytest.raises(ConfigError, match=refusal):  # before the data is read or anything written
        chapters.setup(str(copy), chapter="04_metrics")
    env = {k: v for k, v in os.environ.items() if k != "CLORG_RESULTS"}
    done = subprocess.run([sys.executable, "ci/execute_notebooks.py", "--profile", str(copy)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "keeps the name 'gpu10'" in done.stderr and "Traceback" not in done.stderr
    described = tmp_path / "described.yaml"
    described.write_text(yaml.safe_dump({**shipped, "profile": {**shipped["profile"], "description": "mine"}}))
    config.check_own_name(load_profile(described))
    config.check_own_name(load_profile(CONFIG_DIR / "gpu10.yaml"))  # the shipped file by path
    config.check_own_name(load_profile("gpu10", {"train.width_scale": 0.5}))  # a variant: a folder of its own
    monkeypatch.setenv("CLORG_RESULTS", str(tmp_path / "results"))
    config.check_own_name(cfg)
    monkeypatch.delenv("CLORG_RESULTS")
    copy.write_text(yaml.safe_dump({**shipped, "profile": {**shipped["profile"], "name": "my-gpu10"},
                                    "train": {**shipped["train"], "width_scale": 0.5}}))
    config.check_own_name(load_profile(copy))


def test_an_extra_snapshot_of_a_run_the_profile_does_not_train_is_refused_when_loaded():
    """metrics.extra_epochs naming an encoder or method the profile does not train, or an epoch past its run's
    last, was found by chapter 04 only, after training, with advice to train a run the profile never trains."""
    with pytest.raises(ConfigError, match=r"metrics.extra_epochs names vit supervised, which the profile does not "
                                          r"train \(train.encoders \['resnet18'\]"):
        load_profile("smoke", {"metrics.extra_epochs": [{"encoder": "vit", "method": "supervised", "epoch": 1}]})
    with pytest.raises(ConfigError, match=r"asks for resnet18 moco_queue at epoch 99, past its "
                                          r"train.contrastive_epochs = 2"):
        load_profile("smoke", {"metrics.extra_epochs": [{"encoder": "resnet18", "method": "moco_queue", "epoch": 99}],
                               "train.contrastive_epochs": 2})
    assert load_profile("paper")["metrics"]["extra_epochs"] == [{"encoder": "resnet18", "method": "supervised",
                                                                 "epoch": 600}]


def test_a_toy_figure_of_one_point_per_class_is_refused_when_loaded():
    """One point per class: the toy chapter's CH raised a bare ValueError from scikit-learn's condition."""
    with pytest.raises(ConfigError, match=r"toy.points_per_class = 1: the toy figure's Calinski-Harabasz score needs"):
        load_profile("smoke", {"toy.points_per_class": 1})
    assert load_profile("smoke", {"toy.points_per_class": 2})["toy"]["points_per_class"] == 2
