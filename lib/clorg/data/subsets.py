"""Stratified, seeded subsets: the same per-class share of every class, the same indices for a seed."""

from __future__ import annotations

import numpy as np


def stratified_subset(labels: np.ndarray, per_class: int | None = None, fraction: float | None = None,
                      seed: int = 0) -> np.ndarray:
    """Sorted indices of a subset with ``per_class`` images of every class, or ``fraction`` of each class.

    Each class is sampled without replacement by its own generator stream, so a class's subset does
    not depend on the other classes, and a larger ``per_class`` gives a superset of a smaller one.
    """
    labels = np.asarray(labels)
    if (per_class is None) == (fraction is None):
        raise ValueError("give exactly one of per_class (images per class) or fraction (share of each class)")
    if per_class is not None and (not isinstance(per_class, (int, np.integer)) or per_class < 1):
        raise ValueError(f"per_class must be a positive integer, got {per_class!r}")
    if fraction is not None and not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction!r}")
    chosen = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        take = per_class if per_class is not None else max(1, int(round(fraction * len(members))))
        if take > len(members):
            raise ValueError(f"class {c} has only {len(members)} images, fewer than per_class={per_class}")
        order = np.random.default_rng([seed, int(c)]).permutation(len(members))
        chosen.append(members[order[:take]])
    return np.sort(np.concatenate(chosen))
