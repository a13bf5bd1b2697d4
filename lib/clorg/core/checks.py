"""Input checks at the package's boundaries, one style everywhere: each function takes the value and
the name the caller knows it by, returns it in the form the code needs, and raises ``ValueError``
with a message that names the argument, what was expected and what was given.

Arrays may come as numpy arrays, array-likes or torch tensors; they come back as torch tensors on
their own device (numpy input: on the CPU, without a copy where possible).
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import torch


def as_tensor(a, name: str) -> torch.Tensor:
    """``a`` as a tensor: a tensor is detached, numeric array-likes are viewed (copied when read-only)."""
    if isinstance(a, torch.Tensor):
        return a.detach()
    arr = np.asarray(a)
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be numeric, got dtype {arr.dtype}")
    if not arr.flags.writeable:  # torch warns on read-only memory; a copy is cheap next to any metric
        arr = arr.copy()
    return torch.from_numpy(np.ascontiguousarray(arr))


def features(X, name: str = "X", *, min_rows: int = 1, dim: int | None = None,
             dtype: torch.dtype | None = None) -> torch.Tensor:
    """``X`` as a finite, real, 2-D floating tensor (n_samples, n_features).

    Without ``dtype``: float16/bfloat16 become float32 (too coarse for long sums) and integers float64
    (exact); other floats are kept. ``dim``: the number of columns required (e.g. the training set's)."""
    X = as_tensor(X, name)
    if X.dim() != 2:
        raise ValueError(f"{name} must be a 2-D array (n_samples, n_features), got shape {tuple(X.shape)}")
    if X.shape[0] < min_rows or X.shape[1] < 1:
        raise ValueError(f"{name} needs at least {min_rows} row(s) and 1 column, got shape {tuple(X.shape)}")
    if X.dtype == torch.bool or X.is_complex():
        raise ValueError(f"{name} must hold real numbers, got dtype {X.dtype}")
    if dtype is not None:
        X = X.to(dtype)
    elif not X.is_floating_point():
        X = X.to(torch.float64)
    elif X.dtype in (torch.float16, torch.bfloat16):
        X = X.to(torch.float32)
    finite = torch.isfinite(X).all(dim=1)
    if not bool(finite.all()):
        bad = int((~finite).nonzero()[0, 0])
        raise ValueError(f"{name} contains NaN or infinite values (first bad row: {bad})")
    if dim is not None and X.shape[1] != dim:
        raise ValueError(f"{name} has {X.shape[1]} features but the training features have {dim}")
    return X


def labels(y, n: int, name: str = "y", *, num_classes: int | None = None) -> torch.Tensor:
    """``y`` as int64 class indices, one per row of an n-row feature matrix, in [0, num_classes)
    (``num_classes=None``: any value >= 0)."""
    y = as_tensor(y, name)
    if y.dim() != 1:
        raise ValueError(f"{name} must be 1-D (one label per row), got shape {tuple(y.shape)}")
    if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise ValueError(f"{name} must hold integer class labels, got dtype {y.dtype}")
    if len(y) != n:
        raise ValueError(f"{name} has {len(y)} labels but its features have {n} rows; they must match")
    y = y.to(torch.int64)
    if len(y) and (int(y.min()) < 0 or (num_classes is not None and int(y.max()) >= num_classes)):
        bound = f"[0, {num_classes})" if num_classes is not None else ">= 0"
        raise ValueError(f"{name} must hold class indices in {bound}, got values in [{int(y.min())}, {int(y.max())}]")
    return y


def label_codes(y, n: int, name: str = "y", *, min_classes: int = 2,
                device: torch.device | None = None) -> tuple[torch.Tensor, int]:
    """Any integer labels, one per row, as (codes 0..C-1 in int64 on ``device``, C); needs ``min_classes``."""
    y = as_tensor(y, name)
    if y.dim() != 1:
        raise ValueError(f"{name} must be 1-D (one label per row of X), got shape {tuple(y.shape)}")
    if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise ValueError(f"{name} must hold integer class labels, got dtype {y.dtype}")
    if len(y) != n:
        raise ValueError(f"X has {n} rows but {name} has {len(y)} labels; they must match")
    classes, codes = torch.unique(y.to(device or y.device, torch.int64), return_inverse=True)
    if len(classes) < min_classes:
        raise ValueError(f"{name} must contain at least {min_classes} classes, got {len(classes)}")
    return codes.to(torch.int64), len(classes)


def unit_rows(X: torch.Tensor, name: str = "X") -> torch.Tensor:
    """Rows scaled to unit L2 norm (for cosine similarities); an all-zero row has no direction."""
    norms = X.norm(dim=1, keepdim=True)
    if bool((norms == 0).any()):
        bad = int((norms[:, 0] == 0).nonzero()[0, 0])
        raise ValueError(f"{name} has an all-zero row ({bad}); its cosine similarity is undefined")
    return X / norms


def _number(value, name: str, integer: bool, allow_none: bool, test, what: str):
    if value is None and allow_none:
        return None
    kind = (numbers.Integral, np.integer) if integer else (numbers.Real, np.integer, np.floating)
    if isinstance(value, bool) or not isinstance(value, kind) or not math.isfinite(float(value)) or not test(value):
        raise ValueError(f"{name} must be {what}{' or None' if allow_none else ''}, got {value!r}")
    return int(value) if integer else float(value)


def positive_int(value, name: str, *, allow_none: bool = False) -> int | None:
    return _number(value, name, True, allow_none, lambda v: v > 0, "a positive integer")


def positive_number(value, name: str, *, allow_none: bool = False) -> float | None:
    return _number(value, name, False, allow_none, lambda v: v > 0, "a positive number")


def fraction(value, name: str, *, low_open: bool = False, high_open: bool = True) -> float:
    """A number in [0, 1) (or the interval the flags say)."""
    lo, hi = ("(" if low_open else "["), (")" if high_open else "]")

    def inside(v):
        return (v > 0 if low_open else v >= 0) and (v < 1 if high_open else v <= 1)

    return _number(value, name, False, False, inside, f"in {lo}0, 1{hi}")
