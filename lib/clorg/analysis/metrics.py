"""How features organise classes: RLD, Calinski-Harabasz, CHI and graph modularity.

Pure functions of arrays (paper SPEC, sections 2.1-2.3). ``X`` may be a numpy array or a torch
tensor, on the CPU or a GPU; the work runs in torch on the input's device. None of these functions
normalises ``X`` (the paper's features are L2-normalised by the caller); only :func:`chi`
normalises rows, and only to form cosine similarities.

Scale. :func:`rld` and :func:`chi` never build an n x n matrix: they sweep the pair matrix in
blocks, so memory is O(n * block) and the results are identical to the dense formulas (up to
floating-point rounding). Long sums are accumulated in float64. The work dtype is float64 for
float64 (or integer) input and float32 otherwise.

- :func:`rld`, :func:`rld_sweep` — Relative Local Density (the authors' RLD, section 2.1).
- :func:`calinski_harabasz` — the standard CH score with labels as clusters (section 2.2).
- :func:`chi` — Class Homogeneity Index over cosine neighbours (section 2.3).
- :func:`modularity` — Newman modularity of a labelling on an explicit weighted graph.
- :func:`rld_graph` — the RLD graph W itself, dense or sparse top-k (for the GCN head, section 2.4).
"""

from __future__ import annotations

import contextlib
import math
import os
import warnings
from typing import Iterable, Iterator

import numpy as np
import torch
from tqdm import tqdm

from ..core import checks
from ..core.progress import bar

# Side of a distance tile for RLD (block x block). On the CPU, 1024 keeps a float32 tile at 4 MB so the
# few alive per step stay in cache: on 2 cores it ran ~1.5x faster than 2048 (n = 20,000, 4 T:
# 8.8 s against 13.5 s) and no slower than 512. A GPU wants large tiles to fill its cores.
_RLD_BLOCK_CPU = 1024
_RLD_BLOCK_GPU = 8192
# Similarity panel for CHI (block x n). Sized by bytes so that memory stays flat as n grows.
_CHI_PANEL_BYTES = 128 * 2**20


# ============================================ input checks ============================================

def _features_and_labels(X, y) -> tuple[torch.Tensor, torch.Tensor, int]:
    """The shared boundary check: (X tensor, label codes on X's device, number of classes)."""
    X = checks.features(X, "X", min_rows=2)
    codes, n_classes = checks.label_codes(y, X.shape[0], "y", device=X.device)
    return X, codes, n_classes


# ============================================ torch helpers ===========================================

@contextlib.contextmanager
def _cpu_threads(device: torch.device, num_threads: int | None) -> Iterator[None]:
    """Run with `num_threads` intra-op threads on the CPU (default: every CPU this process may use),
    then restore the caller's setting: a metric must not change global state behind its back."""
    if device.type != "cpu":
        yield
        return
    if num_threads is None:
        num_threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    before = torch.get_num_threads()
    torch.set_num_threads(max(1, int(num_threads or 1)))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _blocks(n: int, size: int) -> list[tuple[int, int]]:
    return [(i, min(i + size, n)) for i in range(0, n, size)]


def _progress(progress: bool | None, n: int, total: int, desc: str) -> tqdm:
    return bar(progress, n, total, desc)


# ============================================== modularity ============================================

def _modularity_from_sums(within: torch.Tensor, degree: torch.Tensor, codes: torch.Tensor,
                          n_classes: int) -> float:
    """Newman modularity from the graph's sufficient statistics (all float64)::

        Q = (1/2m) [ sum_{ij: y_i = y_j} W_ij  -  sum_c K_c^2 / 2m ],   2m = sum_i k_i,
        K_c = sum_{i in c} k_i,

    where `within` = sum_{ij same class} W_ij (both orders) and `degree` = k_i = sum_j W_ij.
    """
    two_m = degree.sum()
    if not two_m > 0:
        raise ValueError("the graph has no edge weight (sum of W is 0); modularity is undefined")
    class_degree = torch.zeros(n_classes, dtype=torch.float64, device=degree.device)
    class_degree.index_add_(0, codes, degree)
    return float(within / two_m - (class_degree / two_m).square().sum())


