"""Tiny but real dataset files in every on-disk format the data layer reads."""

from __future__ import annotations

import gzip
import io
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
