"""Datasets as uint8 arrays, from local files first, offline-capable, cached.

    >>> ds = load_dataset("cifar10", "train")      # Dataset: images (N,H,W,C) uint8, labels int64, classes
    >>> pick = choose_dataset(["cifar10", "fashion-mnist", "digits"])   # first that loads, with reasons

Names: ``cifar10``, ``fashion-mnist``, ``digits`` (scikit-learn's embedded 8x8 digits, always
available) and ``imagefolder:<path>`` (a tree or tarball of ``train/<class>/*`` and
``test/<class>/*`` PNG/JPEG images). The data root is the ``root`` argument, else ``$CLORG_DATA``,
else ``data/`` at the project root; the decoded-array cache is ``cache_dir``, else ``$CLORG_CACHE``,
else ``~/.cache/clorg``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..core import paths
from . import cache, download as _download
from .base import SPLITS, Dataset, DatasetError, DatasetNotFoundError
from .sources import locate, not_found
from .subsets import stratified_subset

__all__ = [
    "DATASET_NAMES", "Dataset", "DatasetError", "DatasetNotFoundError", "DatasetChoice",
    "load_dataset", "choose_dataset", "choose_profile_dataset", "stratified_subset", "default_root",
]

DATASET_NAMES = ("cifar10", "fashion-mnist", "digits", "imagefolder:<path>")
_DOWNLOADABLE = ("cifar10", "fashion-mnist")


def default_root() -> Path:
    return paths.data_root()


def _check_name(name: str) -> None:
    if name in DATASET_NAMES[:3]:
        return
    if name.startswith("imagefolder:") and name != "imagefolder:":
        return
    raise ValueError(f"unknown dataset {name!r}; valid names: {', '.join(DATASET_NAMES)}")


def _digits(split: str) -> Dataset:
    """scikit-learn's 1,797 8x8 digits, split 80/20 per class with a fixed seed (the set has no split)."""
    from sklearn import __version__ as sk_version
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.rint(bunch.images * (255 / 16)).astype(np.uint8)[..., None]  # values are 0..16
    labels = bunch.target.astype(np.int64)
    test = np.zeros(len(labels), dtype=bool)
    test[stratified_subset(labels, fraction=0.2, seed=0)] = True
    keep = test if split == "test" else ~test
    digest = hashlib.sha256(images.tobytes() + labels.tobytes()).hexdigest()
    return Dataset("digits", split, images[keep], labels[keep], tuple(str(d) for d in range(10)),
                   f"scikit-learn {sk_version} embedded digits", digest)


def load_dataset(name: str, split: str, root: str | Path | None = None, *, download: bool | None = None,
                 cache_dir: str | Path | None = None) -> Dataset:
    """Load one split of a dataset, decoding it once and serving later loads from the cache.

    ``download=None`` allows torchvision's download unless ``$CLORG_OFFLINE`` is set; a download
    is tried only when no local source exists, and a failed one leaves the data root unchanged.
    """
    _check_name(name)
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid splits: {list(SPLITS)}")
    if name == "digits":
        return _digits(split)
    root = Path(root).expanduser() if root is not None else default_root()
    cache_dir = Path(cache_dir).expanduser() if cache_dir is not None else paths.cache_root()

    source, looked = locate(name, split, root)
    if source is None and name in _DOWNLOADABLE:
        if not _download.downloads_allowed(download):
            note = "download: not tried (offline: $CLORG_OFFLINE is set or download=False)"
        else:
            try:
                _download.download(name, root)
                source, looked = locate(name, split, root)
                note = "download: succeeded"
            except Exception as exc:  # no network, HTTP error, md5 mismatch...
                note = f"download from torchvision failed: {type(exc).__name__}: {exc}"
        if source is None:
            raise not_found(name, split, looked, note)
    elif source is None:
        raise not_found(name, split, looked, "download: not available for this dataset")

    hit = cache.read_entry(cache_dir, name, split, source)
    if hit is not None:
        images, labels, classes, digest = hit
    else:
        images, labels, classes = source.read()
        digest = cache.checksum(source)
        try:
            cache.write_entry(cache_dir, name, split, source, images, labels, classes, digest)
        except OSError as exc:  # a full disk costs the cache, not the data: the next load decodes again
            print(f"data cache: not written ({exc}); continuing with the decoded data", flush=True)
    return Dataset(name, split, images, labels, classes, source.describe(), digest)


