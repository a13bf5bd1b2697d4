"""The paper's 2-D toy figure (SPEC section 5): locally dense against globally dense classes.

Six generators, one per panel (a)-(f), each ``f(points_per_class=300, n_classes=5, rng=None)`` ->
``(X, y)`` with X float64 of shape (n, 2) in raw coordinates (not normalised, as in the paper) and
y int64 with classes 0..n_classes-1 in blocks of ``points_per_class``. ``rng`` is anything
``numpy.random.default_rng`` accepts (a seed, a Generator, or None).

The authors drew their panels without a seed; :func:`toy_scores` scores every panel with RLD
(T = 0.05) and CH from one seed, to compare against their two saved runs (SPEC section 6).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Callable

import numpy as np
import pandas as pd

from ..core import criteria
from .metrics import calinski_harabasz, rld, rld_sweep

Generator = Callable[..., tuple[np.ndarray, np.ndarray]]

# Panel (f): the authors' five fixed blob centres.
BLOB_CENTRES = np.array([[-0.1089, -0.7626], [-0.7369, 0.8191], [0.7239, 0.6228],
                         [-0.0020, 0.9966], [0.4988, 0.1974]])
# Panel (d): points per tiny cluster (300 points per class = 20 clusters x 15 points).
POINTS_PER_TINY_CLUSTER = 15


def _setup(points_per_class: int, n_classes: int, rng) -> tuple[np.random.Generator, np.ndarray]:
    """Checked sizes -> (random generator, labels 0,0,...,1,1,... as int64)."""
    for name, value, least in (("points_per_class", points_per_class, 1), ("n_classes", n_classes, 1)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
            raise ValueError(f"{name} must be an integer >= {least}, got {value!r}")
    labels = np.repeat(np.arange(n_classes, dtype=np.int64), points_per_class)
    return np.random.default_rng(rng), labels


def uniform(points_per_class: int = 300, n_classes: int = 5, rng=None) -> tuple[np.ndarray, np.ndarray]:
    """(a) Every class uniform on [-1, 1]^2: neither locally nor globally dense (RLD ~ 0)."""
    rng, y = _setup(points_per_class, n_classes, rng)
    return rng.uniform(-1, 1, size=(len(y), 2)), y


def rings(points_per_class: int = 300, n_classes: int = 5, rng=None) -> tuple[np.ndarray, np.ndarray]:
    """(b) Concentric rings: class i at radius 0.2 + 0.2 i with N(0, 0.01) radial noise, random angle
    (uniform; the authors drew N(0, 2 pi), which is the same up to a negligible non-uniformity)."""
    rng, y = _setup(points_per_class, n_classes, rng)
    angle = rng.uniform(0, 2 * math.pi, size=len(y))
    radius = 0.2 + 0.2 * y + rng.normal(0, 0.01, size=len(y))
    return np.stack([np.sin(angle), np.cos(angle)], axis=1) * radius[:, None], y


def lines(points_per_class: int = 300, n_classes: int = 5, rng=None) -> tuple[np.ndarray, np.ndarray]:
    """(c) Lines through the origin: class i along (sin a_i, cos a_i), position U[-1, 1], plus
    N(0, 0.05) noise in both coordinates. a_i = 2 pi i / C as in the paper (0.4 pi i for C = 5);
    for an even C that would put two classes on one line, so a_i = pi i / C there."""
    rng, y = _setup(points_per_class, n_classes, rng)
    step = 2 * math.pi / n_classes if n_classes % 2 else math.pi / n_classes
    direction = np.stack([np.sin(step * y), np.cos(step * y)], axis=1)
    position = rng.uniform(-1, 1, size=len(y))
    return direction * position[:, None] + rng.normal(0, 0.05, size=(len(y), 2)), y


def tiny_clusters(points_per_class: int = 300, n_classes: int = 5, rng=None) -> tuple[np.ndarray, np.ndarray]:
    """(d) Per class, ceil(points_per_class / 15) centres uniform in [-1, 1]^2 and 15 points around
    each with sd 0.01: locally dense, globally mixed (the contrastive picture)."""
    rng, y = _setup(points_per_class, n_classes, rng)
    n_centres = math.ceil(points_per_class / POINTS_PER_TINY_CLUSTER)
    centres = rng.uniform(-1, 1, size=(n_classes, n_centres, 2))
    which = np.arange(points_per_class) % n_centres  # round-robin: 15 points per centre at 300
    X = centres[y, np.tile(which, n_classes)]
    return X + rng.normal(0, 0.01, size=X.shape), y


def segments(points_per_class: int = 300, n_classes: int = 5, rng=None) -> tuple[np.ndarray, np.ndarray]:
    """(e) Short segments: per class two endpoints a, b uniform in [-1, 1]^2, points t a + (1 - t) b
    with t ~ N(0.5, 0.1), plus N(0, 0.01) noise."""
    rng, y = _setup(points_per_class, n_classes, rng)
    ends = rng.uniform(-1, 1, size=(n_classes, 2, 2))
    t = rng.normal(0.5, 0.1, size=len(y))[:, None]
    X = t * ends[y, 0] + (1 - t) * ends[y, 1]
    return X + rng.normal(0, 0.01, size=X.shape), y


def blobs(points_per_class: int = 300, n_classes: int = 5, rng=None) -> tuple[np.ndarray, np.ndarray]:
    """(f) Gaussian blobs with sd 0.1 around the authors' fixed centres (`BLOB_CENTRES`): dense both
    locally and globally (the supervised picture). At most 5 classes, one per centre."""
    if isinstance(n_classes, (int, np.integer)) and n_classes > len(BLOB_CENTRES):
        raise ValueError(f"n_classes must be <= {len(BLOB_CENTRES)} for blobs (one per fixed centre), "
                         f"got {n_classes}")
    rng, y = _setup(points_per_class, n_classes, rng)
    return BLOB_CENTRES[y] + rng.normal(0, 0.1, size=(len(y), 2)), y


# name -> (panel title, generator), in the order of the paper's 2 x 3 grid
TOY_PANELS: OrderedDict[str, tuple[str, Generator]] = OrderedDict([
    ("uniform", ("(a) uniform", uniform)),
    ("rings", ("(b) concentric rings", rings)),
    ("lines", ("(c) lines through the origin", lines)),
    ("tiny_clusters", ("(d) tiny clusters", tiny_clusters)),
    ("segments", ("(e) short segments", segments)),
    ("blobs", ("(f) Gaussian blobs", blobs)),
])


def toy_titles() -> dict[str, str]:
    """{panel name: its title in the paper's figure}."""
    return {name: title for name, (title, _) in TOY_PANELS.items()}


def toy_panels(seed: int, points_per_class: int = 300) -> OrderedDict[str, tuple[np.ndarray, np.ndarray]]:
    """Every panel's (X, y), each from its own stream spawned from `seed` (so a panel does not change
    when another is added or reordered)."""
    streams = np.random.SeedSequence(seed).spawn(len(TOY_PANELS))
    return OrderedDict((name, make(points_per_class, 5, np.random.default_rng(stream)))
                       for (name, (_, make)), stream in zip(TOY_PANELS.items(), streams))


def toy_scores(seed: int, points_per_class: int = 300, temperature: float = 0.05) -> dict[str, dict[str, float]]:
    """{panel name: {"rld": RLD at `temperature`, "ch": Calinski-Harabasz}} for the six panels,
    5 classes each, as in the paper's figure titles (raw 2-D coordinates)."""
    return {name: {"rld": rld(X, y, temperature), "ch": calinski_harabasz(X, y)}
            for name, (X, y) in toy_panels(seed, points_per_class).items()}


def rld_curves(seed: int, temperatures, points_per_class: int = 300) -> dict[str, dict[float, float]]:
    """{panel: {T: RLD}} over ``temperatures`` for one seed (one shared sweep per panel)."""
    return {name: rld_sweep(X, y, temperatures) for name, (X, y) in toy_panels(seed, points_per_class).items()}


# The temperatures of the chapter's RLD-against-T figure: 13 from 0.01 to 10, four per decade (10^0.25 apart).
CURVE_TEMPERATURES = tuple(float(t) for t in np.logspace(-2, 1, 13))


def chapter_result(seeds: int, points_per_class: int, temperature: float, authors: dict) -> dict:
    """Everything the toy chapter shows, as stored data: the comparison with the ``authors``' runs over
    ``seeds`` seeds (:func:`compare_with_authors`, records), seed 0's scores (the figure's titles) and
    seed 0's RLD against :data:`CURVE_TEMPERATURES`, per panel. The panels' points are not stored: they
    are :func:`toy_panels` of seed 0, drawn again where they are plotted."""
    by_seed = {s: toy_scores(s, points_per_class, temperature) for s in range(seeds)}
    curves = rld_curves(0, CURVE_TEMPERATURES, points_per_class)
    return {"comparison": compare_with_authors(by_seed, authors).to_dict("records"), "seeds": seeds,
            "scores": by_seed[0], "curve_temperatures": list(CURVE_TEMPERATURES),
            "curves": {panel: [float(by_t[t]) for t in CURVE_TEMPERATURES] for panel, by_t in curves.items()}}


def compare_with_authors(scores_by_seed: dict[int, dict[str, dict[str, float]]], authors: dict) -> pd.DataFrame:
    """Our RLD and CH over seeds (``ours_mean``, ``ours_sd``, ``ours_min``, ``ours_max``) beside the authors'
    two runs (``authors``: [run 1, run 2]), per panel; identifiers, never display names (those are made
    where the table is shown).

    ``outside`` lists the authors' values that fall outside our range over seeds, widened by 0.005 for RLD
    and 0.5 % for CH, since the authors printed rounded values; ``consistent``: none does; ``max_z``
    is how many of our standard deviations the farther of their values lies from our mean.
    """
    rows = []
    for panel, runs in authors.items():
        for metric, col, slack in (("rld", 0, 0.005), ("ch", 1, None)):
            ours = np.array([scores_by_seed[s][panel][metric] for s in sorted(scores_by_seed)])
            theirs = [r[col] for r in runs]
            lo, hi = ours.min(), ours.max()
            pad = slack if slack is not None else 0.005 * max(abs(lo), abs(hi))
            outside = [t for t in theirs if not lo - pad <= t <= hi + pad]
            rows.append({
                "panel": panel, "metric": metric.upper(), "ours_mean": ours.mean(), "ours_sd": ours.std(ddof=1)
                if len(ours) > 1 else float("nan"), "ours_min": lo, "ours_max": hi, "authors": list(theirs),
                "max_z": max(abs(t - ours.mean()) for t in theirs) / ours.std(ddof=1) if len(ours) > 1 else float("nan"),
                "outside": outside, "consistent": not outside,
            })
    return pd.DataFrame(rows)


def describe_comparison(table: pd.DataFrame, n_seeds: int) -> str:
    """One sentence per row of :func:`compare_with_authors` where the authors' runs fall outside ours."""
    lines = []
    for row in table.to_dict("records"):
        if row["consistent"]:
            continue
        # the distance of the values outside our range (max_z, of either value, is the table's column)
        far, sd = max(abs(t - row["ours_mean"]) for t in row["outside"]), row["ours_sd"]
        z = far / sd if sd else math.inf  # seeds that all agree: any value outside them is far
        theirs = " and ".join(f"{t:.4g}" for t in row["outside"])
        verb = "lie" if len(row["outside"]) > 1 else "lies"
        ours = (f"{row['ours_min']:.4g} to {row['ours_max']:.4g} over {n_seeds} seeds "
                f"(mean {row['ours_mean']:.4g}, sd {row['ours_sd']:.2g})")
        if z <= criteria.NUMBERS_TOY_Z:
            why = (f"{z:.1f} of our standard deviations from our mean: seed-to-seed variation, which "
                   f"{n_seeds} seeds do not span fully")
        else:
            why = f"{z:.1f} standard deviations from our mean: a systematic difference from the authors' generator"
        lines.append(f"- {row['panel']} {row['metric']}: the authors' {theirs} {verb} outside our {ours}; "
                     f"{'the farther is' if len(row['outside']) > 1 else 'it is'} {why}.")
    return "\n".join(lines) or "- Every value of the authors' two runs lies within the range of our seeds."
