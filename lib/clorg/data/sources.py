"""Where each dataset can come from, in order of preference, and how to read each kind of source.

A :class:`Source` is one concrete place holding one split of a dataset (a folder of CIFAR pickles,
a tarball, an image-folder tree, IDX files). :func:`locate` walks a dataset's candidates under the
data root and returns the first that exists, or raises :class:`DatasetNotFoundError` listing every
place it looked.
"""

from __future__ import annotations

import lzma
import os
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .base import SPLITS, DatasetError, DatasetNotFoundError
from .formats import IMAGE_SUFFIXES, decode_images, read_cifar_batch, read_cifar_meta, read_idx

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")

Decoded = tuple[np.ndarray, np.ndarray, tuple[str, ...]]


@dataclass(frozen=True)
class Source:
    """One split of a dataset at one place. ``files`` are the files whose bytes define the data."""

    kind: str
    path: Path
    files: tuple[Path, ...]
    read: Callable[[], Decoded]

    def describe(self) -> str:
        return f"{self.kind} {self.path}"


# --- CIFAR-10 as python pickles (a folder, or the official tarball) --------------------------------

_CIFAR_BATCHES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}


def _cifar_from_blobs(blobs: dict[str, bytes], split: str, where: str) -> Decoded:
    classes = read_cifar_meta(blobs["batches.meta"], f"{where}/batches.meta")
    if len(classes) != 10:
        raise DatasetError(f"{where}/batches.meta names {len(classes)} classes, expected 10")
    parts = [read_cifar_batch(blobs[b], f"{where}/{b}") for b in _CIFAR_BATCHES[split]]
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    return images, labels, classes


def _cifar_pickle_dir(folder: Path, split: str) -> Source | None:
    needed = ["batches.meta", *_CIFAR_BATCHES[split]]
    if not folder.is_dir():
        return None
    missing = [n for n in needed if not (folder / n).is_file()]
    if missing:
        raise DatasetError(f"{folder} is incomplete: {missing} missing. Delete the folder, or restore the "
                           f"files from cifar-10-python.tar.gz")
    files = tuple(folder / n for n in needed)
    return Source("CIFAR-10 python batches", folder, files,
                  lambda: _cifar_from_blobs({f.name: f.read_bytes() for f in files}, split, str(folder)))


def _read_tar(path: Path, want: Callable[[str], bool]) -> dict[str, bytes]:
    """Members of a tarball whose names pass ``want``, read in archive order (cheap for .tar.gz). The
    compressed stream is then read to its end: tarfile stops at the end-of-archive blocks, before gzip's
    trailer, whose checksum alone tells a damaged archive from a good one."""
    out = {}
    try:
        with tarfile.open(path, "r:*") as tar:
            for member in tar:
                if member.isfile() and want(member.name):
                    out[member.name] = tar.extractfile(member).read()
            while tar.fileobj.read(1 << 20):
                pass
    except (tarfile.TarError, OSError, EOFError, zlib.error, lzma.LZMAError) as exc:  # damage inside the stream
        raise DatasetError(f"{path} is not a readable tarball ({exc}); delete it and provide it again") from exc
    return out


def _cifar_tarball(path: Path, split: str) -> Source | None:
    if not path.is_file():
        return None

    def read():
        prefix = "cifar-10-batches-py/"
        blobs = _read_tar(path, lambda n: n.startswith(prefix))
        blobs = {n[len(prefix):]: b for n, b in blobs.items()}
        missing = [n for n in ["batches.meta", *_CIFAR_BATCHES[split]] if n not in blobs]
        if missing:
            raise DatasetError(f"{path} lacks {[prefix + m for m in missing]}; it is not the official "
                               f"cifar-10-python.tar.gz or it is incomplete")
        return _cifar_from_blobs(blobs, split, f"{path}:{prefix.rstrip('/')}")

    return Source("CIFAR-10 official archive", path, (path,), read)


# --- image folders: train/<class>/*.png|jpg and test/<class>/..., as a tree or a tarball ------------

def _is_image(name: str) -> bool:
    base = name.rsplit("/", 1)[-1]
    return not base.startswith(".") and base.lower().endswith(IMAGE_SUFFIXES)