@dataclass
class DatasetChoice:
    """The dataset a profile ended up with, and why each preferred one was passed over."""

    name: str
    train: Dataset
    test: Dataset
    skipped: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def describe(self) -> str:
        shape = "x".join(map(str, self.train.images.shape[1:]))
        lines = [f"Dataset used: {self.name}",
                 f"  source: {self.train.source}",
                 f"  sha256: {self.train.checksum}",
                 f"  {len(self.train):,} train / {len(self.test):,} test images of {shape}, "
                 f"{len(self.train.classes)} classes"]
        lines += [f"Not used: {name}, because {reason}" for name, reason in self.skipped]
        lines += [f"Note: {note}" for note in self.notes]
        return "\n".join(lines)

    def summary(self) -> dict:
        """The same facts as plain data, for build records and results files."""
        return {"name": self.name, "source": self.train.source, "sha256": self.train.checksum,
                "train_images": len(self.train), "test_images": len(self.test),
                "image_shape": list(self.train.images.shape[1:]), "classes": list(self.train.classes),
                "skipped": [{"name": n, "reason": r} for n, r in self.skipped], "notes": self.notes}


def _cap(ds: Dataset, per_class: int | None, seed: int, notes: list[str]) -> Dataset:
    if per_class is None:
        return ds
    smallest = int(ds.class_counts.min())
    if per_class > smallest:
        notes.append(f"{ds.split}_per_class={per_class} capped at {smallest}, the smallest class of "
                     f"{ds.name} {ds.split}.")
        per_class = smallest
    return ds.subset(stratified_subset(ds.labels, per_class=per_class, seed=seed))


def choose_dataset(names: list[str], root: str | Path | None = None, *, train_per_class: int | None = None,
                   test_per_class: int | None = None, seed: int = 0, download: bool | None = None,
                   cache_dir: str | Path | None = None) -> DatasetChoice:
    """The first of ``names`` whose train and test splits both load, subsetted per class.

    Only a *missing* dataset passes on to the next name; data that exists but is broken raises,
    so a damaged download is fixed rather than silently replaced by another dataset.
    """
    for name in names:
        _check_name(name)
    skipped, provide = [], {}
    for name in names:
        try:
            train = load_dataset(name, "train", root, download=download, cache_dir=cache_dir)
            test = load_dataset(name, "test", root, download=download, cache_dir=cache_dir)
        except DatasetNotFoundError as exc:
            skipped.append((name, f"it was not found in {', '.join(exc.places)} ({exc.download})"))
            provide[name] = exc.provide
            continue
        notes: list[str] = []
        return DatasetChoice(name, _cap(train, train_per_class, seed, notes),
                             _cap(test, test_per_class, seed, notes), skipped, notes)
    raise DatasetNotFoundError("none of the datasets " + ", ".join(names) + " could be loaded:\n"
                               + "\n".join(f"- {n}: {r}. To provide it: {provide[n]}" for n, r in skipped))



def choose_profile_dataset(cfg: dict, root: str | Path | None = None, **kwargs) -> DatasetChoice:
    """:func:`choose_dataset` with the ``data`` section of a validated profile (:mod:`clorg.core.config`)."""
    from ..core.config import dataset_candidates

    data = cfg["data"]
    return choose_dataset(dataset_candidates(cfg), root, train_per_class=data["train_per_class"],
                          test_per_class=data["test_per_class"], seed=data["subset_seed"], **kwargs)
