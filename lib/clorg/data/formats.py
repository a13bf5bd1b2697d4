"""Decoders of the on-disk formats: CIFAR pickles, IDX files and PNG/JPEG images.

Each takes bytes or file objects and returns arrays; none of them knows where files live
(that is :mod:`clorg.data.sources`).
"""

from __future__ import annotations

import gzip
import io
import pickle
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable

import numpy as np
from PIL import Image
from tqdm import tqdm

from .base import DatasetError

# --- CIFAR-10 python pickles -----------------------------------------------------------------------


class _CifarUnpickler(pickle.Unpickler):
    """Unpickler that only rebuilds numpy arrays: loading a data file never runs code from it."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"), ("numpy", "dtype"),
    }

    def find_class(self, module, name):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a data file")


def read_cifar_batch(data: bytes, what: str) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 python batch (``data_batch_N`` or ``test_batch``) -> uint8 (N,32,32,3), int64 (N,)."""
    try:
        batch = _CifarUnpickler(io.BytesIO(data), encoding="bytes").load()
        pixels = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except Exception as exc:  # pickle raises many types on truncated or foreign data
        raise DatasetError(f"{what} is not a readable CIFAR-10 batch ({type(exc).__name__}: {exc}); "
                           f"delete it and provide the data again") from exc
    if pixels.ndim != 2 or pixels.shape[1] != 3 * 32 * 32 or len(labels) != len(pixels):
        raise DatasetError(f"{what} has data of shape {pixels.shape} and {len(labels)} labels; "
                           f"expected (N, 3072) and N labels")
    return pixels.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy(), labels


def read_cifar_meta(data: bytes, what: str) -> tuple[str, ...]:
    try:
        meta = _CifarUnpickler(io.BytesIO(data), encoding="bytes").load()
        return tuple(n.decode() for n in meta[b"label_names"])
    except Exception as exc:
        raise DatasetError(f"{what} is not a readable CIFAR-10 batches.meta ({type(exc).__name__}: {exc}); "
                           f"delete it and provide the data again") from exc


# --- IDX (MNIST / Fashion-MNIST) -------------------------------------------------------------------

_IDX_UBYTE = 0x08


def read_idx(data: bytes, what: str) -> np.ndarray:
    """An IDX file of unsigned bytes (gzipped or not) -> uint8 array of the shape in its header."""
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise DatasetError(f"{what} is a damaged gzip file ({exc}); delete it and provide it again") from exc
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != _IDX_UBYTE:
        raise DatasetError(f"{what} is not an IDX file of unsigned bytes (bad magic number {data[:4].hex()})")
    ndim = data[3]
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(shape))
    if len(data) != expected:
        raise DatasetError(f"{what} holds {len(data)} bytes but its header {shape} needs {expected}; "
                           f"the file is truncated or damaged")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape).copy()


# --- PNG / JPEG image folders ----------------------------------------------------------------------

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def _decode_one(data: bytes, what: str) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()  # forces the full decode, so a truncated file fails here and not later
            if img.mode not in ("L", "RGB"):
                img = img.convert("RGB")
            return np.asarray(img, dtype=np.uint8)
    except Exception as exc:  # PIL raises OSError, SyntaxError, ValueError... on bad files
        raise DatasetError(f"cannot decode image {what}: {exc}. Replace or delete that file") from exc


def decode_images(items: Iterable[tuple[str, Callable[[], bytes]]], count: int, desc: str) -> np.ndarray:
    """Decode ``(name, read_bytes)`` pairs into one uint8 (N, H, W, C) array.

    All images must share one size. Grayscale images stay 1-channel unless any image is in colour,
    in which case all become RGB. Reading is sequential (a tarball can only be read in order);
    decoding runs on a thread pool, since Pillow releases the GIL while it decodes.
    """
    names, arrays = [], []

    def decode(pair):
        name, data = pair
        return _decode_one(data, name)

    def read_all():
        for name, read in items:
            names.append(name)
            yield name, read()

    with ThreadPoolExecutor(max_workers=4) as pool:
        for arr in tqdm(pool.map(decode, read_all()), total=count, desc=desc, unit="img",
                        disable=count < 5000, mininterval=1.0):
            arrays.append(arr)
    if not arrays:
        raise DatasetError(f"{desc}: no images to decode")
    sizes = {a.shape[:2] for a in arrays}
    if len(sizes) > 1:
        first = arrays[0].shape[:2]
        odd = next(i for i, a in enumerate(arrays) if a.shape[:2] != first)
        raise DatasetError(f"images differ in size: {names[0]} is {first[1]}x{first[0]} but {names[odd]} is "
                           f"{arrays[odd].shape[1]}x{arrays[odd].shape[0]} (width x height); "
                           f"resize them all to one size first")
    colour = any(a.ndim == 3 for a in arrays)
    height, width = arrays[0].shape[:2]
    out = np.empty((len(arrays), height, width, 3 if colour else 1), dtype=np.uint8)
    for i, a in enumerate(arrays):
        out[i] = a if a.ndim == 3 else a[..., None]  # broadcasting turns gray into RGB when needed
    return out
