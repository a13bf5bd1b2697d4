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
it passes through unchanged, so nobody is told to delete a good checkpoint. The fix a message gives is the
caller's where deleting the file is not it (an encoder snapshot, committed weights).
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import torch

from ..core.atomic import write_atomic

_FIX = "Delete it to start that run afresh"
# not the file's fault: a message that said "delete it" (or "fetch it again") would blame a good file
NOT_THE_FILE = (MemoryError, torch.OutOfMemoryError)


class UnreadableCheckpoint(RuntimeError):
    """A checkpoint file that cannot (or must not) be loaded; the message names it and the fix."""


def save(obj, path: Path) -> None:
    write_atomic(path, lambda fh: torch.save(obj, fh))


def load(path: Path, map_location="cpu", keys: tuple[str, ...] = (), fix: str = _FIX) -> dict:
    """The checkpoint at ``path``, a dict holding at least ``keys``; ``fix`` ends an error's message."""
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except NOT_THE_FILE:
        raise
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL (\S+)", str(exc))
        if found is None:
            raise UnreadableCheckpoint(f"cannot read checkpoint {path}: {exc}. {fix}") from exc
        # torch's own message goes on to suggest weights_only=False, which would run the object's code
        raise UnreadableCheckpoint(f"cannot read checkpoint {path}: it holds the Python object {found.group(1)}, not "
                                   f"tensors and plain values, and is not loaded, since loading it could run code "
                                   f"from the file. {fix}") from exc
    except Exception as exc:  # truncated zip, damaged bytes
        raise UnreadableCheckpoint(f"cannot read checkpoint {path}: {exc}. {fix}") from exc
    if not isinstance(state, dict):
        raise UnreadableCheckpoint(f"cannot read checkpoint {path}: it holds a {type(state).__name__}, not the dict "
                                   f"of states a run writes; it is not a checkpoint of this project. {fix}")
    missing = [k for k in keys if k not in state]
    if missing:
        has = sorted(map(str, state))[:8]  # a foreign dict's keys need not be strings, nor comparable
        raise UnreadableCheckpoint(f"cannot read checkpoint {path}: it lacks {missing} (it has {has}); "
                                   f"it is not a checkpoint of this project, or of another kind. {fix}")
    return state


def restore(target, state, path: Path, what: str, fix: str = _FIX) -> None:
    """``target.load_state_dict(state)`` (a module or an optimizer), where a state that does not fit (other
    shapes or names: another encoder, width or method) is an :class:`UnreadableCheckpoint` naming ``path``
    and torch's first reason (its message lists every key)."""
    try:
        target.load_state_dict(state)
    except NOT_THE_FILE:
        raise
    except (RuntimeError, KeyError, ValueError, TypeError, AttributeError) as exc:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()] or [type(exc).__name__]
        reason = " ".join(lines[:2])  # "Error(s) in loading state_dict for X:" and its first detail
        reason = reason if len(reason) <= 300 else reason[:297] + "..."
        raise UnreadableCheckpoint(f"checkpoint {path} does not fit this run's {what} ({reason}): it was written "
                                   f"by another configuration or version. {fix}") from exc
