"""The fault catalogue: every fault the project survives, one test each, named by the fault.

Each test damages real files in ``tmp_path`` (or feeds bad input) and goes through the project's own entry
points (``load_dataset``, ``load_profile``, ``clorg.train.run``, ``run_features``, the metrics, the results
store, the geometry command), then checks the outcome: the error type and a message that names the file or
key and the fix, or the recovery. ``pytest tests/test_faults.py --collect-only -q`` lists the catalogue.
"""

from __future__ import annotations

import errno
import importlib.util
import json
import multiprocessing
import os
import pickle
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import yaml
from factories import (FakeData, OsWithFullDisk, cifar_arrays, count_calls, counter, feature_set,
                       flip_npy_data_bytes, tar_folder, write_cifar_pickles, write_cifar_tarball, write_image_tree)

from clorg.analysis.geometry import measure
from clorg.analysis.metrics import calinski_harabasz, chi, rld, rld_sweep
from clorg.book import chapters, store
from clorg.book.claims import INCONCLUSIVE, judge_claim2, judge_claim4
from clorg.book.store import Source, UnreadableResult, cached, status
from clorg.core import atomic, code
from clorg.core.atomic import WriteFailed
from clorg.core.config import CONFIG_DIR, ConfigError, RunSpec, apply_overrides, load_profile
from clorg.data import (DatasetError, DatasetNotFoundError, cache, choose_profile_dataset, load_dataset,
                        sources)
from clorg.features import extract, run_features
from clorg.train import TrainingDiverged, checkpoint, load_finished, run, runs
from clorg.train.runs import UnreadableRunFile

from clorg.core.paths import ROOT  # the project root, defined once


# ------------------------------------------------ shared helpers ------------------------------------------

def cache_manifests(tmp_path):
    return list((tmp_path / "cache").rglob("manifest.json"))


class RunsCode:
    """Pickles as a call of os.system: unpickling it with a plain unpickler would create ``marker``."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


# 8x8 digits, 60 images per class, a 1/8-width ResNet-18: a real run in seconds
TINY = {"data.dataset": "digits", "data.train_per_class": 60, "data.test_per_class": 10,
        "train.contrastive_batch_size": 64, "train.supervised_batch_size": 64, "train.moco_queue_size": 256,
        "train.contrastive_epochs": 4, "train.supervised_epochs": 2, "train.checkpoint_every": 1}
SUPERVISED = RunSpec("resnet18", "supervised", "cosine")


def tiny(**more):
    return load_profile("smoke", {**TINY, **more})


def run_folders(root):
    """The run folders of the smoke profile under a runs root (beside them: each run's lock file)."""
    return sorted(p for p in (root / "smoke").iterdir() if p.is_dir()) if (root / "smoke").exists() else []


@pytest.fixture(scope="module")
def trained_once(tmp_path_factory):
    """A runs root holding one finished tiny supervised run (2 epochs), trained once for this module."""
    root = tmp_path_factory.mktemp("trained") / "runs"
    run(tiny(), SUPERVISED, runs_root=root, progress=False)
    return root


@pytest.fixture
def finished_run(trained_once, tmp_path):
    """This test's own copy of the finished tiny run, to damage: (runs root, run folder)."""
    root = tmp_path / "runs"
    shutil.copytree(trained_once, root)
    (folder,) = run_folders(root)
    return root, folder


def mark_unfinished(folder: Path) -> None:
    record = json.loads((folder / "record.json").read_text())
    (folder / "record.json").write_text(json.dumps({**record, "finished": False}))


def final_state(folder):
    return checkpoint.load(folder / "checkpoints" / "last.pt")["method"]


def cli(args, runs_root, **kwargs):
    """``python -m clorg.train`` on the tiny smoke run, in a process of its own."""
    env = {**os.environ, "CLORG_RUNS": str(runs_root), "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "clorg.train", "--config", "smoke",
                             *[f"--override={k}={json.dumps(v)}" for k, v in TINY.items()], *args],
                            env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)


# results store: a minimal profile and dataset identity
METRICS = Source(reads=("metrics",), code=())
TOY = Source(reads=("toy",), code=("clorg.analysis.toy",))


class StoreData:
    def __init__(self, sha="a" * 64, name="cifar10"):
        self.sha, self.name = sha, name

    def summary(self):
        return {"name": self.name, "source": "x", "sha256": self.sha, "train_images": 10, "test_images": 4,
                "skipped": [], "notes": []}


def store_cfg(profile="quick"):
    return {"profile": {"name": profile, "description": "d"}, "metrics": {"chi_ks": [1, 10]},
            "toy": {"seeds": 2}, "tsne": {"sample_size": 500}}


def store_cached(cfg, data, name, compute, source=METRICS, **kw):
    return cached(cfg, data, name, compute, source, producer="notebooks/04_metrics.ipynb",
                  command=f"python -m clorg.book --profile {cfg['profile']['name']} --only 04_metrics", **kw)


# ================================================== data ==================================================

def test_corrupt_image_in_an_image_folder_is_refused_naming_the_file(tmp_path):
    """Bytes that are not an image in an image-folder tree or tarball: DatasetError naming the file and the fix."""
    write_image_tree(tmp_path / "t", ["a", "b"], fmt="jpg")
    bad = tmp_path / "t" / "test" / "a" / "0001.jpg"
    bad.write_bytes(b"not a jpeg at all")
    tar = tar_folder(tmp_path / "t", tmp_path / "t.tar.gz")
    with pytest.raises(DatasetError, match=r"t.tar.gz:test/a/0001.jpg") as err:
        load_dataset(f"imagefolder:{tar}", "test")
    assert f"cannot decode image {tar}:test/a/0001.jpg" in str(err.value)
    assert "Replace or delete that file" in str(err.value)
    with pytest.raises(DatasetError) as err:
        load_dataset(f"imagefolder:{tmp_path / 't'}", "test")
    assert f"cannot decode image {bad}:" in str(err.value) and "Replace or delete that file" in str(err.value)
    assert cache_manifests(tmp_path) == []  # nothing of a damaged dataset is cached


def test_truncated_image_in_an_image_folder_is_refused_naming_the_file(tmp_path):
    """A JPEG cut short: DatasetError naming the file and the fix; nothing cached."""
    write_image_tree(tmp_path / "t", ["a", "b"], fmt="jpg")
    bad = tmp_path / "t" / "train" / "b" / "0002.jpg"
    bad.write_bytes(bad.read_bytes()[:60])  # truncated
    with pytest.raises(DatasetError, match=r"cannot decode image .*train/b/0002.jpg") as err:
        load_dataset(f"imagefolder:{tmp_path / 't'}", "train")
    assert f"cannot decode image {bad}:" in str(err.value) and "Replace or delete that file" in str(err.value)
    assert cache_manifests(tmp_path) == []


def test_foreign_file_in_an_image_folder_is_refused_naming_it(tmp_path):
    """A text file named .png, or an image of another size: DatasetError naming the file and the fix."""
    write_image_tree(tmp_path / "t", ["a"], size=(8, 8))
    write_image_tree(tmp_path / "u", ["b"], size=(9, 8))
    os.rename(tmp_path / "u" / "train" / "b", tmp_path / "t" / "train" / "b")
    os.rename(tmp_path / "u" / "test" / "b", tmp_path / "t" / "test" / "b")
    t = tmp_path / "t"
    with pytest.raises(DatasetError, match=r"images differ in size: .*train/a/0000.png is 8x8 but "
                                           r".*train/b/0000.png is 9x8") as err:
        load_dataset(f"imagefolder:{t}", "train")
    assert f"{t}/train/a/0000.png is 8x8 but {t}/train/b/0000.png is 9x8" in str(err.value)
    assert "resize them all to one size first" in str(err.value)

    write_image_tree(tmp_path / "v", ["a", "b"])
    notes = tmp_path / "v" / "train" / "a" / "notes.png"
    notes.write_text("my notes, saved under the wrong name")
    with pytest.raises(DatasetError) as err:
        load_dataset(f"imagefolder:{tmp_path / 'v'}", "train")
    assert f"cannot decode image {notes}:" in str(err.value) and "Replace or delete that file" in str(err.value)
    assert cache_manifests(tmp_path) == []


def test_train_and_test_with_different_classes_are_refused_naming_the_classes(tmp_path):
    """A class folder in train but not in test: DatasetError naming the dataset, the classes and the fix."""
    write_image_tree(tmp_path / "t", ["a", "b", "c"])
    for f in (tmp_path / "t" / "test" / "c").iterdir():
        f.unlink()
    (tmp_path / "t" / "test" / "c").rmdir()
    with pytest.raises(DatasetError, match=r"different classes: only in train \['c'\], only in test \[\]") as err:
        load_dataset(f"imagefolder:{tmp_path / 't'}", "train")
    assert str(tmp_path / "t") in str(err.value) and "both splits need the same class folders" in str(err.value)


