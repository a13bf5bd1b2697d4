"""Bad input gets a clear error, and the data root and the cache are left as they were."""

from __future__ import annotations

import gzip
import os
import pickle

import numpy as np
import pytest
from factories import (cifar_arrays, idx_bytes, jpeg_bytes, tar_folder, write_cifar_pickles,
                       write_cifar_tarball, write_idx_set, write_image_tree)

from clorg.data import DatasetError, DatasetNotFoundError, download, load_dataset


def listing(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else None


def cache_manifests(tmp_path):
    return list((tmp_path / "cache").rglob("manifest.json"))


def test_unknown_dataset_lists_valid_names(tmp_path):
    with pytest.raises(ValueError, match=r"unknown dataset 'cifar100'.*cifar10, fashion-mnist, digits, imagefolder:<path>"):
        load_dataset("cifar100", "train", root=tmp_path)
    with pytest.raises(ValueError, match="unknown split 'val'"):
        load_dataset("digits", "val")


def test_not_found_lists_every_place_and_how_to_provide(tmp_path):
    with pytest.raises(DatasetNotFoundError) as err:
        load_dataset("cifar10", "train", root=tmp_path)
    msg = str(err.value)
    for place in ("cifar-10-batches-py", "cifar-10-python.tar.gz", "cifar10  (", "cifar10-jpeg.tar.gz"):
        assert f"{tmp_path}/{place}" in msg
    assert "not tried (offline" in msg and "To provide it" in msg and "CLORG_DATA" in msg
    assert err.value.places[0] == str(tmp_path / "cifar-10-batches-py")

    with pytest.raises(DatasetNotFoundError, match=r"(?s)fashion-mnist.*apt-get install dataset-fashion-mnist"):
        load_dataset("fashion-mnist", "test", root=tmp_path / "nothing")
    with pytest.raises(DatasetNotFoundError, match=r"(?s)imagefolder:.*train/<class>/"):
        load_dataset(f"imagefolder:{tmp_path / 'mine'}", "train")


def test_failed_download_leaves_no_partial_file(tmp_path, monkeypatch):
    def broken_fetch(url, folder, filename, md5):
        (folder / filename).write_bytes(b"half a tarball")  # what an interrupted transfer leaves
        raise ConnectionError("connection reset")

    monkeypatch.setattr(download, "_fetch", broken_fetch)
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "keep.txt").write_text("user file")
    before = listing(tmp_path / "root")
    with pytest.raises(DatasetNotFoundError, match="download from torchvision failed: ConnectionError: connection reset"):
        load_dataset("cifar10", "train", root=tmp_path / "root", download=True)
    assert listing(tmp_path / "root") == before
    # a root that did not exist before the download is not left behind either
    with pytest.raises(DatasetNotFoundError):
        load_dataset("fashion-mnist", "train", root=tmp_path / "new", download=True)
    assert not (tmp_path / "new").exists()


def test_download_lands_where_the_next_load_finds_it(tmp_path, monkeypatch):
    official = write_cifar_tarball(tmp_path / "server" / "cifar-10-python.tar.gz", cifar_arrays())
    monkeypatch.setattr(download, "_fetch", lambda url, folder, filename, md5: (folder / filename).write_bytes(
        official.read_bytes()))
    ds = load_dataset("cifar10", "test", root=tmp_path / "root", download=True)
    assert len(ds) == 20 and "official archive" in ds.source
    assert listing(tmp_path / "root") == ["cifar-10-python.tar.gz"]  # no temporary folder left


def test_corrupt_jpeg_in_tree_names_the_file(tmp_path):
    write_image_tree(tmp_path / "t", ["a", "b"], fmt="jpg")
    bad = tmp_path / "t" / "train" / "b" / "0002.jpg"
    bad.write_bytes(bad.read_bytes()[:60])  # truncated
    with pytest.raises(DatasetError, match=r"cannot decode image train/b/0002.jpg"):
        load_dataset(f"imagefolder:{tmp_path / 't'}", "train")
    assert cache_manifests(tmp_path) == []


def test_corrupt_image_in_tarball_names_the_member(tmp_path):
    write_image_tree(tmp_path / "t", ["a", "b"], fmt="jpg")
    (tmp_path / "t" / "test" / "a" / "0001.jpg").write_bytes(b"not a jpeg at all")
    tar = tar_folder(tmp_path / "t", tmp_path / "t.tar.gz")
    with pytest.raises(DatasetError, match=r"t.tar.gz:test/a/0001.jpg"):
        load_dataset(f"imagefolder:{tar}", "test")


