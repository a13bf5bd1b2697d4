"""Near-duplicate pairs across classes: the images contrastive features cannot tell apart (claim 6).

Why. A contrastive encoder is trained to map two augmentations of one image together and nothing
else, so it organises images by what they look like, whatever their class. The authors' sharpest
example (SPEC section 5): the most similar *cross-class* training pair under contrastive ResNet-101
has cosine 0.9983, while the supervised encoder, trained on the labels, puts the same two images at
cosine -0.07. Claim 6 (SPEC section 7) turns this into a check: cross-class contrastive pairs with
cosine > 0.99 exist whose supervised cosine is <= 0.

- :func:`cross_class_pairs` — the ``top`` most similar pairs of images of different classes, found in
  row blocks (memory O(block_size * n), never the n x n matrix: n is 50,000 at paper scale).
- :func:`pair_cosines` — the cosine of the same pairs under another feature set of the same images.
- :func:`random_cross_class_pairs` — random pairs of images of different classes: the baseline that
  says what cosine a *typical* cross-class pair has (features are often far from centred, so 0 is not
  what "unrelated" looks like).
- :func:`cross_class_report` — all of the above for one contrastive and one supervised feature set.

Ties are broken deterministically: pairs are ordered by cosine (descending), then i, then j. The work
dtype is float64 for float64 input and float32 otherwise (the features of :mod:`clorg.features`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from ..core import checks, criteria
from .metrics import top_neighbours

COLUMNS = ("i", "j", "label_i", "label_j", "cosine")


# ============================================ input checks ============================================

def _unit_features(X, name: str = "X") -> torch.Tensor:
    """X (numpy or torch, n x D) as a tensor of L2-normalised rows (float64 input stays float64)."""
    X = checks.features(X, name)
    X = X.to(torch.float64 if X.dtype == torch.float64 else torch.float32)
    return checks.unit_rows(X, name)


# ============================================ the search ==============================================

def _row_candidates(sims: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(row, column) of each row's ``k`` largest finite entries, ties going to the smaller column (the
    package's one tie rule, :func:`clorg.analysis.metrics.top_neighbours`); ``sims`` holds -inf where a
    pair is excluded."""
    vals, idx = top_neighbours(sims, min(k, sims.shape[1]))
    rows = torch.arange(len(sims), device=sims.device)[:, None].expand_as(idx)
    keep = torch.isfinite(vals)
    return rows[keep], idx[keep]


def _best(cos: np.ndarray, i: np.ndarray, j: np.ndarray, top: int):
    order = np.lexsort((j, i, -cos))[:top]  # cosine descending, then i, then j
    return cos[order], i[order], j[order]


def cross_class_pairs(X, y, top: int = 16, block_size: int = 1024) -> pd.DataFrame:
    """The ``top`` most similar pairs of rows of ``X`` with different labels, by cosine similarity.

    X: features (n, D), numpy or torch; rows are L2-normalised here. y: labels (n,), any values.
    Returns a DataFrame with columns ``i < j``, ``label_i``, ``label_j``, ``cosine``, one row per
    unordered pair, ordered by cosine descending, then i, then j (fewer rows than ``top`` only when
    there are fewer cross-class pairs). ``attrs["n_rows"]`` records n, for :func:`pair_cosines`.

    Blockwise: for rows [s, e) the panel of similarities to the columns j > i is computed, same-class
    entries are excluded, each row keeps its ``top`` best partners and these are merged into a running
    global top. The global top is exact: a pair among the best ``top`` overall is also among the best
    ``top`` of its row i, since the order within a row is the global order restricted to it.
    """
    top = checks.positive_int(top, "top")
    block_size = checks.positive_int(block_size, "block_size")
    Xn = _unit_features(X)
    n = Xn.shape[0]
    y = np.asarray(y.detach().cpu() if isinstance(y, torch.Tensor) else y)
    if y.ndim != 1 or len(y) != n:
        raise ValueError(f"y must be 1-D with one label per row of X ({n} rows), got shape {y.shape}")
    classes, codes = np.unique(y, return_inverse=True)
    if len(classes) < 2:
        raise ValueError(f"y must contain at least 2 classes to have cross-class pairs, got {len(classes)}")
    codes_t = torch.from_numpy(codes.astype(np.int64)).to(Xn.device)

    cos, pi, pj = np.empty(0), np.empty(0, np.int64), np.empty(0, np.int64)
    for s in range(0, n - 1, block_size):
        e = min(s + block_size, n)
        sims = Xn[s:e] @ Xn[s:].T  # columns are j = s .. n-1: only the pairs i < j are needed
        excluded = codes_t[s:e, None] == codes_t[None, s:]
        excluded |= torch.arange(s, e, device=Xn.device)[:, None] >= torch.arange(s, n, device=Xn.device)[None, :]
        sims.masked_fill_(excluded, float("-inf"))
        rows, cols = _row_candidates(sims, top)
        values = sims[rows, cols].cpu().numpy().astype(np.float64)  # exact: no new ties or reorders
        cos, pi, pj = _best(np.concatenate([cos, values]), np.concatenate([pi, rows.cpu().numpy() + s]),
                            np.concatenate([pj, cols.cpu().numpy() + s]), top)
    table = pd.DataFrame({"i": pi.astype(np.int64), "j": pj.astype(np.int64),
                          "label_i": y[pi], "label_j": y[pj], "cosine": cos})
    table.attrs["n_rows"] = n
    return table


# ===================================== the same pairs, other features ==================================