def _graph_edges(W, n_expected: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | torch.Tensor:
    """(rows, cols, values) for a sparse W (scipy or torch), or the dense float64 tensor."""
    if hasattr(W, "tocoo") and not isinstance(W, (np.ndarray, torch.Tensor)):  # scipy.sparse
        coo = W.tocoo()
        shape = coo.shape
        rows, cols = torch.from_numpy(coo.row.astype(np.int64)), torch.from_numpy(coo.col.astype(np.int64))
        vals = torch.from_numpy(np.asarray(coo.data, dtype=np.float64))
    elif isinstance(W, torch.Tensor) and W.layout != torch.strided:  # torch sparse (COO/CSR/...)
        coo = W.detach().to_sparse_coo().coalesce()
        shape = tuple(coo.shape)
        rows, cols = coo.indices()
        vals = coo.values().to(torch.float64)
    else:
        dense = checks.as_tensor(W, "W")
        if dense.is_complex() or dense.dtype == torch.bool:
            raise ValueError(f"W must hold real edge weights, got dtype {dense.dtype}")
        shape = tuple(dense.shape)
        rows = cols = vals = None
    if len(shape) != 2 or shape[0] != shape[1]:
        raise ValueError(f"W must be a square (n x n) matrix, got shape {shape}")
    if shape[0] != n_expected:
        raise ValueError(f"W is {shape[0]} x {shape[0]} but y has {n_expected} labels; they must match")
    if rows is None:
        return dense.to(torch.float64)
    return rows, cols, vals


def modularity(W, y) -> float:
    """Newman modularity of the partition `y` on the weighted undirected graph `W` (section 2.1)::

        Q = (1/2m) sum_ij [W_ij - k_i k_j / 2m] [y_i == y_j],   k_i = sum_j W_ij,  2m = sum_ij W_ij.

    `W` may be a dense numpy array or torch tensor, a scipy sparse matrix or a torch sparse tensor;
    it must be square, finite, non-negative and symmetric. This is the adjacency-matrix form used by
    the authors: a diagonal entry W_ii counts once in k_i (networkx counts a self-loop twice in the
    degree), so the two agree on graphs without self-loops. A single class is allowed (Q = 0).
    """
    y = checks.as_tensor(y, "y")
    n = len(y) if y.dim() == 1 else -1
    codes, n_classes = checks.label_codes(y, n, "y", min_classes=1)
    edges = _graph_edges(W, n)
    device = edges.device if isinstance(edges, torch.Tensor) else edges[2].device
    codes = codes.to(device)
    if isinstance(edges, torch.Tensor):  # dense
        if not bool(torch.isfinite(edges).all()):
            raise ValueError("W contains NaN or infinite values")
        if bool((edges < 0).any()):
            raise ValueError("W must have non-negative edge weights")
        scale = float(edges.abs().max())
        asym = float((edges - edges.T).abs().max())
        if asym > 1e-6 * scale:
            raise ValueError(f"W must be symmetric (an undirected graph); max |W - W^T| = {asym:.3g}")
        onehot = torch.nn.functional.one_hot(codes, n_classes).to(torch.float64)
        by_class = edges @ onehot  # (n, C): weight from each node into each class
        degree = by_class.sum(dim=1)
        within = by_class.gather(1, codes[:, None]).sum()
        return _modularity_from_sums(within, degree, codes, n_classes)
    rows, cols, vals = edges
    if not bool(torch.isfinite(vals).all()):
        raise ValueError("W contains NaN or infinite values")
    if bool((vals < 0).any()):
        raise ValueError("W must have non-negative edge weights")
    checks.symmetric_graph(rows, cols, vals, n)
    degree = torch.zeros(n, dtype=torch.float64, device=device).index_add_(0, rows, vals)
    within = vals[codes[rows] == codes[cols]].sum()
    return _modularity_from_sums(within, degree, codes, n_classes)


# ================================================= RLD ================================================
# Notation (section 2.1): d_ij Euclidean distance, mu = mean_{i<j} d_ij, s_ij = -d_ij / mu, s_ii = -inf,
# P(j|i) = softmax_j(s_ij / T), and the graph W_ij = P(j|i) P(i|j) (the authors' n^2 factor cancels
# in Q). With c = -1 / (mu T), a_i = min_j d_ij (nearest neighbour) and Z_i = sum_j exp(c (d_ij - a_i)),
#
#     P(j|i) = exp(c (d_ij - a_i)) / Z_i,   so   W_ij = exp(c (2 d_ij - a_i - a_j)) / (Z_i Z_j).
#
# Every exponent is <= 0 (up to rounding) and each Z_i >= 1, so nothing overflows and no row
# underflows to 0 even at T = 0.01; subtracting a_i inside the exponent (not outside, in a
# log-sum-exp) also keeps it accurate in float32. Three blockwise passes over the pairs:
#   1. mu and a_i;   2. Z_i for every T;   3. k_i = sum_j W_ij and the within-class sum for every T.
# Passes 1 and 3 visit only the blocks j >= i since d and W are symmetric.

def _distances(XI: torch.Tensor, XJ: torch.Tensor, sqI: torch.Tensor, sqJ: torch.Tensor,
               diagonal: bool) -> torch.Tensor:
    """d_ij = sqrt(max(|x_i|^2 + |x_j|^2 - 2 x_i.x_j, 0)) for a tile. On a diagonal tile the
    self-distances are set to +inf, so that every later step (min, exp(-...)) excludes them exactly."""
    d2 = torch.addmm(sqJ[None, :], XI, XJ.T, alpha=-2.0)
    d2.add_(sqI[:, None])
    if diagonal:
        d2.fill_diagonal_(math.inf)
    _refine_near_pairs(d2, XI, XJ, sqI, sqJ)
    return d2.clamp_(min=0).sqrt_()


# Below this fraction of |x_i|^2 + |x_j|^2, the matmul form of d^2 has lost more than ~1e3 ulps to
# cancellation (a duplicate would get d ~ 1e-4 instead of 0 in float32): recompute those pairs directly.
_NEAR_PAIR = 1e-3


def _refine_near_pairs(d2: torch.Tensor, XI, XJ, sqI, sqJ, chunk: int = 1 << 16) -> None:
    """Overwrite d2_ij by sum_k (x_ik - x_jk)^2 where d2_ij is tiny next to the norms (in place).
    Near pairs are rare in real features, so this costs one comparison per tile; the loop over
    chunks keeps memory bounded even when most pairs are near (collapsed features)."""
    near = d2 < _NEAR_PAIR * (sqI.max() + sqJ.max())
    if not bool(near.any()):
        return
    rows, cols = near.nonzero(as_tuple=True)
    for r, c in zip(rows.split(chunk), cols.split(chunk)):
        d2[r, c] = (XI[r] - XJ[c]).square().sum(dim=1)


def _prepare_rld(X: torch.Tensor, codes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    """Rows sorted by class (so a class is a contiguous range, see `_class_segments`) and centred
    (distances do not change, but |x|^2 + |y|^2 - 2 x.y cancels less), plus the class offsets."""
    order = torch.argsort(codes, stable=True)
    mean = X.sum(dim=0, dtype=torch.float64) / X.shape[0]
    Xs = X[order]
    Xs -= mean.to(X.dtype)
    counts = torch.bincount(codes).tolist()
    offsets = [0]
    for c in counts:
        offsets.append(offsets[-1] + c)
    return Xs, codes[order], offsets


def _class_segments(I: tuple[int, int], J: tuple[int, int], offsets: list[int]) -> list[tuple[slice, slice]]:
    """For a tile (rows I, cols J) of class-sorted data: the (row slice, col slice) of each class
    present on both sides, relative to the tile. Their union is the tile's same-class mask."""
    segs = []
    for c in range(len(offsets) - 1):
        r0, r1 = max(I[0], offsets[c]), min(I[1], offsets[c + 1])
        c0, c1 = max(J[0], offsets[c]), min(J[1], offsets[c + 1])
        if r0 < r1 and c0 < c1:
            segs.append((slice(r0 - I[0], r1 - I[0]), slice(c0 - J[0], c1 - J[0])))
    return segs


def _pass_mean_and_nearest(X, sq, blocks, bar) -> tuple[float, torch.Tensor]:
    """Pass 1: mu = mean_{i<j} d_ij (float64 sum) and a_i = min_{j != i} d_ij."""
    n = X.shape[0]
    total = torch.zeros((), dtype=torch.float64, device=X.device)
    nearest = torch.full((n,), math.inf, dtype=X.dtype, device=X.device)
    for b, I in enumerate(blocks):
        for J in blocks[b:]:
            diagonal = I == J
            d = _distances(X[I[0]:I[1]], X[J[0]:J[1]], sq[I[0]:I[1]], sq[J[0]:J[1]], diagonal)
            nearest[I[0]:I[1]] = torch.minimum(nearest[I[0]:I[1]], d.min(dim=1).values)
            if diagonal:
                d.fill_diagonal_(0.0)
                total += d.sum(dtype=torch.float64) / 2  # the tile holds both (i, j) and (j, i)
            else:
                nearest[J[0]:J[1]] = torch.minimum(nearest[J[0]:J[1]], d.min(dim=0).values)
                total += d.sum(dtype=torch.float64)
            bar.update()
    return float(total) / (n * (n - 1) / 2), nearest


def _pass_partition(X, sq, nearest, coefs, blocks, bar) -> torch.Tensor:
    """Pass 2: Z_i(T) = sum_{j != i} exp(c_T (d_ij - a_i)) for every T, shape (n_T, n), float64."""
    n = X.shape[0]
    Z = torch.zeros(len(coefs), n, dtype=torch.float64, device=X.device)
    for I in blocks:
        for J in blocks:
            d = _distances(X[I[0]:I[1]], X[J[0]:J[1]], sq[I[0]:I[1]], sq[J[0]:J[1]], I == J)
            d.sub_(nearest[I[0]:I[1], None])  # one tile, shared by all temperatures
            e = torch.empty_like(d)
            for t, c in enumerate(coefs):
                torch.mul(d, c, out=e).exp_()
                Z[t, I[0]:I[1]] += e.sum(dim=1, dtype=torch.float64)
            bar.update()
    return Z


def _pass_graph(X, sq, nearest, coefs, inv_Z, offsets, blocks, bar) -> tuple[torch.Tensor, torch.Tensor]:
    """Pass 3: degrees k_i = sum_j W_ij, shape (n_T, n), and within-class sums, shape (n_T,), with
    W_ij = E_ij g_i g_j, E_ij = exp(c_T (2 d_ij - a_i - a_j)), g = 1/Z. The g factors are applied
    as matrix-vector products rather than to the tile: fewer passes over memory per temperature."""
    n = X.shape[0]
    degree = torch.zeros(len(coefs), n, dtype=torch.float64, device=X.device)
    within = torch.zeros(len(coefs), dtype=torch.float64, device=X.device)
    for b, I in enumerate(blocks):
        rows = slice(*I)
        for J in blocks[b:]:
            cols, diagonal = slice(*J), I == J
            d = _distances(X[rows], X[cols], sq[rows], sq[cols], diagonal)
            d.mul_(2).sub_(nearest[rows, None]).sub_(nearest[None, cols])
            segments = _class_segments(I, J, offsets)
            e = torch.empty_like(d)
            for t, c in enumerate(coefs):
                torch.mul(d, c, out=e).exp_()
                gI, gJ = inv_Z[t, rows], inv_Z[t, cols]
                degree[t, rows] += (gI * (e @ gJ)).to(torch.float64)
                w = sum((gI[r] @ (e[r, s] @ gJ[s])).to(torch.float64) for r, s in segments)
                if diagonal:
                    within[t] += w
                else:  # the mirror tile (J, I) is W^T: same within-class sum, column sums as degrees
                    within[t] += 2 * w
                    degree[t, cols] += (gJ * (gI @ e)).to(torch.float64)
            bar.update()
    return degree, within


def rld_sweep(X, y, temperatures: Iterable[float], *, block_size: int | None = None,
              progress: bool | None = None, num_threads: int | None = None) -> dict[float, float]:
    """RLD at several temperatures, sharing the distance work (section 2.1).

    For each T: s_ij = -d_ij / mean_{i<j} d_ij (s_ii = -inf), E = exp(s / T), r_i = sum_j E_ij,
    W_ij = E_ij^2 / (r_i r_j), and RLD_T = Newman modularity of the classes `y` on W. Identical to
    the authors' dense computation, but in O(n * block_size) memory (three blockwise passes; see the
    notes above `_distances`). Returns {T: RLD_T} in the order given.

    X: (n, D) features, numpy or torch (any device); not normalised here. y: (n,) integer labels.
    block_size: tile side (default 1024 on CPU, 8192 on GPU). progress: tqdm bars (default: n >= 20000).
    num_threads: CPU threads during the call (default: all CPUs available; restored afterwards).
    """
    X, codes, n_classes = _features_and_labels(X, y)
    temps = checks.temperatures(temperatures)
    work = torch.float64 if X.dtype == torch.float64 else torch.float32
    size = checks.positive_int(block_size, "block_size", allow_none=True) or \
        (_RLD_BLOCK_GPU if X.device.type == "cuda" else _RLD_BLOCK_CPU)
    n = X.shape[0]
    blocks = _blocks(n, size)
    n_tri, n_all = len(blocks) * (len(blocks) + 1) // 2, len(blocks) ** 2
    with _cpu_threads(X.device, num_threads), torch.no_grad(), \
            _progress(progress, n, 2 * n_tri + n_all, f"RLD (n={n}, {len(temps)} T)") as bar:
        Xs, codes_s, offsets = _prepare_rld(X.to(work), codes)
        sq = Xs.square().sum(dim=1)
        mu, nearest = _pass_mean_and_nearest(Xs, sq, blocks, bar)
        if not mu > 0:
            raise ValueError("all rows of X coincide (mean pairwise distance is 0); RLD is undefined")
        coefs = [-1.0 / (mu * t) for t in temps]
        Z = _pass_partition(Xs, sq, nearest, coefs, blocks, bar)
        degree, within = _pass_graph(Xs, sq, nearest, coefs, (1 / Z).to(work), offsets, blocks, bar)
    return {t: _modularity_from_sums(within[i], degree[i], codes_s, n_classes) for i, t in enumerate(temps)}


def rld(X, y, temperature: float, *, block_size: int | None = None, progress: bool | None = None,
        num_threads: int | None = None) -> float:
    """Relative Local Density at one temperature (section 2.1); see :func:`rld_sweep`::

        RLD_T = (1/2m) sum_ij [W_ij - k_i k_j / 2m] [y_i == y_j],   W_ij = E_ij^2 / (r_i r_j),
        E_ij = exp(-d_ij / (T mean_{i<j} d_ij)), E_ii = 0, r_i = sum_j E_ij.

    About 0 for random labels. Bounded by 1 - sum_c (K_c / 2m)^2, with K_c / 2m the class shares of
    the degree, hence by 1 - 1/C. SPEC's bound 1 - sum_c (n_c / n)^2 (count shares) holds for balanced
    classes only: a big tight class and a small diffuse one, well apart, give RLD ~ 0.5 at T = 1
    against a count bound of 0.18 for a 900/100 split (see tests/test_metrics.py::test_rld_bounds).
    """
    (t,) = checks.temperatures([temperature])
    return rld_sweep(X, y, [t], block_size=block_size, progress=progress, num_threads=num_threads)[t]


# ================================================== CH ================================================

def calinski_harabasz(X, y) -> float:
    """Calinski-Harabasz score with the labels as clusters (section 2.2), as scikit-learn computes it::

        CH = [sum_c n_c |mu_c - mu|^2 / (C - 1)] / [sum_i |x_i - mu_{y_i}|^2 / (n - C)],

    and 1.0 when every point sits on its class mean (scikit-learn's convention; the ratio is then undefined,
    so a warning says that the 1.0 is a convention, not a measured separation). Needs 2 <= C < n.
    """
    X, codes, n_classes = _features_and_labels(X, y)
    n = X.shape[0]
    if n_classes >= n:
        raise ValueError(f"calinski_harabasz needs fewer classes than samples, got {n_classes} classes "
                         f"for {n} samples")
    with torch.no_grad():
        X64 = X.to(torch.float64)
        counts = torch.bincount(codes, minlength=n_classes).to(torch.float64)
        centres = torch.zeros(n_classes, X.shape[1], dtype=torch.float64, device=X.device)
        centres.index_add_(0, codes, X64).div_(counts[:, None])
        between = (counts * (centres - X64.mean(dim=0)).square().sum(dim=1)).sum()
        within = (X64 - centres[codes]).square().sum()
    if within == 0:
        warnings.warn(f"calinski_harabasz: every one of the {n} points sits on its class mean (no spread within "
                      f"classes), so CH is undefined; 1.0 is returned by scikit-learn's convention, not as a "
                      f"measured separation", RuntimeWarning, stacklevel=2)
        return 1.0
    return float(between * (n - n_classes) / (within * (n_classes - 1)))


# ================================================= CHI ================================================
# Tie rule. Neighbours are ranked by cosine similarity, highest first, and among exactly equal
# similarities the lower index comes first; the anchor itself is excluded by index (not by value, so
# a duplicate of the anchor is a neighbour like any other). The k nearest are therefore the first k
# of a stable sort, np.argsort(-S_i, kind="stable") with S_ii = -inf. :func:`top_neighbours` is that
# rule, and every neighbour search of the package uses it: CHI, the kNN classifier, the near-duplicate
# search and :func:`nearest_neighbours`.

_TIED_CHUNK = 64  # rows sorted at once where ties make topk's choice ambiguous (bounded memory)


def top_neighbours(S: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row's ``k`` largest entries of ``S`` and their columns, largest first, equal values in the
    order of their columns: exactly the first k of a stable descending sort of the row. One ``topk``
    finds them; only the rows where equal values make its choice or its order ambiguous (a tie across
    the k-th place, or inside the k) are sorted in full."""
    vals, idx = S.topk(k, dim=1, largest=True, sorted=True)
    kth = vals[:, -1:]
    ambiguous = (S == kth).sum(dim=1) > (vals == kth).sum(dim=1)
    if k > 1:
        ambiguous |= (vals[:, 1:] == vals[:, :-1]).any(dim=1)
    for rows in ambiguous.nonzero()[:, 0].split(_TIED_CHUNK):
        ordered = torch.sort(S[rows], dim=1, descending=True, stable=True)
        vals[rows], idx[rows] = ordered.values[:, :k], ordered.indices[:, :k]
    return vals, idx


def _chi_panel_counts(S: torch.Tensor, codes: torch.Tensor, anchors: torch.Tensor, ks: list[int]
                      ) -> list[torch.Tensor]:
    """For a panel of anchors (rows of S, self already at -inf): same-class counts among the k
    nearest, one int64 vector per k. One search of the largest k serves every k (the first k of the
    tie rule's order are the k nearest for any k)."""
    _, idx = top_neighbours(S, max(ks))
    same_cum = (codes[idx] == anchors[:, None]).cumsum(dim=1)
    return [same_cum[:, k - 1] for k in ks]


def chi(X, y, ks: int | Iterable[int], *, block_size: int | None = None, progress: bool | None = None,
        num_threads: int | None = None) -> dict[int, float]:
    """Class Homogeneity Index (section 2.3) for each k in `ks`::

        CHI(k) = (1/n) sum_i |{j in N_k(i): y_j = y_i}| / k,

    N_k(i) = the k nearest neighbours of i by cosine similarity, i itself excluded, ties broken by
    lower index (the tie rule above :func:`top_neighbours`). Rows are normalised here for the cosine only.
    A point of a class of n_c points has n_c - 1 neighbours of its class: at k >= n_c, CHI(k) is bounded by
    the classes' sizes below 1 however the classes are arranged (the geometry command keeps k < n_c).
    Computed on panels of `block_size` anchors x all n points (default: ~128 MB per panel).
    Returns {k: CHI(k)} in the order given; needs 1 <= k < n.
    """
    X, codes, _ = _features_and_labels(X, y)
    n = X.shape[0]
    ks = checks.neighbour_counts(ks, n)
    work = torch.float64 if X.dtype == torch.float64 else torch.float32
    itemsize = 8 if work == torch.float64 else 4
    size = checks.positive_int(block_size, "block_size", allow_none=True) or max(64, _CHI_PANEL_BYTES // (n * itemsize))
    totals = torch.zeros(len(ks), dtype=torch.int64, device=X.device)
    blocks = _blocks(n, size)
    with _cpu_threads(X.device, num_threads), torch.no_grad(), \
            _progress(progress, n, len(blocks), f"CHI (n={n}, k<={max(ks)})") as bar:
        Xn = checks.unit_rows(X.to(work))
        for i0, i1 in blocks:
            S = Xn[i0:i1] @ Xn.T
            local = torch.arange(i1 - i0, device=X.device)
            S[local, local + i0] = -math.inf  # self excluded by index, so duplicates still count
            counts = _chi_panel_counts(S, codes, codes[i0:i1], ks)
            totals += torch.stack([c.sum() for c in counts])
            bar.update()
    return {k: float(totals[i]) / (n * k) for i, k in enumerate(ks)}


# ============================================= RLD graph ==============================================
# The graph W itself (SPEC 2.1 step 3), for the GCN head (SPEC 2.4). Same notation and passes as RLD:
#
#     log W_ij = c (2 d_ij - a_i - a_j) - log Z_i - log Z_j + 2 log n,
#
# a tile at a time. Within row i only the terms in j move, so the k largest W_ij of a row are the k
# largest entries of its row of log W: a running top-k per row block, merged tile by tile, gives the
# sparse graph in O(n * (block + k)) memory.



def _log_weight_tile(X, sq, nearest, coef, log_z, I, J, log_n2) -> torch.Tensor:
    """log W for the tile (rows I, cols J); -inf on the diagonal (no self-loops)."""
    rows, cols = slice(*I), slice(*J)
    d = _distances(X[rows], X[cols], sq[rows], sq[cols], I == J)
    d.mul_(2).sub_(nearest[rows, None]).sub_(nearest[None, cols]).mul_(coef)  # +inf * c<0 -> -inf
    return d.sub_(log_z[rows, None]).sub_(log_z[None, cols]).add_(log_n2)


def _mean_symmetric(rows, cols, vals, n: int) -> torch.Tensor:
    """(A + A^T) / 2 of the directed top-k graph A, coalesced (the authors' ``to_spare``)."""
    index = torch.cat([torch.stack([rows, cols]), torch.stack([cols, rows])], dim=1)
    half = vals / 2
    return torch.sparse_coo_tensor(index, torch.cat([half, half]), (n, n), check_invariants=False).coalesce()


# Largest graph rld_graph builds densely unless told otherwise: 12,000^2 float32 = 0.58 GB.
DENSE_MAX_NODES = 12_000


def rld_graph(X, temperature: float, k: int | None = None, *, symmetrize: bool = True,
              dense_max_nodes: int = DENSE_MAX_NODES, block_size: int | None = None,
              progress: bool | None = None, num_threads: int | None = None, normalised: bool = False,
              dtype: torch.dtype | None = None) -> torch.Tensor:
    """The RLD graph of section 2.1 step 3, the authors' GCN graph (section 2.4)::

        W_ij = n^2 E_ij^2 / (r_i r_j),   E_ij = exp(-d_ij / (T mean_{i<j} d_ij)),  W_ii = 0,

    with the authors' n^2 factor (it cancels in RLD, but keeps degrees ~ n so that the GCN's clamp of
    degrees at >= 1 stays inactive). Computed blockwise with the passes of :func:`rld_sweep`.

    k=None: the dense (n, n) tensor, the authors' graph; only for n <= ``dense_max_nodes``. k given: a
    sparse top-k graph as a coalesced torch COO tensor, never holding n x n in memory: each row keeps its
    k largest W_ij (ties broken by ``torch.topk``), then, if `symmetrize`, the graph is (A + A^T) / 2 as
    the authors' ``to_spare`` makes it: an edge kept by both of its ends keeps its weight W_ij = W_ji, an
    edge kept by one end gets half of it. symmetrize=False returns the directed graph A, exactly k entries
    per row, each equal to the dense W at its position. X is not normalised here; work dtype as in
    :func:`rld_sweep` (float64 for float64 input, else float32), on X's device.

    ``dtype`` (dense only): the dtype the graph is stored in (default: the work dtype). ``normalised``
    (dense only): what the GCN trains on, D^-1/2 W D^-1/2 with the degrees clamped at >= 1 (the authors'
    rule; ``clorg.analysis.heads.normalised_adjacency`` for a sparse W), the degrees summed in float64
    over the tiles, each tile scaled in the work dtype, then stored. W is never held whole: the peak
    memory is the result's n^2 entries, 7.2 GB in bfloat16 at 60,000 nodes, where W in float32 and its
    bfloat16 copy would take 21.6 GB. It costs one more pass over the tiles (the degrees).
    """
    X = checks.features(X, "X", min_rows=2)
    (t,) = checks.temperatures([temperature])
    n = X.shape[0]
    if k is None:
        if n > dense_max_nodes:
            raise ValueError(f"k=None builds a dense {n} x {n} graph ({4 * n * n / 2**30:.1f} GB in float32); for "
                             f"more than dense_max_nodes={dense_max_nodes} nodes pass k (e.g. k=50) for a sparse "
                             f"top-k graph")
    else:
        (k,) = checks.neighbour_counts([k], n)
        if normalised or dtype is not None:
            raise ValueError("normalised and dtype are for the dense graph (k=None); normalise a sparse graph "
                             "with clorg.analysis.heads.normalised_adjacency")
    work = torch.float64 if X.dtype == torch.float64 else torch.float32
    size = checks.positive_int(block_size, "block_size", allow_none=True) or \
        (_RLD_BLOCK_GPU if X.device.type == "cuda" else _RLD_BLOCK_CPU)
    blocks = _blocks(n, size)
    n_tri, n_all = len(blocks) * (len(blocks) + 1) // 2, len(blocks) ** 2
    with _cpu_threads(X.device, num_threads), torch.no_grad(), \
            _progress(progress, n, n_tri + (3 if normalised else 2) * n_all, f"RLD graph (n={n}, T={t})") as bar:
        Xw = X.to(work)
        Xw = Xw - (Xw.sum(dim=0, dtype=torch.float64) / n).to(work)  # centred: see `_prepare_rld`
        sq = Xw.square().sum(dim=1)
        mu, nearest = _pass_mean_and_nearest(Xw, sq, blocks, bar)
        if not mu > 0:
            raise ValueError("all rows of X coincide (mean pairwise distance is 0); the graph is undefined")
        coef = -1.0 / (mu * t)
        log_z = _pass_partition(Xw, sq, nearest, [coef], blocks, bar)[0].log().to(work)
        log_n2 = 2 * math.log(n)
        if k is None:
            def weights(I, J):
                return _log_weight_tile(Xw, sq, nearest, coef, log_z, I, J, log_n2).exp_()

            if normalised:  # the degrees first, so that each tile is scaled as it is made
                degree = torch.zeros(n, dtype=torch.float64, device=X.device)
                for I in blocks:
                    for J in blocks:
                        degree[I[0]:I[1]] += weights(I, J).sum(dim=1, dtype=torch.float64)
                        bar.update()
                inv_sqrt = degree.to(work).clamp(min=1).rsqrt()
            W = torch.empty(n, n, dtype=dtype or work, device=X.device)
            for I in blocks:
                for J in blocks:
                    w = weights(I, J)
                    if normalised:
                        w.mul_(inv_sqrt[I[0]:I[1], None]).mul_(inv_sqrt[None, J[0]:J[1]])
                    W[I[0]:I[1], J[0]:J[1]] = w
                    bar.update()
            return W
        rows, cols, vals = [], [], []
        for I in blocks:
            best_v = best_j = None
            for J in blocks:
                tile = _log_weight_tile(Xw, sq, nearest, coef, log_z, I, J, log_n2)
                v, j = tile.topk(min(k, J[1] - J[0]), dim=1)
                j += J[0]
                if best_v is not None:  # merge with the best so far: top-k of the union
                    v, pos = torch.cat([best_v, v], dim=1).topk(k, dim=1)
                    j = torch.cat([best_j, j], dim=1).gather(1, pos)
                best_v, best_j = v, j
                bar.update()
            rows.append(torch.arange(*I, device=X.device).repeat_interleave(k))
            cols.append(best_j.reshape(-1))
            vals.append(best_v.reshape(-1).exp())
    rows, cols, vals = torch.cat(rows), torch.cat(cols), torch.cat(vals)
    if symmetrize:
        return _mean_symmetric(rows, cols, vals, n)
    return torch.sparse_coo_tensor(torch.stack([rows, cols]), vals, (n, n),
                                   check_invariants=False).coalesce()


# ========================================= nearest neighbours =========================================

def nearest_neighbours(X, query_index, k: int) -> np.ndarray:
    """Indices (len(query_index), k) of each query row's k most similar rows of ``X`` by cosine similarity,
    most similar first, the query itself excluded: CHI's neighbours, by its tie rule (:func:`top_neighbours`),
    for showing them."""
    X = checks.unit_rows(checks.features(X, "X", min_rows=2).to(torch.float32), "X")
    q = torch.as_tensor(np.asarray(query_index), dtype=torch.int64)
    (k,) = checks.neighbour_counts([k], X.shape[0])
    with torch.no_grad():
        S = X[q] @ X.T
        S[torch.arange(len(q)), q] = -math.inf
        return top_neighbours(S, k)[1].cpu().numpy()
