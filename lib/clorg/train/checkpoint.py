"""Checkpoints: written atomically, read without executing anything from the file.

A checkpoint is a dict of tensors, numbers, strings and nested dicts/lists (model, optimizer and RNG
states), so ``torch.load(..., weights_only=True)`` reads it: loading a file never runs code from it.
It is written to a temporary file in the same folder, flushed to disk, then renamed over the old
one, so a run killed at any moment leaves either the previous checkpoint or the new one, never half.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch


def save_atomic(obj, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load(path: Path, map_location="cpu") -> dict:
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # unpickling errors, truncated zip, foreign objects
        raise RuntimeError(f"cannot read checkpoint {path}: {exc}. Delete it to start that run afresh") from exc
