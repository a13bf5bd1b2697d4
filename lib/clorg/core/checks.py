"""Input checks at the package's boundaries, one vocabulary everywhere (the profile schema, the metrics,
the augmentations, the heads, the graphs and the images): each check takes the value and the name the
caller knows it by, returns it in the form the code needs, and raises ``ValueError`` with a message that
names the argument, what was expected and what was given. The rules (:class:`Rule`: what a value
must be) are also what :mod:`clorg.core.config` collects for every key of a profile.

Arrays may come as numpy arrays, array-likes or torch tensors; they come back as torch tensors on
their own device (numpy input: on the CPU, without a copy where possible).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable

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


def _integer_vector(y, n: int, name: str, wrong_length: str) -> torch.Tensor:
    """``y`` as a 1-D tensor of n integers, else a ValueError; ``wrong_length`` is the message for a vector of
    the wrong length, formatted with ``labels`` (its length) and ``rows`` (n)."""
    y = as_tensor(y, name)
    if y.dim() != 1:
        raise ValueError(f"{name} must be 1-D (one label per row), got shape {tuple(y.shape)}")
    if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise ValueError(f"{name} must hold integer class labels, got dtype {y.dtype}")
    if len(y) != n:
        raise ValueError(wrong_length.format(labels=len(y), rows=n))
    return y


def labels(y, n: int, name: str = "y", *, num_classes: int | None = None) -> torch.Tensor:
    """``y`` as int64 class indices, one per row of an n-row feature matrix, in [0, num_classes)
    (``num_classes=None``: any value >= 0)."""
    y = _integer_vector(y, n, name,
                        f"{name} has {{labels}} labels but its features have {{rows}} rows; they must match")
    y = y.to(torch.int64)
    if len(y) and (int(y.min()) < 0 or (num_classes is not None and int(y.max()) >= num_classes)):
        bound = f"[0, {num_classes})" if num_classes is not None else ">= 0"
        raise ValueError(f"{name} must hold class indices in {bound}, got values in [{int(y.min())}, {int(y.max())}]")
    return y


def label_codes(y, n: int, name: str = "y", *, min_classes: int = 2,
                device: torch.device | None = None) -> tuple[torch.Tensor, int]:
    """Any integer labels, one per row, as (codes 0..C-1 in int64 on ``device``, C); needs ``min_classes``."""
    y = _integer_vector(y, n, name, f"X has {{rows}} rows but {name} has {{labels}} labels; they must match")
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


# ============================================ the vocabulary ==========================================
# A rule says what a value must be: ``rule(v)`` is None when ``v`` is fine, else that description (the
# profile's schema, clorg.core.config, collects these for every key); ``rule.require(v, name)`` raises the
# ValueError of every other boundary check, naming the argument. One rule per kind of value, used by the
# profile schema, the metrics, the augmentations and the heads alike.


def _is_int(v) -> bool:
    return isinstance(v, (numbers.Integral, np.integer)) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, (numbers.Real, np.integer, np.floating)) and not isinstance(v, bool) and math.isfinite(float(v))


class Rule:
    """What a value must be (``what``, e.g. "a positive integer") and the test that says whether it is."""

    def __init__(self, what: str, test):
        self.what, self._test = what, test

    def __call__(self, v) -> str | None:
        return None if self._test(v) else self.what

    def require(self, v, name: str, *, allow_none: bool = False):
        """``v`` when it keeps the rule (or is None and ``allow_none``), else ValueError naming ``name``."""
        if v is None and allow_none:
            return None
        if self(v) is not None:
            raise ValueError(f"{name} must be {self.what}{' or None' if allow_none else ''}, got {v!r}")
        return v


INTEGER = Rule("an integer", _is_int)
POSITIVE_INT = Rule("a positive integer", lambda v: _is_int(v) and v > 0)
NON_NEGATIVE_INT = Rule("an integer >= 0", lambda v: _is_int(v) and v >= 0)
POSITIVE_NUMBER = Rule("a positive number", lambda v: _is_number(v) and v > 0)
NON_NEGATIVE_NUMBER = Rule("a number >= 0", lambda v: _is_number(v) and v >= 0)
UNIT_INTERVAL = Rule("a number in [0, 1)", lambda v: _is_number(v) and 0 <= v < 1)
OPEN_UNIT_INTERVAL = Rule("a number in (0, 1)", lambda v: _is_number(v) and 0 < v < 1)
PROBABILITY = Rule("a probability in [0, 1]", lambda v: _is_number(v) and 0 <= v <= 1)
NON_EMPTY_STRING = Rule("a non-empty string", lambda v: isinstance(v, str) and bool(v))
BOOLEAN = Rule("true or false", lambda v: isinstance(v, bool))


def one_of(*allowed) -> Rule:
    return Rule(f"one of {list(allowed)}", lambda v: v in allowed)


def pair(low: float, high: float = math.inf, *, low_open: bool = False) -> Rule:
    """A pair (lo, hi) with low <= lo <= hi <= high (``low_open``: low < lo), e.g. the range of a uniform draw."""
    def test(v):
        return (isinstance(v, (list, tuple)) and len(v) == 2 and all(_is_number(x) for x in v)
                and (low < v[0] if low_open else low <= v[0]) and v[0] <= v[1] <= high)
    bound = "" if high == math.inf else f" <= {high:g}"
    return Rule(f"a pair [lo, hi] with {low:g} {'<' if low_open else '<='} lo <= hi{bound}", test)


def within(low: float, high: float) -> Rule:
    """A number in [low, high]."""
    return Rule(f"a number in [{low:g}, {high:g}]", lambda v: _is_number(v) and low <= v <= high)


# the share of a GCN's training labels hidden each step: drawn uniformly from (lo, hi), so some always are
MASK_RANGE = Rule("a pair [lo, hi] with 0 <= lo <= hi <= 1 and hi > 0",
                  lambda v: pair(0.0, 1.0)(v) is None and v[1] > 0)


def list_of(rule: Rule, allowed: tuple | None = None) -> Rule:
    """A non-empty list whose items keep ``rule`` (and, with ``allowed``, are among them)."""
    items = rule.what.removeprefix("an ").removeprefix("a ") + "s"  # "a positive integer" -> "positive integers"
    what = f"a non-empty list drawn from {list(allowed)}" if allowed else f"a non-empty list of {items}"
    return Rule(what, lambda v: isinstance(v, list) and bool(v)
                and all(rule(i) is None and (not allowed or i in allowed) for i in v))


def distinct(values, rule: Rule, cast, name: str, what: str) -> list:
    """A scalar or an iterable of values that keep ``rule``, as a non-empty list of ``cast(value)`` without
    repeats (order kept)."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        values = [values]  # one value, a NaN, None or a word among them: the rule says what is wrong with it
    out = []
    for v in values:
        v = cast(rule.require(v, name))
        if v not in out:
            out.append(v)
    if not out:
        raise ValueError(f"{what} must contain at least one value")
    return out