def pair_cosines(X, pairs, n_rows: int | None = None) -> np.ndarray:
    """Cosine similarity of each pair (i, j) under the features ``X`` (another encoder's features of the
    same images, in the same row order). ``pairs``: a DataFrame with columns i and j (as
    :func:`cross_class_pairs` returns) or an (m, 2) integer array. The row count of ``X`` must equal
    ``n_rows`` (default: ``pairs.attrs["n_rows"]`` when present), the number of images the pairs were
    found among: a different count means different images, and the cosines would be meaningless."""
    if isinstance(pairs, pd.DataFrame):
        missing = {"i", "j"} - set(pairs.columns)
        if missing:
            raise ValueError(f"pairs needs columns 'i' and 'j', missing {sorted(missing)}")
        n_rows = pairs.attrs.get("n_rows") if n_rows is None else n_rows
        idx = pairs[["i", "j"]].to_numpy()
    else:
        idx = np.asarray(pairs)
        if idx.ndim != 2 or idx.shape[1] != 2:
            raise ValueError(f"pairs must be a DataFrame with columns i, j or an (m, 2) array, got shape {idx.shape}")
    if idx.size and idx.dtype.kind not in "iu":
        raise ValueError(f"pair indices must be integers, got dtype {idx.dtype}")
    X = X.detach().cpu().numpy() if isinstance(X, torch.Tensor) else np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"X must be a 2-D array (n_images, n_features), got shape {X.shape}")
    if n_rows is not None and len(X) != n_rows:
        raise ValueError(f"X has {len(X)} rows but the pairs were found among {n_rows} images: the two feature "
                         f"sets must hold the same images in the same order")
    idx = idx.astype(np.int64)
    if idx.size and (idx.min() < 0 or idx.max() >= len(X)):
        raise ValueError(f"pair indices must lie in [0, {len(X)}), got {idx.min()}..{idx.max()}")
    if len(idx) == 0:
        return np.empty(0)
    used = np.unique(idx)
    unit = _unit_features(X[used], "X").to(torch.float64).numpy()  # checks NaN/inf and zero rows
    pos = np.searchsorted(used, idx)
    return np.einsum("md,md->m", unit[pos[:, 0]], unit[pos[:, 1]])


# ============================================= baselines ==============================================

def random_cross_class_pairs(y, n_pairs: int = 10_000, seed: int = 0) -> np.ndarray:
    """``n_pairs`` random pairs (i < j) of rows with different labels, as an (n_pairs, 2) array: i is
    uniform over the rows, j uniform over the rows of the other classes (pairs may repeat)."""
    n_pairs = checks.positive_int(n_pairs, "n_pairs")
    y = np.asarray(y.detach().cpu() if isinstance(y, torch.Tensor) else y)
    if y.ndim != 1:
        raise ValueError(f"y must be 1-D, got shape {y.shape}")
    classes, codes = np.unique(y, return_inverse=True)
    if len(classes) < 2:
        raise ValueError(f"y must contain at least 2 classes to have cross-class pairs, got {len(classes)}")
    order = np.argsort(codes, kind="stable")  # rows grouped by class
    counts = np.bincount(codes)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rng = np.random.default_rng(seed)
    i = rng.integers(0, len(y), n_pairs)
    c = codes[i]
    r = (rng.random(n_pairs) * (len(y) - counts[c])).astype(np.int64)  # a position among the other classes
    j = order[np.where(r < starts[c], r, r + counts[c])]  # ... skipping the block of i's class
    return np.sort(np.stack([i, j], axis=1), axis=1)


def cross_class_report(cl_X, y, sl_X, *, top: int = 1000, keep: int = 16, sl_labels=None,
                       block_size: int = 1024, baseline_pairs: int = criteria.NEAR_DUPLICATE_BASELINE_PAIRS) -> dict:
    """The ``top`` most similar cross-class pairs under the contrastive features ``cl_X`` and their cosines
    under the supervised features ``sl_X`` of the same images.

    Returns JSON-able data: ``pairs`` (the first ``keep`` pairs as records with i, j, label_i, label_j,
    cosine, sl_cosine), ``cl_cosines`` / ``sl_cosines`` (all ``top`` pairs: what claim 6 is checked on,
    clorg.book.claims) and ``baseline``: the mean CL and SL cosine of ``baseline_pairs`` random
    cross-class pairs, the median SL cosine (claim 6's bar for the top pair) and the share of them with
    SL cosine <= 0, the scale against which "> 0.99" and "<= 0" are to be read. ``sl_labels``, when given, must equal ``y``: it guards the row order."""
    if sl_labels is not None and not np.array_equal(np.asarray(sl_labels), np.asarray(y)):
        raise ValueError("the supervised features' labels differ from the contrastive ones: the two feature "
                         "sets are not the same images in the same order")
    keep = checks.positive_int(keep, "keep")
    pairs = cross_class_pairs(cl_X, y, top=top, block_size=block_size)
    pairs["sl_cosine"] = pair_cosines(sl_X, pairs)
    rand = random_cross_class_pairs(y, baseline_pairs)
    rand_cl, rand_sl = pair_cosines(cl_X, rand, n_rows=len(y)), pair_cosines(sl_X, rand, n_rows=len(y))
    baseline = {"pairs": len(rand), "cl_mean": float(rand_cl.mean()), "sl_mean": float(rand_sl.mean()),
                "sl_median": float(np.median(rand_sl)), "sl_share_nonpositive": float((rand_sl <= 0).mean())}
    return {"pairs": pairs.head(keep).to_dict("records"), "cl_cosines": pairs["cosine"].tolist(),
            "sl_cosines": pairs["sl_cosine"].tolist(), "baseline": baseline}