def test_empty_class_folder_is_refused_naming_it(tmp_path):
    """A class folder without images: DatasetError naming the folder, the split and the fix."""
    write_image_tree(tmp_path / "t", ["a", "b"])
    (tmp_path / "t" / "train" / "empty").mkdir()
    (tmp_path / "t" / "test" / "empty").mkdir()
    with pytest.raises(DatasetError, match=r"class folder\(s\) \['empty'\] of train hold no PNG/JPEG images") as err:
        load_dataset(f"imagefolder:{tmp_path / 't'}", "test")
    assert str(tmp_path / "t") in str(err.value) and "add images or remove the folder(s)" in str(err.value)


def test_unknown_dataset_name_is_refused_listing_the_valid_names(tmp_path):
    """A misspelt dataset name, given directly or in a profile: ValueError listing the valid names, never skipped."""
    with pytest.raises(ValueError, match=r"unknown dataset 'cifar100'.*cifar10, fashion-mnist, digits, imagefolder:<path>"):
        load_dataset("cifar100", "train", root=tmp_path)
    with pytest.raises(ValueError, match="unknown split 'val'"):
        load_dataset("digits", "val")
    # in a profile's list of preferences, a typo is an error, not a dataset passed over for the next one
    with pytest.raises(ValueError, match=r"unknown dataset 'cifar100'; valid names"):
        choose_profile_dataset(load_profile("smoke", {"data.dataset": ["cifar100", "digits"]}))


def test_code_hidden_in_a_cifar_pickle_is_refused_without_running_it(tmp_path):
    """A CIFAR batch or meta file that would run os.system when unpickled: DatasetError naming it; nothing runs."""
    folder = write_cifar_pickles(tmp_path / "a" / "cifar-10-batches-py", cifar_arrays())
    (folder / "data_batch_3").write_bytes(pickle.dumps(os.system))
    with pytest.raises(DatasetError, match=r"refusing to load"):
        load_dataset("cifar10", "train", root=tmp_path / "a")
    marker = tmp_path / "code-ran"
    (folder / "data_batch_3").write_bytes(pickle.dumps(RunsCode(marker)))
    with pytest.raises(DatasetError, match=r"refusing to load posix.system from a data file") as err:
        load_dataset("cifar10", "train", root=tmp_path / "a")
    assert f"{folder}/data_batch_3 is not a readable CIFAR-10 batch" in str(err.value)
    assert "delete it and provide the data again" in str(err.value)
    (folder / "batches.meta").write_bytes(pickle.dumps(RunsCode(marker)))
    with pytest.raises(DatasetError, match=r"refusing to load posix.system") as err:
        load_dataset("cifar10", "test", root=tmp_path / "a")
    assert f"{folder}/batches.meta is not a readable CIFAR-10 batches.meta" in str(err.value)
    assert "delete it and provide the data again" in str(err.value)
    assert not marker.exists()  # refused unread: the command never ran
    assert cache_manifests(tmp_path) == []