def temperatures(values) -> list[float]:
    """Temperatures (a number or several): distinct, finite and positive, order kept."""
    return distinct(values, POSITIVE_NUMBER, float, "temperature", "temperatures")


def neighbour_counts(ks, n: int) -> list[int]:
    """Neighbour counts (one or several): distinct integers with 1 <= k < n, order kept."""
    out = distinct(ks, INTEGER, int, "k", "ks")
    for k in out:
        if not 1 <= k < n:
            raise ValueError(f"k must satisfy 1 <= k < n_samples (= {n}), got {k}")
    return out


def positive_int(value, name: str, *, allow_none: bool = False) -> int | None:
    v = POSITIVE_INT.require(value, name, allow_none=allow_none)
    return None if v is None else int(v)


def positive_number(value, name: str, *, allow_none: bool = False) -> float | None:
    v = POSITIVE_NUMBER.require(value, name, allow_none=allow_none)
    return None if v is None else float(v)


def symmetric_graph(rows: torch.Tensor, cols: torch.Tensor, vals: torch.Tensor, n: int) -> None:
    """A sparse n x n graph W (COO rows, cols, values) with W == W^T up to rounding (an undirected graph),
    checked on the coalesced entries of W - W^T."""
    idx = torch.cat([torch.stack([rows, cols]), torch.stack([cols, rows])], dim=1)
    diff = torch.sparse_coo_tensor(idx, torch.cat([vals, -vals]), (n, n), check_invariants=False)
    diff = diff.coalesce().values()
    scale = float(vals.abs().max()) if len(vals) else 0.0
    asym = float(diff.abs().max()) if len(diff) else 0.0
    if asym > 1e-6 * scale:
        raise ValueError(f"W must be symmetric (an undirected graph); max |W - W^T| = {asym:.3g}")


def uint8_images(x: torch.Tensor) -> None:
    """A batch of images as uint8 (B, H, W, C), C in (1, 3), at least 2x2."""
    if not isinstance(x, torch.Tensor) or x.dtype != torch.uint8 or x.ndim != 4 or x.shape[-1] not in (1, 3):
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        dtype = x.dtype if isinstance(x, torch.Tensor) else ""
        raise ValueError(f"expected a uint8 tensor (B, H, W, C) with C in (1, 3), got {shape} {dtype}")
    if min(x.shape[1], x.shape[2]) < 2:
        raise ValueError(f"images must be at least 2x2, got {tuple(x.shape[1:3])}")


def float_images(x: torch.Tensor) -> None:
    """A batch of images as a floating tensor (B, C, H, W), C in (1, 3)."""
    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.ndim != 4 or x.shape[1] not in (1, 3):
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"expected a float tensor (B, C, H, W) with C in (1, 3), got {shape}")


def generator_on(generator: torch.Generator, device: torch.device) -> None:
    """A torch.Generator on the device type of the tensors it draws for."""
    if not isinstance(generator, torch.Generator):
        raise ValueError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    if torch.device(generator.device).type != device.type:
        raise ValueError(f"generator is on {generator.device} but the images are on {device}; "
                         f"create it with torch.Generator(device=images.device)")


def node_roles(fit_idx: torch.Tensor, val_idx: torch.Tensor, test_idx: torch.Tensor, n: int) -> None:
    """The fit, validation and test nodes are disjoint index sets of the graph's ``n`` nodes: a test node
    that is also a fit node would show its label to the head (the honest protocol's leak)."""
    every = torch.cat([fit_idx, val_idx, test_idx])
    if len(every) and (int(every.min()) < 0 or int(every.max()) >= n):
        raise ValueError(f"node indices must lie in [0, {n}): the graph has {n} nodes")
    if len(torch.unique(every)) != len(every):
        raise ValueError("the fit, validation and test nodes overlap (or one set repeats a node): each node "
                         "of the graph has one role")
