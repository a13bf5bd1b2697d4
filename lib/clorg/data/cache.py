"""Cache of decoded arrays, keyed by the source's checksum, verified on every load.

Decoding 60,000 JPEGs takes about 15 s; loading the cached ``.npy`` takes a fraction of a second.
Each cache entry is a folder with ``images.npy``, ``labels.npy`` and ``manifest.json``. The manifest
is written last and removed first, so an entry is either complete or ignored. It records

- the source's sha256 and a cheap fingerprint (path, size, mtime of every file): when the fingerprint
  still matches, the source is unchanged and nothing is re-hashed; when it does not, the content hash
  decides, so a touched-but-identical file costs one hash and a changed one rebuilds the entry;
- the sha256 of the cached arrays' bytes, checked on every load: a cache file whose bytes changed
  after it was written (a bad disk, a stray write, another program) is never served. The entry is
  rebuilt from the source, with a one-line message. The check costs ~0.08 s for the 150 MB of
  CIFAR-10's training images (bench/data.py measures it).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from ..core.atomic import write_atomic, write_json
from .sources import Source

FORMAT_VERSION = 2  # 2: the manifest holds the arrays' sha256


def fingerprint(source: Source) -> str:
    h = hashlib.sha256()
    for f in source.files:
        st = f.stat()
        h.update(f"{f}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def checksum(source: Source) -> str:
    """sha256 of the file, or of a ``sha256sum``-style manifest of all files for a multi-file source."""
    if len(source.files) == 1:
        return _sha256_file(source.files[0])
    base = source.path if source.path.is_dir() else source.path.parent
    lines = "".join(f"{_sha256_file(f)}  {f.relative_to(base)}\n" for f in source.files)
    return hashlib.sha256(lines.encode()).hexdigest()


def _entry_dir(cache_dir: Path, name: str, split: str, source: Source) -> Path:
    # one entry per (dataset, source location, split): switching sources never clobbers another's cache
    where = hashlib.sha1(str(source.path.resolve()).encode()).hexdigest()[:12]
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in name)
    return Path(cache_dir) / f"{safe}-{where}" / split


def arrays_sha256(images: np.ndarray, labels: np.ndarray) -> str:
    """sha256 over the bytes of both arrays (C order), with their shapes and dtypes."""
    h = hashlib.sha256(f"{images.dtype} {images.shape} {labels.dtype} {labels.shape}".encode())
    for a in (images, labels):
        h.update(memoryview(np.ascontiguousarray(a)).cast("B"))
    return h.hexdigest()


def _rebuild(entry: Path, why: str) -> None:
    print(f"data cache: {entry} {why}; rebuilding it from the source", flush=True)


def read_entry(cache_dir: Path, name: str, split: str, source: Source):
    """(images, labels, classes, checksum) from the cache, or None when absent, stale or damaged (then
    the caller decodes the source again and rewrites the entry)."""
    entry = _entry_dir(cache_dir, name, split, source)
    path = entry / "manifest.json"
    if not path.exists():
        return None
    try:
        manifest = json.loads(path.read_text())
        if isinstance(manifest, dict) and manifest.get("format") != FORMAT_VERSION:
            return None  # written by an older version of this code: rebuilt without fuss
        recorded = manifest["arrays_sha256"], tuple(manifest["images_shape"]), manifest["checksum"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        _rebuild(entry, f"has an unreadable manifest ({type(exc).__name__})")
        return None
    if manifest.get("fingerprint") != fingerprint(source):
        digest = checksum(source)
        if digest != manifest.get("checksum"):
            return None  # the source changed: a new entry replaces this one
        manifest["fingerprint"] = fingerprint(source)  # same bytes, new mtime: remember it
        try:
            write_json(path, manifest)
        except OSError:
            pass  # a read-only or full cache still serves its verified arrays; the check runs again next time
    try:
        images = np.load(entry / "images.npy", allow_pickle=False)
        labels = np.load(entry / "labels.npy", allow_pickle=False)
    except (OSError, ValueError) as exc:
        _rebuild(entry, f"has an unreadable array file ({type(exc).__name__}: {exc})")
        return None
    if images.shape != recorded[1] or labels.shape != (images.shape[0],) \
            or arrays_sha256(images, labels) != recorded[0]:
        _rebuild(entry, "holds arrays whose bytes changed since they were written (checksum mismatch)")
        return None
    return images, labels, tuple(manifest["classes"]), recorded[2]


def write_entry(cache_dir: Path, name: str, split: str, source: Source, images: np.ndarray,
                labels: np.ndarray, classes: tuple[str, ...], digest: str) -> None:
    entry = _entry_dir(cache_dir, name, split, source)
    entry.mkdir(parents=True, exist_ok=True)
    (entry / "manifest.json").unlink(missing_ok=True)  # invalidate first: arrays and manifest change together
    write_atomic(entry / "images.npy", lambda fh: np.save(fh, images))
    write_atomic(entry / "labels.npy", lambda fh: np.save(fh, labels))
    manifest = {
        "format": FORMAT_VERSION, "dataset": name, "split": split, "source": source.describe(),
        "fingerprint": fingerprint(source), "checksum": digest, "classes": list(classes),
        "images_shape": list(images.shape), "arrays_sha256": arrays_sha256(images, labels),
    }
    write_json(entry / "manifest.json", manifest)
