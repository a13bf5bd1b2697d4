"""Every source of every dataset, read from real files the tests write."""

from __future__ import annotations

import gzip
import shutil

import numpy as np
import pytest
from factories import (CIFAR_CLASSES, cifar_arrays, idx_bytes, tar_folder, write_cifar_pickles,
                       write_cifar_tarball, write_idx_set, write_image_tree)

from clorg.data import DatasetNotFoundError, load_dataset


def expected_cifar(arrays, split):
    names = [f"data_batch_{k}" for k in range(1, 6)] if split == "train" else ["test_batch"]
    return (np.concatenate([arrays[n][0] for n in names]), np.concatenate([arrays[n][1] for n in names]))


@pytest.mark.parametrize("split", ["train", "test"])
def test_cifar10_from_torchvision_pickle_folder(tmp_path, split):
    arrays = cifar_arrays()
    write_cifar_pickles(tmp_path / "cifar-10-batches-py", arrays)
    ds = load_dataset("cifar10", split, root=tmp_path)
    images, labels = expected_cifar(arrays, split)
    np.testing.assert_array_equal(ds.images, images)  # CHW rows became HWC pixels
    np.testing.assert_array_equal(ds.labels, labels)
    assert ds.images.dtype == np.uint8 and ds.labels.dtype == np.int64
    assert ds.classes == tuple(CIFAR_CLASSES)
    assert "python batches" in ds.source


def test_cifar10_from_official_tarball(tmp_path):
    arrays = cifar_arrays(seed=5)
    write_cifar_tarball(tmp_path / "cifar-10-python.tar.gz", arrays)
    ds = load_dataset("cifar10", "train", root=tmp_path)
    np.testing.assert_array_equal(ds.images, expected_cifar(arrays, "train")[0])
    assert "official archive" in ds.source


def test_cifar10_prefers_pickle_folder_over_tarball(tmp_path):
    write_cifar_pickles(tmp_path / "cifar-10-batches-py", cifar_arrays(seed=1))
    write_cifar_tarball(tmp_path / "cifar-10-python.tar.gz", cifar_arrays(seed=2))
    ds = load_dataset("cifar10", "test", root=tmp_path)
    np.testing.assert_array_equal(ds.images, cifar_arrays(seed=1)["test_batch"][0])


def test_cifar10_from_image_folder_tree(tmp_path):
    expected = write_image_tree(tmp_path / "cifar10", CIFAR_CLASSES[:3], size=(32, 32))
    for split in ("train", "test"):
        ds = load_dataset("cifar10", split, root=tmp_path)
        np.testing.assert_array_equal(ds.images, expected[split][0])  # PNG is lossless
        np.testing.assert_array_equal(ds.labels, expected[split][1])
        assert ds.classes == tuple(sorted(CIFAR_CLASSES[:3]))


@pytest.mark.parametrize("top", [None, "cifar10"])
def test_cifar10_from_image_folder_tarball(tmp_path, top):
    expected = write_image_tree(tmp_path / "tree", ["cat", "dog"], size=(32, 32))
    (tmp_path / "data").mkdir()
    tar_folder(tmp_path / "tree", tmp_path / "data" / "cifar10-jpeg.tar.gz", top=top)
    ds = load_dataset("cifar10", "train", root=tmp_path / "data")
    np.testing.assert_array_equal(ds.images, expected["train"][0])
    np.testing.assert_array_equal(ds.labels, expected["train"][1])
    assert "tarball" in ds.source and ds.classes == ("cat", "dog")


@pytest.mark.parametrize("gz", [True, False])
@pytest.mark.parametrize("where", ["fashion-mnist", "FashionMNIST/raw", "."])
def test_fashion_mnist_idx_files(tmp_path, gz, where):
    expected = write_idx_set(tmp_path / where, gz=gz)
    for split in ("train", "test"):
        ds = load_dataset("fashion-mnist", split, root=tmp_path)
        np.testing.assert_array_equal(ds.images, expected[split][0])
        np.testing.assert_array_equal(ds.labels, expected[split][1])
        assert ds.images.shape[1:] == (28, 28, 1)
        assert ds.classes[0] == "T-shirt/top" and len(ds.classes) == 10


def test_digits_always_available_with_a_fixed_stratified_split():
    train, test = load_dataset("digits", "train"), load_dataset("digits", "test")
    assert len(train) + len(test) == 1797
    assert train.images.shape[1:] == (8, 8, 1) and train.images.max() == 255
    # every class is split about 80/20
    share = test.class_counts / (train.class_counts + test.class_counts)
    assert np.all(np.abs(share - 0.2) < 0.01)
    again = load_dataset("digits", "test")
    np.testing.assert_array_equal(again.images, test.images)
    assert train.checksum == test.checksum  # both come from the same embedded array


def test_imagefolder_any_classes_grayscale_and_colour(tmp_path):
    gray = write_image_tree(tmp_path / "gray", ["a", "b", "c", "d", "e"], mode="L", size=(10, 12))
    ds = load_dataset(f"imagefolder:{tmp_path / 'gray'}", "train")
    assert ds.images.shape == (20, 12, 10, 1)
    np.testing.assert_array_equal(ds.images, gray["train"][0])
    assert ds.classes == ("a", "b", "c", "d", "e")

    # one colour image among grayscale ones makes the whole set RGB, the gray ones replicated
    write_image_tree(tmp_path / "mixed", ["x", "y"], mode="L", size=(8, 8))
    write_image_tree(tmp_path / "rgb", ["x", "y"], mode="RGB", size=(8, 8), per_class=(1, 1))
    shutil.copy(tmp_path / "rgb" / "train" / "x" / "0000.png", tmp_path / "mixed" / "train" / "x" / "zzzz.png")
    mixed = load_dataset(f"imagefolder:{tmp_path / 'mixed'}", "train")
    assert mixed.images.shape[-1] == 3
    np.testing.assert_array_equal(mixed.images[0, ..., 0], mixed.images[0, ..., 2])


def test_imagefolder_tarball_and_jpeg(tmp_path):
    write_image_tree(tmp_path / "tree", ["cat", "dog"], fmt="jpg", size=(16, 16))
    tar = tar_folder(tmp_path / "tree", tmp_path / "mine.tar.gz")
    ds = load_dataset(f"imagefolder:{tar}", "test")
    assert ds.images.shape == (4, 16, 16, 3) and list(ds.labels) == [0, 0, 1, 1]


def test_imagefolder_ignores_hidden_and_non_image_files(tmp_path):
    write_image_tree(tmp_path / "t", ["a", "b"])
    (tmp_path / "t" / "train" / "a" / ".DS_Store").write_bytes(b"junk")
    (tmp_path / "t" / "train" / "a" / "notes.txt").write_text("not an image")
    assert len(load_dataset(f"imagefolder:{tmp_path / 't'}", "train")) == 8


def test_idx_gz_and_raw_give_identical_arrays(tmp_path):
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    from clorg.data.formats import read_idx

    np.testing.assert_array_equal(read_idx(idx_bytes(arr), "raw"), arr)
    np.testing.assert_array_equal(read_idx(gzip.compress(idx_bytes(arr)), "gz"), arr)


def test_root_from_environment(tmp_path, monkeypatch):
    write_cifar_pickles(tmp_path / "cifar-10-batches-py", cifar_arrays())
    monkeypatch.setenv("CLORG_DATA", str(tmp_path))
    assert len(load_dataset("cifar10", "test")) == 20
    monkeypatch.setenv("CLORG_DATA", str(tmp_path / "elsewhere"))
    with pytest.raises(DatasetNotFoundError):
        load_dataset("cifar10", "test")