def _classes_of(by_split: dict[str, dict[str, list[str]]], where: str) -> tuple[str, ...]:
    """Both splits must have the same, non-empty classes; returns them sorted (torchvision's order)."""
    for split in SPLITS:
        if not by_split.get(split):
            raise DatasetError(f"{where} has no {split}/<class>/ folders with images; an image-folder dataset "
                               f"needs train/<class>/*.png|jpg and test/<class>/*.png|jpg")
        empty = sorted(c for c, files in by_split[split].items() if not files)
        if empty:
            raise DatasetError(f"{where}: class folder(s) {empty} of {split} hold no PNG/JPEG images; "
                               f"add images or remove the folder(s)")
    train, test = set(by_split["train"]), set(by_split["test"])
    if train != test:
        raise DatasetError(f"{where}: train and test have different classes: only in train {sorted(train - test)}, "
                           f"only in test {sorted(test - train)}; both splits need the same class folders")
    if len(train) < 2:
        raise DatasetError(f"{where} has {len(train)} class; at least 2 are needed")
    return tuple(sorted(train))


def _labelled(files_by_class: dict[str, list[str]], classes: tuple[str, ...]):
    """(class index, name) for every image, sorted by class then file name, so the order is stable."""
    return [(ci, name) for ci, c in enumerate(classes) for name in sorted(files_by_class[c])]


def _tree_listing(root: Path) -> dict[str, dict[str, list[str]]]:
    listing: dict[str, dict[str, list[str]]] = {}
    for split in SPLITS:
        split_dir = root / split
        if split_dir.is_dir():
            listing[split] = {
                d.name: [f.name for f in os.scandir(d) if f.is_file() and _is_image(f.name)]
                for d in os.scandir(split_dir) if d.is_dir() and not d.name.startswith(".")
            }
    return listing


def _image_tree(root: Path, split: str, kind: str) -> Source | None:
    if not (root / "train").is_dir() and not (root / "test").is_dir():
        return None
    listing = _tree_listing(root)
    classes = _classes_of(listing, str(root))
    items = _labelled(listing[split], classes)
    files = tuple(root / split / classes[ci] / name for ci, name in items)

    def read():
        labels = np.array([ci for ci, _ in items], dtype=np.int64)
        pairs = ((str(f), f.read_bytes) for f in files)  # full paths: errors name the file wherever it is
        return decode_images(pairs, len(files), f"decoding {root}/{split}"), labels, classes

    return Source(kind, root, files, read)


def _tar_prefix(names: list[str]) -> str:
    """'' when train/ sits at the top of the tarball, 'top/' when it sits in one top-level folder."""
    for name in names:
        parts = name.split("/")
        if len(parts) >= 4 and parts[1] in SPLITS:
            return parts[0] + "/"
        if len(parts) >= 3 and parts[0] in SPLITS:
            return ""
    return ""


def _image_tarball(path: Path, split: str, kind: str) -> Source | None:
    if not path.is_file():
        return None

    def read():
        blobs = _read_tar(path, _is_image)
        prefix = _tar_prefix(list(blobs))
        listing: dict[str, dict[str, list[str]]] = {}
        for name in blobs:
            parts = name[len(prefix):].split("/")
            if name.startswith(prefix) and len(parts) == 3 and parts[0] in SPLITS:
                listing.setdefault(parts[0], {}).setdefault(parts[1], []).append(name)
        classes = _classes_of(listing, str(path))
        items = _labelled(listing[split], classes)
        labels = np.array([ci for ci, _ in items], dtype=np.int64)
        pairs = ((f"{path}:{name}", (lambda n=name: blobs[n])) for _, name in items)
        return decode_images(pairs, len(items), f"decoding {path.name} {split}"), labels, classes

    return Source(kind, path, (path,), read)


# --- Fashion-MNIST IDX files -----------------------------------------------------------------------

_IDX_PREFIX = {"train": "train", "test": "t10k"}


