"""Cluster geometry of feature sets: CH, RLD over temperatures and CHI over k, as records.

:func:`geometry_records` measures every feature set of a profile for the metrics chapter; the same three
metrics for anyone's features come from :func:`measure` (and the command ``python -m
clorg.analysis.geometry FEATURES LABELS``).
"""

from __future__ import annotations

import numpy as np
import torch

from ..core.devices import default_device
from . import records as R
from .metrics import calinski_harabasz, chi, rld_sweep


def capped_ks(ks, labels) -> tuple[list[int], str | None]:
    """The ks below the smallest class size (CHI(k) of a class smaller than k mixes in other classes by
    construction), and a note when some were capped."""
    smallest = int(np.bincount(np.asarray(labels)).min())
    kept = sorted({min(int(k), smallest - 1) for k in ks})
    if kept == sorted(int(k) for k in ks):
        return kept, None
    return kept, (f"k capped at {smallest - 1}, one below the smallest class ({smallest} images): "
                  f"asked for {sorted(int(k) for k in ks)}, used {kept}")


def measure(X, y, temperatures, ks, *, progress: bool | None = None) -> dict:
    """CH, RLD at each temperature and CHI at each k of features ``X`` with labels ``y``:
    ``{"CH": float, "RLD": {T: value}, "CHI": {k: value}}``. Runs where X is (a GPU tensor: on the GPU)."""
    X = torch.as_tensor(X) if not isinstance(X, torch.Tensor) else X
    return {"CH": calinski_harabasz(X, y), "RLD": rld_sweep(X, y, temperatures, progress=progress),
            "CHI": chi(X, y, ks, progress=progress)}


def geometry_records(features, temperatures, ks) -> list[dict]:
    """Records of CH, RLD(T) and CHI(k) of each feature set's *training* features (SPEC 2.1-2.3)."""
    out = []
    device = default_device()  # the metrics run blockwise on whichever device holds X
    for f in features:
        m = measure(torch.as_tensor(f.train).to(device), f.train_labels, temperatures, ks)
        out.append(R.record(f.identity, R.CH, m["CH"]))
        out += [R.record(f.identity, R.RLD, v, parameter=t) for t, v in m["RLD"].items()]
        out += [R.record(f.identity, R.CHI, v, parameter=k) for k, v in m["CHI"].items()]
    return out
