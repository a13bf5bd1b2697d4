"""Tiny but real dataset files in every on-disk format the data layer reads."""

from __future__ import annotations

import errno
import gzip
import io
import json
import os
import pickle
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image

CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def rng_images(n, h=32, w=32, c=3, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(n, h, w, c), dtype=np.uint8)


# --- CIFAR-10 python pickles -----------------------------------------------------------------------

def cifar_arrays(per_batch=20, seed=0):
    """{batch name: (images NHWC, labels)} for the 5 train batches and the test batch."""
    out = {}
    for i, name in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        images = rng_images(per_batch, seed=seed + i)
        labels = np.arange(per_batch) % 10
        out[name] = (images, labels)
    return out


def write_cifar_pickles(folder: Path, arrays) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, (images, labels) in arrays.items():
        batch = {b"data": images.transpose(0, 3, 1, 2).reshape(len(images), -1),  # stored as CHW rows
                 b"labels": labels.tolist(), b"batch_label": name.encode()}
        (folder / name).write_bytes(pickle.dumps(batch))
    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": [c.encode() for c in CIFAR_CLASSES]}))
    return folder


def write_cifar_tarball(path: Path, arrays) -> Path:
    staging = path.parent / "_staging"
    write_cifar_pickles(staging / "cifar-10-batches-py", arrays)
    with tarfile.open(path, "w:gz") as tar:
        tar.add(staging / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    return path


# --- image folders ---------------------------------------------------------------------------------

def write_image_tree(root: Path, classes, per_class=(4, 2), size=(8, 6), mode="RGB", fmt="png", seed=0):
    """train/<class>/*.png and test/<class>/*.png; returns {split: (images, labels)} in load order."""
    rng = np.random.default_rng(seed)
    expected = {}
    for split, count in zip(("train", "test"), per_class):
        imgs, labels = [], []
        for ci, cls in enumerate(sorted(classes)):
            (root / split / cls).mkdir(parents=True, exist_ok=True)
            for k in range(count):
                shape = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
                arr = rng.integers(0, 256, size=shape, dtype=np.uint8)
                Image.fromarray(arr, mode).save(root / split / cls / f"{k:04d}.{fmt}")
                imgs.append(arr if arr.ndim == 3 else arr[..., None])
                labels.append(ci)
        expected[split] = (np.stack(imgs), np.array(labels))
    return expected


def tar_folder(folder: Path, path: Path, top: str | None = None) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for split in ("train", "test"):
            tar.add(folder / split, arcname=f"{top}/{split}" if top else split)
    return path


# --- IDX -------------------------------------------------------------------------------------------

def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_idx_set(folder: Path, n_train=30, n_test=10, gz=True, seed=0):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    expected = {}
    for split, prefix, n in (("train", "train", n_train), ("test", "t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = np.arange(n) % 10
        for kind, arr, dims in (("images", images, 3), ("labels", labels, 1)):
            data = idx_bytes(arr)
            name = f"{prefix}-{kind}-idx{dims}-ubyte"
            if gz:
                (folder / (name + ".gz")).write_bytes(gzip.compress(data))
            else:
                (folder / name).write_bytes(data)
        expected[split] = (images[..., None], labels)
    return expected


def jpeg_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "JPEG")
    return buf.getvalue()


# --- feature sets ----------------------------------------------------------------------------------

def feature_set(train, train_labels, test, test_labels, encoder="enc", method="moco_queue", schedule="cosine",
                epoch=20, provenance=None):
    """A checked clorg.features.Features from arrays (identity fields as given; epoch 0 = random init)."""
    from clorg.features import Features

    return Features(encoder, method, schedule, epoch, np.asarray(train), np.asarray(train_labels),
                    np.asarray(test), np.asarray(test_labels), provenance if provenance is not None else {})


# --- tidy result records (clorg.analysis.records) and a dataset without images ----------------------

class FakeData:
    """What the book reads of a DatasetChoice (its summary), without any image: for stored results,
    claims and reports built by hand."""

    def __init__(self, name="cifar10", train=50_000, test=10_000, sha="f" * 64, image_shape=(32, 32, 3),
                 classes=CIFAR_CLASSES, skipped=()):
        self.name, self.train_images, self.test_images, self.sha = name, train, test, sha
        self.image_shape, self.classes, self.skipped = list(image_shape), list(classes), list(skipped)

    def summary(self):
        return {"name": self.name, "source": "x", "sha256": self.sha, "train_images": self.train_images,
                "test_images": self.test_images, "image_shape": self.image_shape, "classes": self.classes,
                "skipped": [{"name": n, "reason": r} for n, r in self.skipped], "notes": []}

    def describe(self):
        return f"{self.name}: {self.train_images} training images (fake)"


def tidy(encoder, method, metric, values, epoch=10, schedule="cosine", seed=None):
    """Records of one metric of one feature set: ``values`` is a number (no parameter) or
    ``{parameter: number}``; ``epoch=0`` is the random initialisation."""
    from clorg.analysis.records import record

    ident = {"encoder": encoder, "method": method, "schedule": schedule, "epoch": epoch}
    if not isinstance(values, dict):
        return [record(ident, metric, values, seed=seed)]
    return [record(ident, metric, v, parameter=p, seed=seed) for p, v in values.items()]


def head_records(encoder, method, head, test, val=None, parameter=None, authors=None, parameters=None,
                 epoch=10, schedule="cosine"):
    """The records a classifier head stores for one feature set: honest test (and validation) accuracy
    per seed (``test``, ``val``: one value per seed, or one number for a single seed), the authors'-protocol
    accuracy and the parameter count."""
    from clorg.analysis.records import AUTHORS, PARAMETERS, TEST, VALIDATION, head_metric, record

    ident = {"encoder": encoder, "method": method, "schedule": schedule, "epoch": epoch}
    test = list(test) if isinstance(test, (list, tuple)) else [test]
    val = test if val is None else (list(val) if isinstance(val, (list, tuple)) else [val] * len(test))
    out = []
    for seed, (t, v) in enumerate(zip(test, val)):
        out += [record(ident, head_metric(head, TEST), t, parameter, seed),
                record(ident, head_metric(head, VALIDATION), v, parameter, seed)]
    if authors is not None:
        out.append(record(ident, head_metric(head, AUTHORS), authors, parameter))
    if parameters is not None:
        out.append(record(ident, head_metric(head, PARAMETERS), parameters, parameter))
    return out


# --- damage: bytes changed in place, a disk that fills up -------------------------------------------

def flip_npy_data_bytes(npy: Path, start=16, count=32) -> int:
    """Change bytes inside the array data of a .npy file (after its header), keeping its size; returns
    the offset of the data."""
    with open(npy, "rb") as fh:
        np.lib.format.read_magic(fh)
        np.lib.format.read_array_header_1_0(fh)
        offset = fh.tell()
    raw = bytearray(npy.read_bytes())
    size = len(raw)
    for i in range(offset + start, offset + start + count):
        raw[i] ^= 0xFF
    npy.write_bytes(bytes(raw))
    assert npy.stat().st_size == size
    return offset


class FillingFile:
    """A binary file whose writes fail with ENOSPC once ``room`` bytes have been written."""

    def __init__(self, real, room: int):
        self._real, self._room = real, room
        self.written = 0

    def write(self, data) -> int:
        data = bytes(data)
        if self.written + len(data) > self._room:
            take = self._room - self.written
            self._real.write(data[:take])  # part of the bytes reach the temporary file
            self.written += take
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.written += len(data)
        return self._real.write(data)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._real.close()
        return False

    def __getattr__(self, name):  # flush, fileno, tell, seek, close...
        return getattr(self._real, name)


class OsWithFullDisk:
    """``os`` as clorg.core.atomic sees it, except that files it opens fill up after ``room`` bytes:
    ``monkeypatch.setattr(clorg.core.atomic, "os", OsWithFullDisk(room=100))``."""

    def __init__(self, room: int):
        self.room, self.files = room, []

    def fdopen(self, fd, *args, **kwargs):
        f = FillingFile(os.fdopen(fd, *args, **kwargs), self.room)
        self.files.append(f)
        return f

    def __getattr__(self, name):
        return getattr(os, name)


def count_calls(monkeypatch, owner, name: str, record=lambda *args, **kwargs: 1) -> list:
    """Wrap ``owner.name`` so that each call appends ``record(*args, **kwargs)`` to the returned list and
    then runs the real function: how a test sees that an expensive step ran again (or did not)."""
    calls = []
    real = getattr(owner, name)

    def counting(*args, **kwargs):
        calls.append(record(*args, **kwargs))
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, counting)
    return calls


def counter():
    """(calls, make): ``make(value)`` is a compute function returning ``value`` that counts into ``calls``."""
    calls = []

    def make(value):
        def compute():
            calls.append(1)
            return value
        return compute
    return calls, make


# smoke shrunk so that the whole book computes headless in seconds (python -m clorg.book)
TINY_BOOK = {"data.dataset": "digits", "data.train_per_class": 40, "data.test_per_class": 10,
             "train.contrastive_batch_size": 64, "train.supervised_batch_size": 64, "train.moco_queue_size": 128,
             "train.contrastive_epochs": 1, "train.supervised_epochs": 1, "metrics.chi_ks": [1, 8, 100],
             "toy.points_per_class": 30, "toy.seeds": 1, "tsne.sample_size": 100, "tsne.iterations": 50,
             "heads.seeds": 1, "heads.honest_max_steps": 20, "heads.graph_ks_compared": [10],
             "near_duplicates.search": 50, "near_duplicates.augment_draws": 50}


def override_args(overrides: dict) -> list[str]:
    """``--override KEY=VALUE`` arguments of a command line, each value as JSON (which YAML reads back)."""
    return [arg for k, v in overrides.items() for arg in ("--override", f"{k}={json.dumps(v)}")]


def commit_weights(folder: Path, cfg: dict, data, runs=None, other: bool = False) -> None:
    """Committed weights as they look without being read (``clorg.train.bundle.committed_run``): an empty
    shard and the ``<name>.json`` of each main run of ``cfg`` on ``data``, replacing what ``folder`` held;
    ``runs``: of these methods only; ``other``: naming runs of other settings."""
    from clorg.core.config import main_runs
    from clorg.train import bundle, locate

    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.iterdir():
        old.unlink()
    for spec in main_runs(cfg):
        if runs is not None and spec.method not in runs:
            continue
        name = bundle.bundle_name(spec)
        (folder / f"{name}.0.pt.gz").write_bytes(b"")
        run = locate(cfg, spec, data)[1].name
        (folder / f"{name}.json").write_text(json.dumps({"run": f"{run}-other" if other else run}))
