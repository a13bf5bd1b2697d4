"""The in-memory dataset and the errors of the data layer."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

SPLITS = ("train", "test")


class DatasetError(ValueError):
    """Data that exists but cannot be used as it is (corrupt file, empty class, mismatched splits)."""


class DatasetNotFoundError(FileNotFoundError):
    """No source of a dataset was found; the message lists every place looked and how to provide it.

    ``places`` (the paths looked at), ``download`` (what became of the download) and ``provide`` (how to
    provide the dataset) hold the same facts for callers that summarise them, such as the book's intro.
    """

    def __init__(self, message: str, places: list[str] | None = None, download: str = "", provide: str = ""):
        super().__init__(message)
        self.places = places or []
        self.download = download
        self.provide = provide


@dataclass(frozen=True, eq=False)
class Dataset:
    """One split of a labelled image dataset, fully decoded.

    ``images`` is uint8 (N, H, W, C) with C = 1 (grayscale) or 3 (RGB); ``labels`` is int64 (N,)
    indexing ``classes``. ``source`` says where the pixels came from and ``checksum`` is the sha256
    of that source, so every result can name the exact data that produced it.
    """

    name: str
    split: str
    images: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...]
    source: str
    checksum: str

    def __post_init__(self):
        if self.images.dtype != np.uint8 or self.images.ndim != 4:
            raise DatasetError(f"images must be uint8 (N, H, W, C), got {self.images.dtype} {self.images.shape}")
        if self.labels.dtype != np.int64 or self.labels.shape != (len(self.images),):
            raise DatasetError(f"labels must be int64 of shape ({len(self.images)},), got "
                               f"{self.labels.dtype} {self.labels.shape}")

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def class_counts(self) -> np.ndarray:
        return np.bincount(self.labels, minlength=len(self.classes))

    def subset(self, indices: np.ndarray) -> Dataset:
        """The same split restricted to ``indices`` (in the given order)."""
        indices = np.asarray(indices)
        return replace(self, images=self.images[indices], labels=self.labels[indices])
