"""Checkpoints: written atomically, read without executing anything from the file.

A checkpoint is a dict of tensors, numbers, strings and nested dicts/lists (model, optimizer and RNG
states), so ``torch.load(..., weights_only=True)`` reads it: loading a file never runs code from it.
It is written through :func:`clorg.core.atomic.write_atomic` (a unique temporary file in the same
folder, synced, then renamed over the old one), so a run killed at any moment, or a disk that fills
up, leaves either the previous checkpoint or the new one, never half.

Every way a checkpoint can fail to serve is one error, :class:`UnreadableCheckpoint`, naming the file
and the fix: bytes that do not load (cut short, damaged), a pickled object that is not loaded, a file
that is not one of ours (a dict without the keys asked for, or no dict at all) and states that do not
fit the model they are restored into (:func:`restore`). Running out of memory is not the file's fault:
it passes through unchanged, so nobody is told to delete a good checkpoint.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import torch

from ..core.atomic import write_atomic

_FIX = "Delete it to start that run afresh"
# not the file's fault: a message that said "delete it" would lose a good checkpoint
_NOT_THE_FILE = (MemoryError, torch.OutOfMemoryError)


class UnreadableCheckpoint(RuntimeError):
    """A checkpoint file that cannot (or must not) be loaded; the message names it and the fix."""


def save(obj, path: Path) -> None:
    write_atomic(path, lambda fh: torch.save(obj, fh))


def load(path: Path, map_location="cpu", keys: tuple[str, ...] = ()) -> dict:
    """The checkpoint at ``path``, a dict holding at least ``keys``."""
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except _NOT_THE_FILE:
        raise
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL (\S+)", str(exc))
        if found is None:
            raise UnreadableCheckpoint(f"cannot read checkpoint {path}: {exc}. {_FIX}") from exc
        # torch's own message goes on to suggest weights_only=False, which would run the object's code
        raise UnreadableCheckpoint(f"cannot read checkpoint {path}: it holds the Python object {found.group(1)}, not "
                                   f"tensors and plain values, and is not loaded, since loading it could run code "
                                   f"from the file. {_FIX}") from exc
    except Exception as exc:  # truncated zip, damaged bytes
        raise UnreadableCheckpoint(f"cannot read checkpoint {path}: {exc}. {_FIX}") from exc
    if not isinstance(state, dict):
        raise UnreadableCheckpoint(f"cannot read checkpoint {path}: it holds a {type(state).__name__}, not the dict "
                                   f"of states a run writes; it is not a checkpoint of this project. {_FIX}")
    missing = [k for k in keys if k not in state]
    if missing:
        raise UnreadableCheckpoint(f"cannot read checkpoint {path}: it lacks {missing} (it has {sorted(state)[:8]}); "
                                   f"it is not a checkpoint of this project, or of another kind. {_FIX}")
    return state


def restore(target, state, path: Path, what: str) -> None:
    """``target.load_state_dict(state)`` (a module or an optimizer), where a state that does not fit (other
    shapes or names: another encoder, width or method) is an :class:`UnreadableCheckpoint` naming ``path``."""
    try:
        target.load_state_dict(state)
    except _NOT_THE_FILE:
        raise
    except (RuntimeError, KeyError, ValueError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UnreadableCheckpoint(f"checkpoint {path} does not fit this run's {what}: {first}. It was written by "
                                   f"another configuration or version. {_FIX}") from exc