def test_truncated_tarball_is_refused_naming_it_and_the_fix(tmp_path):
    """A .tar.gz cut short (CIFAR archive, image-folder tarball): DatasetError naming it and the fix; no stale cache."""
    tar = write_cifar_tarball(tmp_path / "b" / "cifar-10-python.tar.gz", cifar_arrays())
    tar.write_bytes(tar.read_bytes()[: len(tar.read_bytes()) // 2])
    with pytest.raises(DatasetError, match=r"cifar-10-python.tar.gz is not a readable tarball") as err:
        load_dataset("cifar10", "test", root=tmp_path / "b")
    assert str(tar) in str(err.value) and "delete it and provide it again" in str(err.value)

    write_image_tree(tmp_path / "tree", ["a", "b"], size=(16, 16), per_class=(40, 10))
    images = tar_folder(tmp_path / "tree", tmp_path / "images.tar.gz")
    assert len(load_dataset(f"imagefolder:{images}", "train")) == 80  # now cached
    images.write_bytes(images.read_bytes()[: len(images.read_bytes()) // 2])
    with pytest.raises(DatasetError, match=r"images.tar.gz is not a readable tarball") as err:
        load_dataset(f"imagefolder:{images}", "train")  # the cache of its former content is not served
    assert str(images) in str(err.value) and "delete it and provide it again" in str(err.value)


def test_a_tarball_whose_gzip_checksum_fails_is_refused_though_every_member_reads(tmp_path):
    """A flipped byte in gzip's trailer (its CRC-32): tarfile stops before it, so only reading the stream to its end
    tells this archive from a good one: DatasetError naming it and the fix."""
    tar = write_cifar_tarball(tmp_path / "c" / "cifar-10-python.tar.gz", cifar_arrays())
    data = bytearray(tar.read_bytes())
    data[-8] ^= 0xFF  # the first byte of the CRC-32 of the uncompressed archive
    tar.write_bytes(bytes(data))
    with pytest.raises(DatasetError, match=r"cifar-10-python.tar.gz is not a readable tarball") as err:
        load_dataset("cifar10", "test", root=tmp_path / "c")
    assert "CRC" in str(err.value) and "delete it and provide it again" in str(err.value)


@pytest.mark.parametrize("mode", ["gz", "xz"])
def test_a_tarball_damaged_inside_its_compressed_stream_is_refused_naming_it(tmp_path, mode):
    """Bytes flipped inside the compressed data of an image-folder tarball (gzip's deflate, xz's blocks): a
    DatasetError naming it and the fix, not zlib's or lzma's own exception."""
    write_image_tree(tmp_path / "tree", ["a", "b"], size=(16, 16), per_class=(40, 10))
    path = tmp_path / f"images.tar.{mode}"
    with tarfile.open(path, f"w:{mode}") as tar:
        for split in ("train", "test"):
            tar.add(tmp_path / "tree" / split, arcname=split)
    data = bytearray(path.read_bytes())
    for i in range(len(data) // 3, len(data) - 64, 97):  # damage from a third of the way on, trailer aside
        data[i] ^= 0x5A
    path.write_bytes(bytes(data))
    with pytest.raises(DatasetError, match=rf"images.tar.{mode} is not a readable tarball .*delete it and provide it"):
        load_dataset(f"imagefolder:{path}", "train")


def test_missing_data_with_downloads_off_lists_every_place_looked_and_how_to_provide_it(tmp_path):
    """No local copy and no download allowed: DatasetNotFoundError listing every place looked and how to provide it."""
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
    # download=False says the same as $CLORG_OFFLINE, and nothing is created in the data root
    with pytest.raises(DatasetNotFoundError, match=r"(?s)cifar-10-python.tar.gz.*download: not tried"):
        load_dataset("cifar10", "test", root=tmp_path / "root", download=False)
    assert not (tmp_path / "root").exists()


def test_dataset_cache_file_changed_after_writing_is_rebuilt_never_served(tmp_path, decode_calls, capsys):
    """Cached images/labels whose bytes changed (same size): rebuilt from the source with one line, never served."""
    expected = write_image_tree(tmp_path / "t", ["a", "b"])
    name = f"imagefolder:{tmp_path / 't'}"
    first = load_dataset(name, "train")
    capsys.readouterr()
    (images_npy,) = (tmp_path / "cache").rglob("images.npy")
    flip_npy_data_bytes(images_npy)
    assert np.load(images_npy).shape == first.images.shape  # still a valid array file, of other pixels
    assert not np.array_equal(np.load(images_npy), first.images)

    again = load_dataset(name, "train")
    assert len(decode_calls) == 2  # rebuilt from the source
    np.testing.assert_array_equal(again.images, expected["train"][0])  # the source's true pixels
    np.testing.assert_array_equal(again.labels, expected["train"][1])
    assert again.checksum == first.checksum
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("data cache:"), out
    assert "checksum mismatch" in lines[0] and "rebuilding it from the source" in lines[0]
    # the rebuilt entry is good again: served without decoding, silently
    np.testing.assert_array_equal(np.load(images_npy), expected["train"][0])
    load_dataset(name, "train")
    assert len(decode_calls) == 2 and capsys.readouterr().out == ""

    # the labels file likewise
    (labels_npy,) = (tmp_path / "cache").rglob("labels.npy")
    flip_npy_data_bytes(labels_npy, start=0, count=8)
    again = load_dataset(name, "train")
    assert len(decode_calls) == 3
    np.testing.assert_array_equal(again.labels, expected["train"][1])
    assert "checksum mismatch" in capsys.readouterr().out


def test_unreadable_cache_manifest_is_rebuilt(tmp_path, decode_calls, capsys):
    """A truncated manifest.json in the data cache: the entry is rebuilt with one line, then served again."""
    expected = write_image_tree(tmp_path / "t", ["a", "b"])
    load_dataset(f"imagefolder:{tmp_path / 't'}", "test")
    (manifest,) = (tmp_path / "cache").rglob("manifest.json")
    text = manifest.read_text()
    manifest.write_text(text[: len(text) // 2])  # truncated JSON
    capsys.readouterr()
    again = load_dataset(f"imagefolder:{tmp_path / 't'}", "test")
    assert len(decode_calls) == 2
    np.testing.assert_array_equal(again.images, expected["test"][0])
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert len(lines) == 1 and "unreadable manifest" in lines[0] and "rebuilding" in lines[0]
    assert str(manifest.parent) in lines[0]
    assert json.loads(manifest.read_text())["format"] == cache.FORMAT_VERSION  # written whole again
    load_dataset(f"imagefolder:{tmp_path / 't'}", "test")
    assert len(decode_calls) == 2


# ================================================ profiles ================================================

def test_unknown_profile_is_refused_listing_the_valid_ones():
    """A profile name with no configs/<name>.yaml: ConfigError listing the valid profiles and the path option."""
    with pytest.raises(ConfigError, match=r"unknown profile 'fast': valid profiles are \[.*'paper', 'quick', 'schedules', 'simclr', 'smoke'") as err:
        load_profile("fast")
    assert "give the path of a .yaml file" in str(err.value)


def test_a_profile_path_not_in_the_working_folder_names_the_folder_and_the_projects_file(tmp_path, monkeypatch):
    """A notebook's kernel runs in notebooks/: `profile = "configs/smoke.yaml"` is looked for there. The error
    names that folder and, where the project holds that path, the path that reaches it; None is a ConfigError
    (it was pathlib's TypeError)."""
    monkeypatch.chdir(ROOT / "notebooks")
    with pytest.raises(ConfigError) as err:
        load_profile("configs/smoke.yaml")
    assert str(err.value) == (f"profile file configs/smoke.yaml does not exist in the working folder {ROOT / 'notebooks'}; "
                              f"the project's configs/smoke.yaml is ../configs/smoke.yaml from there: give that, or "
                              f"{ROOT / 'configs' / 'smoke.yaml'}")
    assert load_profile("../configs/smoke.yaml")["profile"]["name"] == "smoke"  # as the error says
    with pytest.raises(ConfigError, match=r"profile file mine.yaml does not exist in the working folder .*notebooks$"):
        load_profile("mine.yaml")
    with pytest.raises(ConfigError, match=r"profile must be a profile's name \(fashion, .*smoke\) or the path of a "
                                          r"\.yaml file, got None"):
        load_profile(None)


def test_unknown_key_in_a_profile_or_an_override_is_refused_naming_it_and_the_valid_keys(tmp_path):
    """A misspelt key or section, in an override or a profile file: ConfigError naming it and the valid keys."""
    with pytest.raises(ConfigError, match=r"unknown override key 'data.train_per_clas' \(did you mean "
                                          r"'data.train_per_class'\?\); valid keys of data: dataset, .*train_per_class"):
        load_profile("smoke", {"data.train_per_clas": 7})
    with pytest.raises(ConfigError, match=r"unknown override key 'dat.train_per_class' \(did you mean "
                                          r"'data.train_per_class'\?\): a key is SECTION.KEY, and the sections are "
                                          r"profile, data, "):
        load_profile("smoke", {"dat.train_per_class": 7})
    with pytest.raises(ConfigError) as err:  # nothing near: no guess, and only the section's keys
        load_profile("smoke", {"train.optimizer": "sgd"})
    assert "did you mean" not in str(err.value) and "valid keys of train: " in str(err.value)
    assert "data.train_per_class" not in str(err.value)

    text = (CONFIG_DIR / "smoke.yaml").read_text()
    bad = tmp_path / "mine.yaml"
    bad.write_text(text.replace("  subset_seed: 0\n", "  subset_sed: 0\n") + "extra:\n  x: 1\n")
    with pytest.raises(ConfigError) as err:
        load_profile(bad)
    msg = str(err.value)
    assert "unknown key data.subset_sed" in msg and "missing key data.subset_seed" in msg
    assert "unknown section 'extra'" in msg
    assert f"profile {bad} is invalid" in msg and "valid keys of data: [" in msg and "'subset_seed'" in msg


@pytest.mark.parametrize("overrides, message", [
    ({"data.train_per_class": -1}, r"data.train_per_class = -1 must be a positive integer or null"),
    ({"train.encoders": ["resnet50"]}, r"train.encoders = \['resnet50'\] must be a non-empty list drawn from"),
    ({"train.schedule": "linear"}, r"must be one of \['cosine', 'paper-literal', 'paper-compressed', 'cosine-authors-peak'\]"),
    ({"train.contrastive_restart_epochs": 0}, "train.contrastive_restart_epochs = 0 must be a positive integer"),
    ({"train.supervised_crop_scale": [0.9, 0.2]}, r"train.supervised_crop_scale = \[0.9, 0.2\] must be a pair"),
    ({"train.variants": [{"encoder": "vit", "method": "moco_queue"}]}, "train.variants = .* must be a list"),
    ({"train.variants": [{"encoder": "vit", "method": "moco_queue", "schedule": "step"}]}, "train.variants"),
    ({"heads.validation_fraction": 1.0}, r"heads.validation_fraction = 1.0 must be a number in \(0, 1\)"),
    # what the heads would refuse at fit time is refused with the profile, before any feature is extracted
    ({"heads.mask_range": [0, 0]}, r"heads.mask_range = \[0, 0\] must be a pair .* and hi > 0"),
    ({"heads.spreading_alpha": 0}, r"heads.spreading_alpha = 0 must be a number in \(0, 1\)"),
    ({"tsne.exaggeration_iterations": -1}, "tsne.exaggeration_iterations = -1 must be an integer >= 0"),
    ({"train.precision": "fp16"}, r"train.precision = 'fp16' must be one of \['auto', 'fp32', 'bf16'\]"),
    ({"metrics.rld_temperatures": [0.1, 0]}, "rld_temperatures"),
    ({"toy.seeds": True}, "toy.seeds = True must be a positive integer"),
    ({"profile.needs_gpu": "yes"}, "profile.needs_gpu = 'yes' must be true or false"),
])
def test_wrong_type_in_a_profile_is_refused_naming_the_key_and_what_it_must_be(tmp_path, overrides, message):
    """A wrong-typed value, in an override or a profile file: ConfigError naming key, value and what it must be."""
    with pytest.raises(ConfigError, match=message):
        load_profile("smoke", overrides)
    # the same value written in a profile file: the file is named too
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(apply_overrides(yaml.safe_load((CONFIG_DIR / "smoke.yaml").read_text()), overrides)))
    with pytest.raises(ConfigError, match=message) as err:
        load_profile(path)
    assert f"profile {path} is invalid" in str(err.value)


def test_key_written_twice_in_a_profile_is_refused_naming_it_and_its_line(tmp_path):
    """A key written twice in a profile (YAML keeps the last silently): refused, naming the key and the line."""
    text = (CONFIG_DIR / "smoke.yaml").read_text()
    path = tmp_path / "twice.yaml"
    path.write_text(text.replace("  seed: 0\n", "  seed: 0\n  seed: 1\n", 1))
    line = path.read_text().splitlines().index("  seed: 1") + 1
    with pytest.raises(ConfigError, match=rf"the key 'seed' is written twice \(line {line}\); keep one"):
        load_profile(str(path))


def test_code_hidden_in_a_profile_yaml_is_refused_without_running_it(tmp_path):
    """A !!python/object tag in a profile YAML: ConfigError naming the file, the line and the fix; nothing runs."""
    marker = tmp_path / "code-ran"
    text = (CONFIG_DIR / "smoke.yaml").read_text()
    evil = tmp_path / "evil.yaml"
    evil.write_text(text.replace("  subset_seed: 0\n",
                                 f"  subset_seed: !!python/object/apply:os.system [\"touch {marker}\"]\n"))
    with pytest.raises(ConfigError) as err:
        load_profile(evil)
    msg = str(err.value)
    assert f"profile {evil} is not valid YAML" in msg and "python/object/apply:os.system" in msg
    line = text.splitlines().index("  subset_seed: 0") + 1
    assert f"line {line}," in msg and "a tag such as !!python/object is refused, never run; remove it" in msg
    assert not marker.exists()


def test_a_bad_override_is_named_not_a_traceback():
    """Found by trying mistakes as a new user: a value YAML cannot read, a key set twice (the last one won,
    silently), a stray space before the '=', and papermill's -p passing the overrides as a string."""
    from clorg.core.config import parse_overrides

    with pytest.raises(ConfigError, match=r"--override metrics.chi_ks: '\[1,10' is not a valid YAML value"):
        parse_overrides(["metrics.chi_ks=[1,10"])
    with pytest.raises(ConfigError, match=r"sets data.train_per_class twice \(50 and 60, as typed\); keep one"):
        parse_overrides(["data.train_per_class=50", "data.train_per_class=60"])
    assert parse_overrides(["data.train_per_class =50"]) == {"data.train_per_class": 50}
    with pytest.raises(ConfigError, match=r"got the str .*-y 'overrides: \{data.train_per_class: 50\}'"):
        load_profile("smoke", '{"metrics.chi_ks": [1, 10]}')


def test_a_variant_whose_data_cannot_load_leaves_no_folder(results_root):
    """An unknown dataset is refused when the data is chosen; the variant's folder, which `make clean-variants`
    would then ask to remove by hand, is not made."""
    with pytest.raises(ValueError, match="unknown dataset 'cifar100'"):
        chapters.setup("smoke", {"data.dataset": "cifar100"})
    assert not list(results_root.glob("smoke+*"))


def test_settings_that_do_not_fit_the_data_are_named_before_any_chapter(results_root):
    """A profile shrunk by overrides met heads.py's bare "k must be smaller than the number of nodes" in chapter
    06, and a profile without a contrastive method a traceback in chapter 07, after every chapter before them
    ran: the setup names each setting and its fix (exit 2 at the entry points), before any chapter."""
    cfg = load_profile("smoke", {"heads.graph_ks_compared": [3, 8, 50], "heads.spreading_k": 8,
                                 "train.methods": ["supervised"]})
    small = FakeData(train=6, test=2, classes=range(4))
    with pytest.raises(ValueError) as err:
        chapters.check_settings(cfg, small, chapters.COMPUTE)
    said = str(err.value)
    assert said.startswith("profile 'smoke+") and "does not fit its data (cifar10):" in said
    assert "heads.graph_ks_compared [8, 50]: a top-k graph needs k below its 8 nodes" in said
    assert "heads.spreading_k = 8: label spreading's kNN graph needs k below its 8 nodes" in said
    assert "train.methods = ['supervised'] trains no contrastive run of resnet18" in said
    assert "add moco_queue or simclr to train.methods" in said
    with pytest.raises(ValueError, match=r"10 training images in 10 classes: the Calinski-Harabasz score needs more "
                                         r"images than classes; raise data.train_per_class to 2 or more"):
        chapters.check_settings(load_profile("smoke"), FakeData(train=10, test=10), ["04_metrics"])
    chapters.check_settings(load_profile("smoke"), FakeData(train=400, test=100), chapters.COMPUTE)  # smoke's size
    chapters.check_settings(cfg, small, ["02_train", "03_embeddings", "05_tsne"])  # chapters that need none of them


def test_more_neighbours_shown_than_training_images_are_capped(results_root, monkeypatch):
    """embeddings.neighbours_shown is a display: past the training images it is capped, as the kNN probe's k is,
    not a traceback from the neighbour search after chapters 01 and 02 ran."""
    bank = np.eye(4, dtype=np.float32)[[0, 1, 2, 3, 0, 1]]
    f = feature_set(bank, np.array([0, 1, 2, 3, 0, 1]), bank[:2], np.array([0, 1]), encoder="resnet18")
    monkeypatch.setattr(chapters, "profile_features", lambda cfg, data: [f])
    cfg = load_profile("smoke", {"embeddings.neighbours_shown": 100_000, "embeddings.neighbour_queries": 2,
                                 "train.contrastive_batch_size": 2, "train.supervised_batch_size": 2})
    data = SimpleNamespace(train=SimpleNamespace(labels=np.array([0, 1, 2, 3, 0, 1])), summary=FakeData(6, 2).summary)
    monkeypatch.setattr(chapters, "local_runs", lambda cfg, data, runs: None)
    [shown] = chapters.embeddings(cfg, data)["neighbours"]
    assert np.asarray(shown["indices"]).shape == (2, 5)


# ================================================ training ================================================

def test_code_hidden_in_a_checkpoint_is_refused_naming_the_file_and_the_fix(tmp_path, finished_run):
    """A checkpoint holding a pickled os.system: refused unread, naming the file and the fix (no weights_only=False)."""
    evil = tmp_path / "evil.pt"
    torch.save({"payload": os.system}, evil)
    with pytest.raises(RuntimeError, match="cannot read checkpoint"):
        checkpoint.load(evil)

    marker = tmp_path / "code-ran"
    root, folder = finished_run
    last = folder / "checkpoints" / "last.pt"
    state = checkpoint.load(last)
    torch.save({**state, "epoch": 1, "payload": RunsCode(marker)}, last)
    mark_unfinished(folder)
    with pytest.raises(RuntimeError) as err:
        run(tiny(), SUPERVISED, runs_root=root, progress=False)  # would resume from last.pt
    msg = str(err.value)
    assert f"cannot read checkpoint {last}: it holds the Python object posix.system" in msg
    assert "Delete it to start that run afresh" in msg and "weights_only=False" not in msg
    assert not marker.exists()


def test_truncated_checkpoint_stops_the_run_naming_the_file_and_the_fix(finished_run, trained_once, capsys):
    """A last.pt cut short: the run refuses to resume, naming it and the fix (delete it), then trains afresh alike."""
    root, folder = finished_run
    last = folder / "checkpoints" / "last.pt"
    last.write_bytes(last.read_bytes()[:1000])
    mark_unfinished(folder)
    with pytest.raises(RuntimeError, match=r"cannot read checkpoint .*last.pt") as err:
        run(tiny(), SUPERVISED, runs_root=root, progress=False)
    assert str(last) in str(err.value) and "Delete it to start that run afresh" in str(err.value)

    last.unlink()  # the fix the message gives
    done = run(tiny(), SUPERVISED, runs_root=root, progress=False)
    assert not done.reused and done.record["finished"] and [e["epoch"] for e in done.log] == [1, 2]
    assert "resuming" not in capsys.readouterr().out
    (original,) = run_folders(trained_once)
    a, b = final_state(original), final_state(folder)
    assert all(torch.equal(a[k], b[k]) for k in a)  # the same seeded run, again


def test_a_foreign_checkpoint_is_refused_naming_the_file_and_what_it_lacks(tmp_path, finished_run):
    """A file torch reads that is no checkpoint of ours (another dict, a bare tensor, another run's snapshot):
    UnreadableCheckpoint naming it and the fix, never a KeyError or a traceback of load_state_dict."""
    other = tmp_path / "other.pt"
    torch.save({"state_dict": {"w": torch.ones(2)}}, other)
    with pytest.raises(checkpoint.UnreadableCheckpoint, match=r"other.pt: it lacks \['encoder'\] \(it has \['state_dict'\]\)"):
        checkpoint.load(other, keys=("encoder",))
    torch.save(torch.ones(3), other)
    with pytest.raises(checkpoint.UnreadableCheckpoint, match=r"other.pt: it holds a Tensor, not the dict"):
        checkpoint.load(other)

    root, folder = finished_run
    result = load_finished(tiny(), SUPERVISED, runs_root=root)
    snapshot = result.files.snapshot(result.final_epoch)
    torch.save({"encoder": {"conv1.weight": torch.zeros(1)}, "epoch": 2}, snapshot)  # another encoder's weights
    with pytest.raises(checkpoint.UnreadableCheckpoint) as err:
        result.load_encoder()
    msg = str(err.value)
    assert f"checkpoint {snapshot} does not fit this run's encoder (Error(s) in loading state_dict for " in msg
    assert "Missing key(s)" in msg or "size mismatch" in msg  # torch's first reason, not its header alone
    reason = msg.split("does not fit this run's encoder (", 1)[1].split("): it was written by", 1)[0]
    assert len(msg.splitlines()) == 1 and len(reason) <= 300  # not torch's list of every key
    assert "Delete it and train the run again: `python -m clorg.train --config smoke" in msg


def test_a_missing_snapshot_of_a_run_with_overrides_gives_the_command_with_them(finished_run):
    """The retrain command of a run loaded through its profile repeats the profile's overrides (a variant's run is
    not the profile's): run as printed, it trains this run, not another."""
    root, folder = finished_run
    result = load_finished(tiny(), SUPERVISED, runs_root=root)
    result.files.snapshot(1).unlink()
    with pytest.raises(runs.SnapshotNotFound) as err:
        result.load_encoder(epoch=1)
    msg = str(err.value)
    assert "Retrain the run to save it: `python -m clorg.train --config smoke --override " in msg
    assert "--override train.supervised_batch_size=64" in msg and msg.endswith("--method supervised --force` (on the same data)")
    assert "with the same overrides" not in msg


def test_a_last_checkpoint_of_another_shape_stops_the_resume_naming_it(finished_run):
    """A last.pt whose states do not fit the run's model (written by another width or method): refused naming it
    and the fix, not a load_state_dict traceback."""
    root, folder = finished_run
    last = folder / "checkpoints" / "last.pt"
    state = checkpoint.load(last)
    state["method"] = {k: v[..., :1] if v.ndim else v for k, v in state["method"].items()}
    torch.save(state, last)
    mark_unfinished(folder)
    with pytest.raises(checkpoint.UnreadableCheckpoint, match=r"last.pt does not fit this run's model \(.*size mismatch "
                                                              r"for .*\): .*Delete it to start that run afresh"):
        run(tiny(), SUPERVISED, runs_root=root, progress=False)


def test_running_out_of_memory_while_loading_is_not_blamed_on_the_file(tmp_path, monkeypatch):
    """Out of memory is the machine's state, not the file's: it passes through, so nobody is told to delete a
    good checkpoint."""
    good = tmp_path / "good.pt"
    checkpoint.save({"encoder": {"w": torch.ones(2)}}, good)

    def no_memory(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory")

    monkeypatch.setattr(torch, "load", no_memory)
    with pytest.raises(torch.OutOfMemoryError):
        checkpoint.load(good)
    module = torch.nn.Linear(2, 2)
    monkeypatch.setattr(module, "load_state_dict", no_memory)
    with pytest.raises(torch.OutOfMemoryError):
        checkpoint.restore(module, {}, good, "encoder")


def test_unreadable_run_record_names_the_file_and_resumes_from_the_last_checkpoint(finished_run, capsys):
    """A truncated record.json: UnreadableRunFile naming it and the fix; once deleted, the run resumes from last.pt."""
    root, folder = finished_run
    record = folder / "record.json"
    record.write_text(record.read_text()[:40])
    for call in (lambda: run(tiny(), SUPERVISED, runs_root=root, progress=False),
                 lambda: load_finished(tiny(), SUPERVISED, runs_root=root)):
        with pytest.raises(UnreadableRunFile) as err:
            call()
        msg = str(err.value)
        assert f"{record} cannot be read" in msg and "delete it and run the training again" in msg
        assert "the run resumes from its last checkpoint" in msg

    record.unlink()  # the fix the message gives
    done = run(tiny(), SUPERVISED, runs_root=root, progress=False)
    assert f"resuming {folder.name} after epoch 2 of 2" in capsys.readouterr().out
    assert done.record["finished"] and done.folder == folder and [e["epoch"] for e in done.log] == [1, 2]
    assert load_finished(tiny(), SUPERVISED, runs_root=root).final_epoch == 2


def test_log_line_cut_by_a_crash_is_dropped_with_a_message_keeping_earlier_lines(finished_run, capsys):
    """A log.jsonl line cut by a crash: the last is dropped with a message, earlier lines kept; a middle one refused."""
    root, folder = finished_run
    log = folder / "log.jsonl"
    first, second = log.read_text().splitlines()
    log.write_text(first + "\n" + second[: len(second) // 2])  # the append of epoch 2 cut by a crash
    capsys.readouterr()
    reused = run(tiny(), SUPERVISED, runs_root=root, progress=False)
    assert reused.reused and [e["epoch"] for e in reused.log] == [1]
    assert reused.log[0] == json.loads(first)
    assert f"{log}: dropped an unreadable last line" in capsys.readouterr().out
    assert [e["epoch"] for e in load_finished(tiny(), SUPERVISED, runs_root=root).log] == [1]

    log.write_text(first[:10] + "\n" + second + "\n")
    with pytest.raises(UnreadableRunFile, match=r"log.jsonl line 1 cannot be read") as err:
        load_finished(tiny(), SUPERVISED, runs_root=root)
    assert str(log) in str(err.value) and f"delete the run folder {folder} and train it again" in str(err.value)


def test_run_trained_by_older_code_is_reused_naming_the_changed_files(finished_run, monkeypatch):
    """A finished run whose training code changed since: reused, not retrained, and stale_files names the files."""
    root, _ = finished_run
    first = run(tiny(), SUPERVISED, runs_root=root, progress=False)
    current = runs.training_code()
    assert first.record["code"] == current
    assert "clorg/train/loop.py" in current["files"] and "clorg/train/augment.py" in current["files"]
    assert first.stale_files == []
    assert json.loads((first.folder / "record.json").read_text())["code"] == current

    # a training source file changes after the run was trained
    changed = {**current["files"], "clorg/train/schedule.py": "0" * 16}
    monkeypatch.setattr(runs, "training_code", lambda: {"files": changed, "sha256": "f" * 16})
    again = run(tiny(), SUPERVISED, runs_root=root, progress=False)
    assert again.reused and again.folder == first.folder  # reused, not retrained...
    assert [e["epoch"] for e in again.log] == [1, 2]
    assert again.stale_files == ["clorg/train/schedule.py"]  # ...but the changed file is named
    assert load_finished(tiny(), SUPERVISED, runs_root=root).stale_files == ["clorg/train/schedule.py"]
    # a record written before runs recorded their code
    assert runs.stale_files({**first.record, "code": None}) == ["(not recorded)"]


def _wait_for_folder(root, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = run_folders(root)
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"no run folder appeared under {root}")


@pytest.mark.parametrize("command", ["train", "book"])
def test_sigterm_ends_a_command_as_ctrl_c_does(command, tmp_path):
    """A scheduler's SIGTERM (or `kill`) mid-training killed the command without a word: it now ends as Ctrl-C
    does, saying what is kept and how to resume (exit 130), with no half-written file left behind."""
    longer = {**TINY, "train.contrastive_epochs": 200}
    env = {**os.environ, "CLORG_RUNS": str(tmp_path / "runs"), "CLORG_RESULTS": str(tmp_path / "results"),
           "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    args = ["--encoder", "resnet18", "--method", "moco_queue"] if command == "train" else ["--only", "02_train"]
    option = "--config" if command == "train" else "--profile"
    proc = subprocess.Popen([sys.executable, "-m", f"clorg.{command}", option, "smoke", *args,
                             *[f"--override={k}={json.dumps(v)}" for k, v in longer.items()]],
                            env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    (folder,) = _wait_for_folder(tmp_path / "runs")
    while not (folder / "log.jsonl").exists():  # into training
        assert proc.poll() is None, proc.stdout.read()
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, out
    said = "interrupted: the run keeps its last finished epoch" if command == "train" else "interrupted during 02_train"
    assert said in out and "run the same command again to resume" in out
    assert not [p for p in tmp_path.rglob("*.tmp")]


def test_killed_training_run_resumes_bit_identically(tmp_path):
    """A training process killed (SIGKILL) mid-epoch: rerun, it resumes and ends bit-identical to a clean run."""
    clean = cli(["--encoder", "resnet18", "--method", "moco_queue"], tmp_path / "clean")
    out, _ = clean.communicate(timeout=600)
    assert clean.returncode == 0, out

    victim = cli(["--encoder", "resnet18", "--method", "moco_queue"], tmp_path / "killed")
    (folder,) = _wait_for_folder(tmp_path / "killed")
    log = folder / "log.jsonl"
    while not log.exists() or len(log.read_text().splitlines()) < 2:
        assert victim.poll() is None, victim.stdout.read()
        time.sleep(0.05)
    epoch_seconds = json.loads(log.read_text().splitlines()[-1])["seconds"]
    time.sleep(epoch_seconds / 2)  # into the middle of epoch 3
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert len(log.read_text().splitlines()) < 4, "the run finished before it could be killed"
    resumed = cli(["--encoder", "resnet18", "--method", "moco_queue"], tmp_path / "killed")
    out, _ = resumed.communicate(timeout=600)
    assert resumed.returncode == 0 and "resuming" in out, out

    (clean_folder,) = run_folders(tmp_path / "clean")
    a, b = final_state(clean_folder), final_state(folder)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key  # bit-identical, queue and momentum encoder included
    assert [e["epoch"] for e in json.loads("[" + ",".join(log.read_text().splitlines()) + "]")] == [1, 2, 3, 4]


def test_nan_weights_behind_a_finite_loss_are_never_checkpointed(tmp_path, monkeypatch):
    """The last step of an epoch leaves NaN weights although its loss was finite: the run stops before the
    checkpoint, which would otherwise save them as the epoch's encoder."""
    from clorg.train import loop

    steps_per_epoch = 60 * 10 // 64  # TINY: 60 digits per class, batches of 64
    real, calls = loop.train_step, []

    def poisons_the_last_step(model, method, *args, **kwargs):
        value = real(model, method, *args, **kwargs)
        calls.append(value)
        if len(calls) == steps_per_epoch:
            with torch.no_grad():
                next(method.parameters()).fill_(float("nan"))
        return value

    monkeypatch.setattr(loop, "train_step", poisons_the_last_step)
    with pytest.raises(TrainingDiverged, match="the weights became NaN or infinite at the end of epoch 1"):
        run(tiny(), SUPERVISED, runs_root=tmp_path, progress=False)
    (folder,) = run_folders(tmp_path)
    assert all(np.isfinite(calls)) and len(calls) == steps_per_epoch
    assert sorted(p.name for p in (folder / "checkpoints").iterdir()) == ["encoder_e0000.pt"]  # nothing of epoch 1
    assert not runs.RunFolder(folder).is_usable()  # nothing trained to read


def test_nan_loss_stops_training_with_a_message_and_keeps_the_last_good_checkpoint(tmp_path, finished_run):
    """A loss that becomes NaN or inf: TrainingDiverged naming the run and the fix; the last good checkpoint is kept."""
    with pytest.raises(TrainingDiverged, match=r"loss became (nan|inf).*Lower train.supervised_lr"):
        run(tiny(**{"train.supervised_lr": 1e30}), SUPERVISED, runs_root=tmp_path / "fresh", progress=False)

    root, folder = finished_run
    last = folder / "checkpoints" / "last.pt"
    state = checkpoint.load(last)
    state["epoch"] = 1  # pretend the run stopped after epoch 1 with weights that have gone bad
    state["method"] = {k: (v * float("nan") if v.is_floating_point() else v) for k, v in state["method"].items()}
    checkpoint.save(state, last)
    mark_unfinished(folder)
    before = last.read_bytes()
    with pytest.raises(TrainingDiverged, match=r"the last good checkpoint .*last.pt\) is kept") as err:
        run(tiny(), SUPERVISED, runs_root=root, progress=False)
    assert folder.name in str(err.value) and "running this one again unchanged resumes it and diverges" in str(err.value)
    assert last.read_bytes() == before
    # the diverged run stays readable up to its last good checkpoint, and says why it ended there
    kept = load_finished(tiny(), SUPERVISED, runs_root=root)
    assert kept.final_epoch == 1 and kept.stopped_early.startswith("diverged: the loss became")
    assert [e["epoch"] for e in kept.log] == [1]


def test_a_run_that_diverges_before_its_first_checkpoint_stops_the_chapter_with_its_advice(results_root, monkeypatch):
    """A rate typed 1e5 for 1e-5 diverges in the first epoch: nothing is kept, and the chapter's error is the
    divergence with its fix (a lower rate), not "produce the run" (which would diverge again)."""
    def diverges(cfg, spec, **kwargs):
        raise TrainingDiverged("the loss became nan at step 1 of epoch 1 of a run; training stopped and no checkpoint "
                               "had been written yet. Lower train.contrastive_lr or lengthen the warm-up")

    monkeypatch.setattr(chapters, "run", diverges)
    with pytest.raises(TrainingDiverged, match="Lower train.contrastive_lr"):
        chapters.training(load_profile("smoke"), FakeData())


def test_ctrl_c_in_the_training_command_says_how_to_resume(monkeypatch, capsys):
    """Ctrl-C during `python -m clorg.train` ends with a line saying the run resumes, not a traceback."""
    from types import SimpleNamespace

    from clorg.train import __main__ as cli

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "choose_profile_dataset", lambda cfg: SimpleNamespace(describe=lambda: "data"))
    monkeypatch.setattr(cli, "run", interrupted)
    assert cli.main(["--config", "smoke", "--encoder", "resnet18", "--method", "supervised"]) == 130
    assert "run the same command again to resume it" in capsys.readouterr().err


# ================================================ features ================================================

GOOD_X = np.random.default_rng(11).normal(size=(30, 3))
GOOD_Y = np.arange(30) % 3
METRIC_CALLS = {
    "rld": lambda X, y: rld(X, y, 0.1),
    "rld_sweep": lambda X, y: rld_sweep(X, y, [0.1, 1.0]),
    "calinski_harabasz": calinski_harabasz,
    "chi": lambda X, y: chi(X, y, [1, 5]),
    "measure": lambda X, y: measure(X, y, [0.1], [1]),
}


def test_nan_features_given_to_the_metrics_are_refused_naming_the_row():
    """NaN in the features given to RLD, CH, CHI: ValueError naming the argument and the first bad row."""
    bad = GOOD_X.copy()
    bad[7, 1] = np.nan
    for name, call in METRIC_CALLS.items():
        with pytest.raises(ValueError, match=r"X contains NaN or infinite values \(first bad row: 7\)"):
            call(bad, GOOD_Y)
        with pytest.raises(ValueError, match="NaN or infinite"):
            call(torch.from_numpy(bad).float(), GOOD_Y)  # a tensor too


def test_infinite_features_given_to_the_metrics_are_refused_naming_the_row():
    """+inf or -inf in the features given to RLD, CH, CHI: ValueError naming the argument and the first bad row."""
    for value in (np.inf, -np.inf):
        bad = GOOD_X.copy()
        bad[12, 0] = value
        for name, call in METRIC_CALLS.items():
            with pytest.raises(ValueError, match=r"X contains NaN or infinite values \(first bad row: 12\)"):
                call(bad, GOOD_Y)


def test_nan_in_a_runs_stored_features_is_never_served(finished_run, monkeypatch, capsys):
    """NaN in a run's stored features: the file is named as damaged and re-extracted, never served; Features
    itself refuses non-finite values with the fix."""
    root, folder = finished_run
    data = choose_profile_dataset(tiny())
    result = load_finished(tiny(), SUPERVISED, data=data, runs_root=root)
    good = run_features(result, data, device="cpu")
    path = folder / "features_e0002.npz"
    with np.load(path, allow_pickle=False) as saved:
        arrays = {k: saved[k] for k in saved.files}
    arrays["train"][3, 0] = np.nan  # same provenance, damaged values
    np.savez(path, **arrays)
    calls = count_calls(monkeypatch, extract, "encode")
    capsys.readouterr()
    again = run_features(result, data, device="cpu")
    out = capsys.readouterr().out
    assert f"{path} holds NaN or infinite values" in out
    assert "extracting the features again" in out
    assert len(calls) == 2 and np.isfinite(again.train).all()
    np.testing.assert_allclose(again.train, good.train, atol=1e-6)
    with np.load(path, allow_pickle=False) as saved:
        assert np.isfinite(saved["train"]).all()  # rewritten whole

    bad = GOOD_X.copy()
    bad[3, 0] = np.nan
    with pytest.raises(ValueError, match=r"enc moco_queue: the train features contain NaN or inf.*retrain.*02_train"):
        feature_set(bad, GOOD_Y, GOOD_X[:10], GOOD_Y[:10], encoder="enc", method="moco_queue")


def test_label_count_that_does_not_match_the_features_is_refused():
    """Fewer labels than feature rows, in the metrics or a feature set: ValueError giving both counts and the fix."""
    for name, call in METRIC_CALLS.items():
        with pytest.raises(ValueError, match="X has 30 rows but y has 29 labels; they must match"):
            call(GOOD_X, GOOD_Y[:-1])
    with pytest.raises(ValueError, match=r"enc moco_queue: 30 test features but 29 labels; re-extract them .*"
                                         r"features_e\*\.npz.*03_embeddings"):
        feature_set(GOOD_X, GOOD_Y, GOOD_X, GOOD_Y[:-1], encoder="enc", method="moco_queue")


def test_one_class_only_is_refused(tmp_path):
    """A single class, in the metrics or in an image-folder dataset: an error saying at least two are needed."""
    for name, call in METRIC_CALLS.items():
        with pytest.raises(ValueError, match="y must contain at least 2 classes, got 1"):
            call(GOOD_X, np.zeros(30, dtype=int))
    write_image_tree(tmp_path / "t", ["only"])
    with pytest.raises(DatasetError, match=r"has 1 class; at least 2 are needed") as err:
        load_dataset(f"imagefolder:{tmp_path / 't'}", "train")
    assert str(tmp_path / "t") in str(err.value)


@pytest.mark.parametrize("case", ["nan-features", "single-class", "mismatched-labels", "unknown-format"])
def test_geometry_command_given_bad_input_prints_one_line_and_exits_2(tmp_path, case):
    """The geometry command on NaN, one class, too few labels, an unknown format: one line naming the file, exit 2."""
    X, y = GOOD_X.copy(), GOOD_Y
    features, labels = tmp_path / "features.npy", tmp_path / "labels.npy"
    expected = {
        "nan-features": f"error: {features} holds NaN or infinite values (1 of them, first in row 4); "
                        f"remove or repair those rows",
        "single-class": f"error: {labels} holds one class; RLD, CH and CHI compare at least two",
        "mismatched-labels": f"error: {features} has 30 rows but {labels} has 29 labels; they must match",
        "unknown-format": f"error: {tmp_path / 'features.txt'}: unknown format .txt; use .npy, .npz, .pt or .csv",
    }[case]
    if case == "nan-features":
        X[4, 2] = np.nan
    elif case == "single-class":
        y = np.zeros(30, dtype=int)
    elif case == "mismatched-labels":
        y = y[:-1]
    np.save(features, X)
    np.save(labels, y)
    if case == "unknown-format":
        features = tmp_path / "features.txt"
        features.write_text("0.1 0.2 0.3\n")
    done = subprocess.run([sys.executable, "-m", "clorg.analysis.geometry", str(features), str(labels)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stdout == "" and done.stderr.count("\n") == 1, done.stderr  # one line, no traceback
    assert done.stderr.startswith(expected), done.stderr


# ================================================ results =================================================

def test_truncated_results_json_is_reported_and_recomputed_or_refused_with_the_command(results_root, capsys):
    """A stored result .json cut short: reported with its path and recomputed, or refused with the command."""
    calls, make = counter()
    store_cached(store_cfg(), StoreData(), "g", make({"v": list(range(50))}))
    path = results_root / "quick" / "g.json"
    text = path.read_text()
    path.write_text(text[: len(text) // 2])
    st = status(store_cfg(), StoreData(), "g", METRICS, producer="nb")
    assert st.kind == "unreadable" and not st.usable and st.entry is None
    assert f"{path} cannot be read" in st.detail
    # a machine that cannot compute it refuses, with the command that produces it
    with pytest.raises(UnreadableResult,
                       match=r"cannot be read.*`python -m clorg.book --profile quick --only 04_metrics`"):
        store_cached(store_cfg(), StoreData(), "g", make({"v": 2}), can_compute=False)
    assert len(calls) == 1
    assert store_cached(store_cfg(), StoreData(), "g", make({"v": 2})) == {"v": 2} and len(calls) == 2
    assert f"{path} cannot be read" in capsys.readouterr().out
    assert json.loads(path.read_text())["result"] == {"v": 2}


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_corrupt_results_npz_is_reported_and_recomputed(results_root, capsys, damage):
    """A stored .npz truncated or overwritten: reported with its path and recomputed, or refused with the command."""
    calls, make = counter()
    store_cached(store_cfg(), StoreData(), "tsne", make({"Y": np.arange(2000, dtype=np.float32)}), arrays=True)
    path = results_root / "quick" / "tsne.npz"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if damage == "truncated" else b"garbage")
    st = status(store_cfg(), StoreData(), "tsne", METRICS, producer="nb", suffix="npz")
    assert st.kind == "unreadable" and f"{path} cannot be read" in st.detail
    with pytest.raises(UnreadableResult, match=r"cannot be read.*--only 04_metrics"):
        store_cached(store_cfg(), StoreData(), "tsne", make({"Y": np.ones(2)}), arrays=True, can_compute=False)
    out = store_cached(store_cfg(), StoreData(), "tsne", make({"Y": np.ones(2)}), arrays=True)
    assert out["Y"].tolist() == [1.0, 1.0] and len(calls) == 2
    assert f"{path} cannot be read" in capsys.readouterr().out


def _patched_hash(monkeypatch, filename: str, value: str = "0" * 16):
    """Make the source of ``filename`` hash to ``value``, as if it had been edited."""
    real = code._sha
    monkeypatch.setattr(code, "_sha", lambda path: value if Path(path).name == filename else real(path))


def test_result_computed_by_older_code_is_recomputed_or_shown_naming_the_changed_files(results_root, monkeypatch,
                                                                                        capsys):
    """A stored result of older code: recomputed where possible, else shown with a status naming the changed files."""
    calls, make = counter()
    assert store_cached(store_cfg(), None, "toy", make({"v": 1}), source=TOY) == {"v": 1}
    with monkeypatch.context() as m:
        _patched_hash(m, "toy.py")
        st = status(store_cfg(), None, "toy", TOY, producer="nb")
        assert st.kind == "code" and st.usable and st.changed == ("clorg/analysis/toy.py",)
        assert "these files changed since: clorg/analysis/toy.py" in st.detail
        assert store_cached(store_cfg(), None, "toy", make({"v": 2}), source=TOY) == {"v": 2} and len(calls) == 2
        assert "computed by older code" in capsys.readouterr().out
        assert status(store_cfg(), None, "toy", TOY, producer="nb").kind == "current"

    # where it cannot be recomputed (a GPU profile on a CPU machine): shown, and its status names the files
    real = code.code_version

    def edited(roots, *a, **kw):  # code_version itself patched: another version of the same file
        out = real(roots, *a, **kw)
        return {"files": {**out["files"], "clorg/analysis/toy.py": "f" * 16}, "sha256": "e" * 16}

    monkeypatch.setattr(code, "code_version", edited)
    assert store_cached(store_cfg(), None, "toy", make({"v": 3}), source=TOY, can_compute=False) == {"v": 2}
    assert len(calls) == 2
    assert "this machine cannot recompute it" in capsys.readouterr().out
    st = status(store_cfg(), None, "toy", TOY, producer="nb")
    assert st.kind == "code" and st.changed == ("clorg/analysis/toy.py",) and st.entry["result"] == {"v": 2}


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_a_non_finite_number_is_absent_not_a_failed_condition(value):
    # a NaN in a stored result (a damaged file, an undefined metric) compares False with everything: read as a
    # number it would turn claim 2 into "not reproduced"; it is absent, so the claim is inconclusive
    j = judge_claim2({"ch_cl": value, "ch_sl": 31976.0, "ch_ri": 50.0})
    assert j["verdict"] == INCONCLUSIVE and [c["holds"] for c in j["conditions"]] == [None]
    j = judge_claim2({"ch_cl": 100.0, "ch_sl": value, "ch_ri": 50.0})
    assert j["verdict"] == INCONCLUSIVE and [c["holds"] for c in j["conditions"]] == [None]
    assert judge_claim4({"gain": -0.02, "low": value, "high": -0.01})["verdict"] == INCONCLUSIVE


def test_a_headless_run_stops_on_a_chapters_advice_without_a_traceback(results_root, monkeypatch, capsys):
    """An error whose message says what to do (a damaged result, a run to train first) ends the command with
    that message and exit 1; any other exception is a bug and keeps its traceback. A mistyped --only is
    refused before the data is read."""
    from clorg.book.__main__ import main

    def damaged(cfg, data, fresh):
        raise store.UnreadableResult("results/smoke/geometry.json cannot be read; delete it and run this again")

    def bug(cfg, data, fresh):
        raise KeyError("a bug")

    monkeypatch.setattr(chapters, "setup", lambda profile, overrides, **kw: (load_profile(profile), FakeData()))
    monkeypatch.setattr(chapters, "compute_steps", lambda until: {"04_metrics": damaged})
    assert main(["--profile", "smoke", "--only", "04_metrics"]) == 1
    assert capsys.readouterr().err == ("error: 04_metrics: UnreadableResult: results/smoke/geometry.json cannot be "
                                       "read; delete it and run this again\n")
    monkeypatch.setattr(chapters, "compute_steps", lambda until: {"04_metrics": bug})
    with pytest.raises(KeyError, match="a bug"):
        main(["--profile", "smoke", "--only", "04_metrics"])
    monkeypatch.setattr(chapters, "setup", lambda *a, **kw: pytest.fail("the data was read before --only was checked"))
    assert main(["--profile", "smoke", "--only", "04_metric"]) == 2
    assert "--only ['04_metric']" in capsys.readouterr().err


def test_the_import_refuses_a_folder_that_is_not_a_jobs_output(tmp_path):
    """A wrong folder is refused, saying why, before anything is written: an empty job record once became a
    third job of the committed weights folder."""
    spec = importlib.util.spec_from_file_location("import_device_run", ROOT / "ci" / "import_device_run.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    read_job = script.read_job
    with pytest.raises(SystemExit, match="does not exist"):
        read_job(tmp_path / "nowhere", "gpu10")
    with pytest.raises(SystemExit, match="no job.json"):
        read_job(tmp_path, "gpu10")
    (tmp_path / "job.json").write_text("{damaged")
    with pytest.raises(SystemExit, match="cannot be read"):
        read_job(tmp_path, "gpu10")
    (tmp_path / "job.json").write_text("{}")
    with pytest.raises(SystemExit, match=r"lacks \['profile', 'steps', 'budget_s'\]"):
        read_job(tmp_path, "gpu10")
    job = {"profile": "/tmp/scratch/gpu10.yaml", "steps": [], "budget_s": 510}
    (tmp_path / "job.json").write_text(json.dumps(job))
    with pytest.raises(SystemExit, match="--profile gpu10"):
        read_job(tmp_path, "paper")
    assert read_job(tmp_path, "gpu10") == job and read_job(tmp_path, "configs/gpu10.yaml") == job
    # a variant's job (run with --override): its weights would replace the profile's own in weights/gpu10/
    (tmp_path / "job.json").write_text(json.dumps({**job, "overrides": ["train.width_scale=0.5"]}))
    with pytest.raises(SystemExit, match=r"--override train.width_scale=0.5: its weights are a variant's"):
        read_job(tmp_path, "gpu10")


# ============================================ concurrency and disk ========================================

_FIRST_ASKER = """
import json, os, sys, time
import clorg.train.loop as loop
from clorg.core.config import RunSpec, load_profile

go, overrides = sys.argv[1], json.loads(sys.argv[2])
real_step = loop.train_step

def step_when_told(*args, **kwargs):  # holds the run's lock until the test says go
    while not os.path.exists(go):
        time.sleep(0.02)
    return real_step(*args, **kwargs)

loop.train_step = step_when_told
result = loop.run(load_profile("smoke", overrides), RunSpec("resnet18", "supervised", "cosine"), progress=False)
print("reused" if result.reused else "trained", result.folder.name, flush=True)
"""


def test_two_processes_training_the_same_run_the_second_waits_and_reuses_it(tmp_path):
    """A second process asks for a run another is training: it says who holds it, waits, then reuses the run."""
    env = {**os.environ, "CLORG_RUNS": str(tmp_path), "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    go = tmp_path / "go"
    first = subprocess.Popen([sys.executable, "-c", _FIRST_ASKER, str(go), json.dumps(TINY)], env=env, cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    second = None
    try:
        deadline = time.time() + 120
        while True:  # until the first process holds the run's lock
            held = [p for p in (tmp_path / "smoke").glob(".*.lock") if f"pid {first.pid} " in p.read_text()] \
                if (tmp_path / "smoke").exists() else []
            if held:
                break
            assert first.poll() is None, first.stdout.read()
            assert time.time() < deadline, "the first process never took the lock"
            time.sleep(0.05)
        second = cli(["--encoder", "resnet18", "--method", "supervised"], tmp_path)
        seen = []
        for line in second.stdout:
            seen.append(line)
            if line.startswith("waiting:"):
                break
        assert seen and seen[-1].startswith("waiting: run "), "".join(seen)
        folder_name = held[0].name[1:-len(".lock")]
        assert f"run {folder_name} is being written by pid {first.pid} " in seen[-1]
        go.touch()  # the first process trains now; the second waits for it
        out_first, _ = first.communicate(timeout=300)
        out_second, _ = second.communicate(timeout=300)
    finally:
        go.touch()
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
    assert first.returncode == 0 and f"trained {folder_name}" in out_first, out_first
    assert second.returncode == 0 and f"reused finished run {tmp_path / 'smoke' / folder_name}" in out_second, out_second
    assert "lock on run" in out_second and "resuming" not in out_second
    log = (tmp_path / "smoke" / folder_name / "log.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in log] == [1, 2]  # trained once


def _compute_in_process(results: str, counter_file: str, out: str) -> None:
    os.environ["CLORG_RESULTS"] = results

    def compute():
        with open(counter_file, "a") as fh:
            fh.write(f"{os.getpid()}\n")
        time.sleep(2)
        return {"v": 42}

    value = store_cached(store_cfg(), StoreData(), "slow", compute)
    Path(out).write_text(json.dumps(value))


def test_two_processes_computing_the_same_result_compute_it_once(results_root, tmp_path, capfd):
    """A second process asks for a result another is computing: it waits for the lock, then reads the stored one."""
    ctx = multiprocessing.get_context("fork")
    counter_file = tmp_path / "calls.txt"
    procs = [ctx.Process(target=_compute_in_process,
                         args=(str(results_root), str(counter_file), str(tmp_path / f"out{i}.json")))
             for i in range(2)]
    t0 = time.time()
    procs[0].start()
    while not counter_file.exists() and time.time() - t0 < 30:  # the first is computing (for 2 s) ...
        time.sleep(0.05)
    procs[1].start()  # ... when the second asks for the same result
    for p in procs:
        p.join(timeout=60)
    assert [p.exitcode for p in procs] == [0, 0]
    assert len(counter_file.read_text().splitlines()) == 1  # computed once
    assert [json.loads((tmp_path / f"out{i}.json").read_text()) for i in range(2)] == [{"v": 42}] * 2
    assert "waiting: result" in capfd.readouterr().out  # the second one waited for the lock


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_full_disk_during_a_checkpoint_a_cache_or_a_results_write_keeps_the_previous_file_and_says_so(
        tmp_path, monkeypatch, capsys, finished_run, results_root):
    """ENOSPC part way through a checkpoint, cache or results write: WriteFailed says so; the previous file intact."""
    # --- a checkpoint, written directly
    path = tmp_path / "checkpoints" / "last.pt"
    good = {"epoch": 3, "method": {"w": torch.arange(10.0)}}
    checkpoint.save(good, path)
    before = path.read_bytes()
    with monkeypatch.context() as m:
        m.setattr(atomic, "os", OsWithFullDisk(room=300))
        with pytest.raises(WriteFailed, match=r"last.pt \(the disk is full\)"):
            checkpoint.save({"epoch": 4, "method": {"w": torch.zeros(10_000)}}, path)
    assert path.read_bytes() == before and leftovers(path.parent) == []
    state = checkpoint.load(path)
    assert state["epoch"] == 3 and torch.equal(state["method"]["w"], torch.arange(10.0))

    # --- a checkpoint, written by a training run that resumes after epoch 1: the disk fills at the epoch-2 snapshot
    root, folder = finished_run
    last = folder / "checkpoints" / "last.pt"
    checkpoint.save({**checkpoint.load(last), "epoch": 1}, last)  # a run stopped after epoch 1
    mark_unfinished(folder)
    (folder / "checkpoints" / "encoder_e0002.pt").unlink()
    last_before = last.read_bytes()
    with monkeypatch.context() as m:
        m.setattr(atomic, "os", OsWithFullDisk(room=100_000))  # room for the record and log, not for weights
        with pytest.raises(WriteFailed) as err:
            run(tiny(), SUPERVISED, runs_root=root, progress=False)
    assert f"could not write {folder / 'checkpoints' / 'encoder_e0002.pt'} (the disk is full)" in str(err.value)
    assert err.value.errno == errno.ENOSPC and "Free some space" in str(err.value)
    assert last.read_bytes() == last_before and leftovers(folder / "checkpoints") == []
    assert not (folder / "checkpoints" / "encoder_e0002.pt").exists()
    done = run(tiny(), SUPERVISED, runs_root=root, progress=False)  # with room again: resumes after epoch 1
    assert f"resuming {folder.name} after epoch 1 of 2" in capsys.readouterr().out
    assert done.record["finished"] and [e["epoch"] for e in done.log] == [1, 2]

    # --- a data-cache entry
    expected = write_image_tree(tmp_path / "t", ["a", "b"])
    name = f"imagefolder:{tmp_path / 't'}"
    cache_dir = tmp_path / "cache"
    load_dataset(name, "train")
    (images_npy,) = cache_dir.rglob("images.npy")
    entry = images_npy.parent
    before = {p.name: p.read_bytes() for p in entry.iterdir()}
    source, _ = sources.locate(name, "train", tmp_path)
    other = np.zeros_like(expected["train"][0])
    with monkeypatch.context() as m:  # undone at the end of the block only (conftest's env stays)
        m.setattr(atomic, "os", OsWithFullDisk(room=100))
        with pytest.raises(WriteFailed, match="disk is full"):
            cache.write_entry(cache_dir, name, "train", source, other, expected["train"][1], ("a", "b"), "0" * 64)
        # the arrays that were there are untouched, and no half-written file or manifest is left to be served
        assert images_npy.read_bytes() == before["images.npy"]
        assert (entry / "labels.npy").read_bytes() == before["labels.npy"]
        assert not (entry / "manifest.json").exists() and leftovers(entry) == []

        # a load on the full disk still returns the data; only the cache is not written
        capsys.readouterr()
        ds = load_dataset(name, "train")
        np.testing.assert_array_equal(ds.images, expected["train"][0])
        assert "data cache: not written" in capsys.readouterr().out
        assert not (entry / "manifest.json").exists() and leftovers(entry) == []
    np.testing.assert_array_equal(load_dataset(name, "train").images, expected["train"][0])
    assert (entry / "manifest.json").exists() and entry.is_relative_to(tmp_path)

    # --- a stored result, .json and .npz
    for arrays in (False, True):
        first = {"Y": np.zeros(3)} if arrays else {"v": 1}
        store_cached(store_cfg(), StoreData(), "g", lambda: first, arrays=arrays)
        path = results_root / "quick" / ("g.npz" if arrays else "g.json")
        before = path.read_bytes()
        second = {"Y": np.ones(3)} if arrays else {"v": 2}
        with monkeypatch.context() as m:
            m.setattr(atomic, "os", OsWithFullDisk(room=100))
            with pytest.raises(WriteFailed, match="the disk is full") as err:
                store_cached(store_cfg(), StoreData(), "g", lambda: second, recompute=True, arrays=arrays)
        assert str(path) in str(err.value) and err.value.errno == errno.ENOSPC
        assert path.read_bytes() == before and leftovers(path.parent) == []
        assert status(store_cfg(), StoreData(), "g", METRICS, producer="nb", suffix=path.suffix[1:]).kind == "current"