def _idx_file(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def _idx_dir(folder: Path, split: str) -> Source | None:
    prefix = _IDX_PREFIX[split]
    img = _idx_file(folder, f"{prefix}-images-idx3-ubyte")
    lab = _idx_file(folder, f"{prefix}-labels-idx1-ubyte")
    if img is None and lab is None:
        return None
    if img is None or lab is None:
        have, lacking = (img, "labels") if img else (lab, "images")
        raise DatasetError(f"{folder} has {have.name} but not the {lacking} file of the {split} split "
                           f"({prefix}-{lacking}-idx{3 if lacking == 'images' else 1}-ubyte[.gz])")

    def read():
        images = read_idx(img.read_bytes(), str(img))
        labels = read_idx(lab.read_bytes(), str(lab)).astype(np.int64)
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise DatasetError(f"{img.name} {images.shape} and {lab.name} {labels.shape} do not pair up as "
                               f"(N, H, W) images with N labels")
        if labels.size and labels.max() >= len(FASHION_MNIST_CLASSES):
            raise DatasetError(f"{lab} holds label {labels.max()}, but Fashion-MNIST has 10 classes")
        return images[..., None], labels, FASHION_MNIST_CLASSES

    return Source("Fashion-MNIST IDX files", folder, (img, lab), read)


# --- candidates per dataset ------------------------------------------------------------------------

@dataclass(frozen=True)
class Candidate:
    where: Path
    what: str
    open: Callable[[Path, str], Source | None]


def candidates(name: str, root: Path) -> list[Candidate]:
    """Every place a dataset is looked for under ``root``, in order of preference."""
    if name == "cifar10":
        return [
            Candidate(root / "cifar-10-batches-py", "torchvision's extracted CIFAR-10 pickles", _cifar_pickle_dir),
            Candidate(root / "cifar-10-python.tar.gz", "the official CIFAR-10 python archive", _cifar_tarball),
            Candidate(root / "cifar10", "an image-folder tree (train/<class>/*, test/<class>/*)",
                      lambda p, s: _image_tree(p, s, "CIFAR-10 image-folder tree")),
            *[Candidate(root / f, "an image-folder tarball",
                        lambda p, s: _image_tarball(p, s, "CIFAR-10 image-folder tarball"))
              for f in ("cifar10-jpeg.tar.gz", "cifar10.tar.gz")],
        ]
    if name == "fashion-mnist":
        folders = [root / "fashion-mnist", root / "FashionMNIST" / "raw", root, DEBIAN_FASHION_MNIST]
        return [Candidate(f, "the four Fashion-MNIST IDX files (gzipped or not)", _idx_dir) for f in folders]
    if name.startswith("imagefolder:"):
        path = Path(name.split(":", 1)[1]).expanduser()
        if path.is_file() or path.name.endswith((".tar.gz", ".tgz", ".tar")):
            return [Candidate(path, "an image-folder tarball",
                              lambda p, s: _image_tarball(p, s, "image-folder tarball"))]
        return [Candidate(path, "an image-folder tree (train/<class>/*, test/<class>/*)",
                          lambda p, s: _image_tree(p, s, "image-folder tree"))]
    raise AssertionError(f"no file sources for {name}")  # names are checked by clorg.data.load_dataset


def locate(name: str, split: str, root: Path) -> tuple[Source | None, list[Candidate]]:
    """The first existing source of ``name``/``split`` under ``root``, and the candidates looked at."""
    looked = []
    for cand in candidates(name, root):
        source = cand.open(cand.where, split)
        if source is not None:
            return source, looked
        looked.append(cand)
    return None, looked


def not_found(name: str, split: str, looked: list[Candidate], download_note: str) -> DatasetNotFoundError:
    how = {
        "cifar10": ("download https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz (on any machine) and put it "
                    "in the data root, or put an image-folder copy there as cifar10/ or cifar10-jpeg.tar.gz"),
        "fashion-mnist": ("put the four IDX files (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
                          "t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz) in <data root>/fashion-mnist/, "
                          "or on Debian: apt-get install dataset-fashion-mnist"),
    }.get(name, "create train/<class>/ and test/<class>/ folders of PNG/JPEG images there")
    how += ". The data root is the `root` argument, else $CLORG_DATA, else data/ in the project."
    lines = "\n  - ".join([f"{c.where}  ({c.what}): not found" for c in looked] + [download_note])
    return DatasetNotFoundError(
        f"dataset {name!r} ({split}) was not found. Looked in:\n  - {lines}\nTo provide it: {how}",
        places=[str(c.where) for c in looked], download=download_note, provide=how)
