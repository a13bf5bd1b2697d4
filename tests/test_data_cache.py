"""The decoded-array cache: used when the source is unchanged, rebuilt when it changed or when the
cached files are damaged (their checksum is verified on every load). (A cached images or labels file changed
after it was written and an unreadable manifest are faults of the catalogue: tests/test_faults.py.)"""

from __future__ import annotations

import json
import os

import numpy as np
from factories import cifar_arrays, write_cifar_pickles, write_image_tree
from PIL import Image

from clorg.data import cache, load_dataset


def test_second_load_comes_from_the_cache(tmp_path, decode_calls):
    write_image_tree(tmp_path / "t", ["a", "b"])
    first = load_dataset(f"imagefolder:{tmp_path / 't'}", "train")
    second = load_dataset(f"imagefolder:{tmp_path / 't'}", "train")
    assert len(decode_calls) == 1
    np.testing.assert_array_equal(first.images, second.images)
    assert first.checksum == second.checksum and len(first.checksum) == 64
    assert len(list((tmp_path / "cache").rglob("manifest.json"))) == 1


def test_changed_source_invalidates_the_cache(tmp_path, decode_calls):
    write_image_tree(tmp_path / "t", ["a", "b"])
    first = load_dataset(f"imagefolder:{tmp_path / 't'}", "train")
    target = tmp_path / "t" / "train" / "b" / "0001.png"
    Image.fromarray(np.full((6, 8, 3), 7, dtype=np.uint8)).save(target)
    second = load_dataset(f"imagefolder:{tmp_path / 't'}", "train")
    assert len(decode_calls) == 2
    assert second.checksum != first.checksum
    assert (second.images[5] == 7).all() and not (first.images[5] == 7).all()


def test_touched_but_identical_source_keeps_the_cache(tmp_path, decode_calls):
    write_image_tree(tmp_path / "t", ["a", "b"])
    load_dataset(f"imagefolder:{tmp_path / 't'}", "test")
    f = tmp_path / "t" / "test" / "a" / "0000.png"
    os.utime(f, ns=(f.stat().st_atime_ns, f.stat().st_mtime_ns + 10**9))
    load_dataset(f"imagefolder:{tmp_path / 't'}", "test")
    load_dataset(f"imagefolder:{tmp_path / 't'}", "test")  # the refreshed fingerprint now matches
    assert len(decode_calls) == 1


def test_changed_pickle_invalidates_the_cache(tmp_path):
    write_cifar_pickles(tmp_path / "cifar-10-batches-py", cifar_arrays(seed=0))
    a = load_dataset("cifar10", "test", root=tmp_path)
    write_cifar_pickles(tmp_path / "cifar-10-batches-py", cifar_arrays(seed=9))
    b = load_dataset("cifar10", "test", root=tmp_path)
    np.testing.assert_array_equal(b.images, cifar_arrays(seed=9)["test_batch"][0])
    assert a.checksum != b.checksum


def test_damaged_cache_entry_is_rebuilt(tmp_path, decode_calls):
    write_image_tree(tmp_path / "t", ["a", "b"])
    first = load_dataset(f"imagefolder:{tmp_path / 't'}", "train")
    (images_npy,) = (tmp_path / "cache").rglob("images.npy")
    images_npy.write_bytes(b"garbage")
    again = load_dataset(f"imagefolder:{tmp_path / 't'}", "train")
    assert len(decode_calls) == 2
    np.testing.assert_array_equal(again.images, first.images)


def test_explicit_cache_dir(tmp_path):
    write_image_tree(tmp_path / "t", ["a", "b"])
    load_dataset(f"imagefolder:{tmp_path / 't'}", "train", cache_dir=tmp_path / "mine")
    assert list((tmp_path / "mine").rglob("manifest.json"))
    assert not (tmp_path / "cache").exists()


def test_manifest_records_the_arrays_checksum(tmp_path):
    write_image_tree(tmp_path / "t", ["a", "b"])
    ds = load_dataset(f"imagefolder:{tmp_path / 't'}", "train")
    (manifest,) = (tmp_path / "cache").rglob("manifest.json")
    m = json.loads(manifest.read_text())
    assert m["format"] == cache.FORMAT_VERSION == 2
    assert m["arrays_sha256"] == cache.arrays_sha256(ds.images, ds.labels)
    assert m["images_shape"] == list(ds.images.shape) and m["checksum"] == ds.checksum
    # the checksum covers shape and dtype as well as the bytes
    assert cache.arrays_sha256(ds.images.reshape(len(ds), -1), ds.labels) != m["arrays_sha256"]


def test_entry_of_an_older_format_is_rebuilt_silently(tmp_path, decode_calls, capsys):
    write_image_tree(tmp_path / "t", ["a", "b"])
    load_dataset(f"imagefolder:{tmp_path / 't'}", "train")
    (manifest,) = (tmp_path / "cache").rglob("manifest.json")
    m = json.loads(manifest.read_text())
    manifest.write_text(json.dumps({**m, "format": 1}))
    capsys.readouterr()
    load_dataset(f"imagefolder:{tmp_path / 't'}", "train")
    assert len(decode_calls) == 2 and capsys.readouterr().out == ""
    assert json.loads(manifest.read_text())["format"] == cache.FORMAT_VERSION
