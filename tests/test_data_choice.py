"""Stratified subsets, and choosing a profile's dataset from its list of preferences."""

from __future__ import annotations

import numpy as np
import pytest
from factories import cifar_arrays, write_cifar_pickles, write_idx_set

from clorg.core.config import load_profile
from clorg.data import (DatasetError, DatasetNotFoundError, choose_dataset, choose_profile_dataset,
                        sources, stratified_subset)


def test_stratified_subset_per_class_and_fraction():
    labels = np.repeat(np.arange(4), [10, 20, 30, 40])
    idx = stratified_subset(labels, per_class=5, seed=3)
    assert np.bincount(labels[idx]).tolist() == [5, 5, 5, 5]
    assert np.all(np.diff(idx) > 0)  # sorted, no duplicates
    np.testing.assert_array_equal(idx, stratified_subset(labels, per_class=5, seed=3))
    assert not np.array_equal(idx, stratified_subset(labels, per_class=5, seed=4))
    assert set(idx) <= set(stratified_subset(labels, per_class=8, seed=3))  # nested as it grows
    frac = stratified_subset(labels, fraction=0.5, seed=0)
    assert np.bincount(labels[frac]).tolist() == [5, 10, 15, 20]


@pytest.mark.parametrize("kwargs, message", [
    ({}, "exactly one of per_class"),
    ({"per_class": 2, "fraction": 0.5}, "exactly one of per_class"),
    ({"per_class": 0}, "positive integer"),
    ({"fraction": 1.5}, r"fraction must be in \(0, 1\]"),
    ({"per_class": 11}, "class 0 has only 10 images, fewer than per_class=11"),
])
def test_stratified_subset_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        stratified_subset(np.repeat(np.arange(3), 10), **kwargs)


def test_first_dataset_that_loads_is_used_and_the_others_are_explained(tmp_path):
    write_idx_set(tmp_path / "fashion-mnist", n_train=50, n_test=20)
    choice = choose_dataset(["cifar10", "fashion-mnist", "digits"], tmp_path, train_per_class=3, test_per_class=2)
    assert choice.name == "fashion-mnist"
    assert len(choice.train) == 30 and len(choice.test) == 20
    assert [name for name, _ in choice.skipped] == ["cifar10"]
    reason = choice.skipped[0][1]
    assert str(tmp_path / "cifar-10-python.tar.gz") in reason and "offline" in reason
    text = choice.describe()
    assert "Dataset used: fashion-mnist" in text and "Not used: cifar10" in text and choice.train.checksum in text
    assert choice.summary()["skipped"][0]["name"] == "cifar10"


def test_offline_machine_without_data_falls_back_to_digits(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "DEBIAN_FASHION_MNIST", tmp_path / "no-debian-package")
    cfg = load_profile("smoke")
    choice = choose_profile_dataset(cfg, root=tmp_path / "empty")
    assert choice.name == "digits"
    assert [n for n, _ in choice.skipped] == ["cifar10", "fashion-mnist"]
    assert np.bincount(choice.train.labels).tolist() == [cfg["data"]["train_per_class"]] * 10


def test_per_class_larger_than_the_data_is_capped_and_said(tmp_path):
    choice = choose_dataset(["digits"], tmp_path, train_per_class=1000, test_per_class=5)
    smallest = int(np.bincount(choice.train.labels).min())
    assert smallest < 1000
    assert np.bincount(choice.train.labels).tolist() == [smallest] * 10
    assert any("train_per_class=1000 capped" in n for n in choice.notes)


def test_broken_data_does_not_fall_back_silently(tmp_path):
    folder = write_cifar_pickles(tmp_path / "cifar-10-batches-py", cifar_arrays())
    (folder / "test_batch").write_bytes(b"broken")
    with pytest.raises(DatasetError, match="test_batch"):
        choose_dataset(["cifar10", "digits"], tmp_path)


def test_nothing_loads(tmp_path):
    """None of the datasets loads: each is named with where it was looked for and how to provide it."""
    with pytest.raises(DatasetNotFoundError, match="none of the datasets cifar10, fashion-mnist could be loaded") as err:
        choose_dataset(["cifar10", "fashion-mnist"], tmp_path)
    cifar, fashion = str(err.value).splitlines()[1:]
    assert cifar.startswith("- cifar10: it was not found in") and "To provide it: download https://" in cifar
    assert fashion.startswith("- fashion-mnist: it was not found in") and "apt-get install dataset-fashion-mnist" in fashion
    assert "$CLORG_DATA" in cifar and "$CLORG_DATA" in fashion
    with pytest.raises(ValueError, match="unknown dataset 'cifar'"):
        choose_dataset(["cifar", "digits"], tmp_path)


def test_the_fashion_profile_loads_fashion_mnist_and_falls_back_to_digits(tmp_path, monkeypatch):
    """The fashion profile's chain: Fashion-MNIST where its IDX files are, else scikit-learn's digits (named)."""
    cfg = load_profile("fashion", {"data.train_per_class": 3, "data.test_per_class": 2})
    assert cfg["data"]["dataset"] == ["fashion-mnist", "digits"]
    assert cfg["train"]["methods"] == ["moco_queue", "supervised"]
    write_idx_set(tmp_path / "fashion-mnist", n_train=50, n_test=20)
    monkeypatch.setenv("CLORG_DATA", str(tmp_path))
    choice = choose_profile_dataset(cfg)
    assert choice.name == "fashion-mnist" and choice.train.images.shape[1:] == (28, 28, 1)
    monkeypatch.setenv("CLORG_DATA", str(tmp_path / "empty"))
    monkeypatch.setattr(sources, "DEBIAN_FASHION_MNIST", tmp_path / "nowhere")
    fallback = choose_profile_dataset(cfg)
    assert fallback.name == "digits" and [n for n, _ in fallback.skipped] == ["fashion-mnist"]


def test_a_relative_data_root_is_read_from_the_project_root_in_any_working_directory(tmp_path, monkeypatch):
    """The build script runs in the root and its notebooks in notebooks/: a relative $CLORG_DATA
    (README: ``export CLORG_DATA=../shared/data``) must name one folder for both."""
    from clorg.core import paths

    monkeypatch.setenv("CLORG_DATA", "../shared/data")
    monkeypatch.setenv("CLORG_RUNS", str(tmp_path / "runs"))
    found = set()
    for where in (paths.ROOT, paths.ROOT / "notebooks", tmp_path):
        monkeypatch.chdir(where)
        found.add(paths.data_root().resolve())
    assert found == {(paths.ROOT.parent / "shared" / "data").resolve()}
    assert paths.runs_root() == tmp_path / "runs"  # an absolute value is taken as it is