def test_train_and_test_classes_differ(tmp_path):
    write_image_tree(tmp_path / "t", ["a", "b", "c"])
    for f in (tmp_path / "t" / "test" / "c").iterdir():
        f.unlink()
    (tmp_path / "t" / "test" / "c").rmdir()
    with pytest.raises(DatasetError, match=r"different classes: only in train \['c'\], only in test \[\]"):
        load_dataset(f"imagefolder:{tmp_path / 't'}", "train")


def test_empty_class(tmp_path):
    write_image_tree(tmp_path / "t", ["a", "b"])
    (tmp_path / "t" / "train" / "empty").mkdir()
    (tmp_path / "t" / "test" / "empty").mkdir()
    with pytest.raises(DatasetError, match=r"class folder\(s\) \['empty'\] of train hold no PNG/JPEG images"):
        load_dataset(f"imagefolder:{tmp_path / 't'}", "test")


def test_images_of_different_sizes(tmp_path):
    write_image_tree(tmp_path / "t", ["a"], size=(8, 8))
    write_image_tree(tmp_path / "u", ["b"], size=(9, 8))
    os.rename(tmp_path / "u" / "train" / "b", tmp_path / "t" / "train" / "b")
    os.rename(tmp_path / "u" / "test" / "b", tmp_path / "t" / "test" / "b")
    with pytest.raises(DatasetError, match=r"images differ in size: train/a/0000.png is 8x8 but train/b/0000.png is 9x8"):
        load_dataset(f"imagefolder:{tmp_path / 't'}", "train")


def test_corrupt_cifar_pickle_and_tarball(tmp_path):
    folder = write_cifar_pickles(tmp_path / "a" / "cifar-10-batches-py", cifar_arrays())
    (folder / "data_batch_3").write_bytes(b"\x80\x04garbage")
    with pytest.raises(DatasetError, match=r"data_batch_3 is not a readable CIFAR-10 batch"):
        load_dataset("cifar10", "train", root=tmp_path / "a")
    # a pickle that would run code is refused, not executed
    (folder / "data_batch_3").write_bytes(pickle.dumps(os.system))
    with pytest.raises(DatasetError, match=r"refusing to load"):
        load_dataset("cifar10", "train", root=tmp_path / "a")

    tar = write_cifar_tarball(tmp_path / "b" / "cifar-10-python.tar.gz", cifar_arrays())
    tar.write_bytes(tar.read_bytes()[: len(tar.read_bytes()) // 2])
    with pytest.raises(DatasetError, match=r"cifar-10-python.tar.gz is not a readable tarball"):
        load_dataset("cifar10", "test", root=tmp_path / "b")


def test_incomplete_cifar_folder(tmp_path):
    folder = write_cifar_pickles(tmp_path / "cifar-10-batches-py", cifar_arrays())
    (folder / "data_batch_5").unlink()
    with pytest.raises(DatasetError, match=r"incomplete: \['data_batch_5'\] missing"):
        load_dataset("cifar10", "train", root=tmp_path)


def test_corrupt_and_partial_idx(tmp_path):
    write_idx_set(tmp_path / "fashion-mnist")
    img = tmp_path / "fashion-mnist" / "train-images-idx3-ubyte.gz"
    data = gzip.decompress(img.read_bytes())
    img.write_bytes(gzip.compress(data[:-100]))
    with pytest.raises(DatasetError, match=r"train-images-idx3-ubyte.gz holds .* bytes but its header"):
        load_dataset("fashion-mnist", "train", root=tmp_path)
    img.write_bytes(img.read_bytes()[:50])
    with pytest.raises(DatasetError, match=r"damaged gzip"):
        load_dataset("fashion-mnist", "train", root=tmp_path)
    (tmp_path / "fashion-mnist" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DatasetError, match=r"not the labels file of the test split"):
        load_dataset("fashion-mnist", "test", root=tmp_path)
    (tmp_path / "fashion-mnist" / "t10k-labels-idx1-ubyte.gz").write_bytes(
        gzip.compress(idx_bytes(np.full(10, 12, dtype=np.uint8))))
    with pytest.raises(DatasetError, match=r"holds label 12"):
        load_dataset("fashion-mnist", "test", root=tmp_path)


def test_jpeg_helper_really_is_a_jpeg():
    # guards the fixtures above: a "corrupt" file must differ from a valid one only by its damage
    assert jpeg_bytes(np.zeros((4, 4, 3), dtype=np.uint8))[:2] == b"\xff\xd8"
