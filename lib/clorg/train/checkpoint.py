"""Checkpoints: written atomically, read without executing anything from the file.

A checkpoint is a dict of tensors, numbers, strings and nested dicts/lists (model, optimizer and RNG
states), so ``torch.load(..., weights_only=True)`` reads it: loading a file never runs code from it.
It is written through :func:`clorg.core.atomic.write_atomic` (a unique temporary file in the same
folder, synced, then renamed over the old one), so a run killed at any moment, or a disk that fills
up, leaves either the previous checkpoint or the new one, never half.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import torch

from ..core.atomic import write_atomic


class UnreadableCheckpoint(RuntimeError):
    """A checkpoint file that cannot (or must not) be loaded; the message names it and the fix."""


def save(obj, path: Path) -> None:
    write_atomic(path, lambda fh: torch.save(obj, fh))


def load(path: Path, map_location="cpu") -> dict:
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL (\S+)", str(exc))
        if found is None:
            raise UnreadableCheckpoint(f"cannot read checkpoint {path}: {exc}. Delete it to start that run afresh") from exc
        # torch's own message goes on to suggest weights_only=False, which would run the object's code
        raise UnreadableCheckpoint(f"cannot read checkpoint {path}: it holds the Python object {found.group(1)}, not "
                           f"tensors and plain values, and is not loaded, since loading it could run code "
                           f"from the file. Delete it to start that run afresh") from exc
    except Exception as exc:  # truncated zip, damaged bytes
        raise UnreadableCheckpoint(f"cannot read checkpoint {path}: {exc}. Delete it to start that run afresh") from exc
