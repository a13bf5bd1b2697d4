"""Cache of decoded arrays, keyed by the source's checksum.

Decoding 60,000 JPEGs takes about 15 s; loading the cached ``.npy`` takes a fraction of a second.
Each cache entry is a folder with ``images.npy``, ``labels.npy`` and ``manifest.json``. The manifest
is written last and removed first, so an entry is either complete or ignored. It records the source's
sha256 and a cheap fingerprint (path, size, mtime of every file): when the fingerprint still matches,
the source is unchanged and nothing is re-hashed; when it does not, the content hash decides, so a
touched-but-identical file costs one hash and a changed one rebuilds the entry.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from .sources import Source

FORMAT_VERSION = 1


def default_cache_dir() -> Path:
    env = os.environ.get("CLORG_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "clorg"


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


def _atomic_write(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_entry(cache_dir: Path, name: str, split: str, source: Source):
    """(images, labels, classes, checksum) from the cache, or None when absent or stale."""
    entry = _entry_dir(cache_dir, name, split, source)
    try:
        manifest = json.loads((entry / "manifest.json").read_text())
    except (OSError, ValueError):
        return None
    if manifest.get("format") != FORMAT_VERSION:
        return None
    if manifest.get("fingerprint") != fingerprint(source):
        digest = checksum(source)
        if digest != manifest.get("checksum"):
            return None
        manifest["fingerprint"] = fingerprint(source)  # same bytes, new mtime: remember it
        _atomic_write(entry / "manifest.json", lambda fh: fh.write(json.dumps(manifest, indent=1).encode()))
    try:
        images = np.load(entry / "images.npy", allow_pickle=False)
        labels = np.load(entry / "labels.npy", allow_pickle=False)
    except (OSError, ValueError):
        return None
    if images.shape != tuple(manifest["images_shape"]) or labels.shape != (images.shape[0],):
        return None
    return images, labels, tuple(manifest["classes"]), manifest["checksum"]


def write_entry(cache_dir: Path, name: str, split: str, source: Source, images: np.ndarray,
                labels: np.ndarray, classes: tuple[str, ...], digest: str) -> None:
    entry = _entry_dir(cache_dir, name, split, source)
    entry.mkdir(parents=True, exist_ok=True)
    (entry / "manifest.json").unlink(missing_ok=True)  # invalidate first: arrays and manifest change together
    _atomic_write(entry / "images.npy", lambda fh: np.save(fh, images))
    _atomic_write(entry / "labels.npy", lambda fh: np.save(fh, labels))
    manifest = {
        "format": FORMAT_VERSION, "dataset": name, "split": split, "source": source.describe(),
        "fingerprint": fingerprint(source), "checksum": digest, "classes": list(classes),
        "images_shape": list(images.shape),
    }
    _atomic_write(entry / "manifest.json", lambda fh: fh.write(json.dumps(manifest, indent=1).encode()))
