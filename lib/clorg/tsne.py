"""t-SNE embeddings of the feature sets at several perplexities (paper SPEC, section 4).

The authors: 25,000 random training features, min-max scaled, PCA to 50 dimensions, *exact* t-SNE at
perplexities 25, 2500 and 24900 (0.001, 0.1 and 0.996 of the sample). We keep those ratios at the
profile's sample size (:func:`perplexities`) and the same preprocessing (:func:`preprocess`), and run
openTSNE: FFT-interpolated repulsion, all cores, PCA initialisation, seeded.

Affinities, and what openTSNE would otherwise do behind our back. ``openTSNE.TSNE(perplexity=P)`` builds
a ``MultiscaleMixture`` that, when 3P > n - 1, *replaces* P by (n - 1) / 3 with only a log warning: at
P = 0.996 n that is a third of the requested perplexity, a different experiment. ``PerplexityBasedNN``
with ``k_neighbors = min(n - 1, 3P)`` does not clip while P < k, and with k = n - 1 its affinities are
the exact Gaussian ones over all points (the row perplexities hit P to ~1e-5 at P = 4,980 of 5,000). So
:func:`tsne_embedding` builds that affinity object itself, with exact neighbours (Annoy would return an
approximate and slow "all points"), and says in a note which affinity it used:

- P < k: Gaussian affinities at perplexity P over the k nearest neighbours (k = min(n - 1, 3P));
- P >= k (only for P >= n - 1, or under the memory cap below): uniform affinities over the k nearest
  neighbours, the limit of a Gaussian whose perplexity reaches its neighbour count.

Memory rule. The affinity matrix holds n * k entries; building and symmetrising it peaks at ~50 bytes an
entry (1.5 GB peak RSS for n = 5,000, k = 4,999). We cap k at ``max_affinities // n`` (default 100 M entries,
~5 GB): all of the paper's perplexities run exactly up to n = 10,000; at the paper's n = 25,000 the cap
is k = 4,000, so P = 2,500 is truncated to its 4,000 nearest neighbours and P = 24,900 becomes uniform
over them. The note says so; raise ``max_affinities`` on a machine with the memory.

Everything here is a pure function of arrays: no file IO, results are returned.
"""

from __future__ import annotations

import numpy as np
from openTSNE import TSNE
from openTSNE.affinity import PerplexityBasedNN, Uniform
from sklearn.decomposition import PCA
from sklearn.preprocessing import MinMaxScaler
from tqdm import tqdm

PCA_DIM = 50                  # the authors' PCA dimension before t-SNE
MIN_PERPLEXITY = 2.0          # below ~2 a point's "neighbourhood" is one point and t-SNE degenerates
MAX_AFFINITIES = 100_000_000  # cap on n * k affinity entries (see the module docstring)


def perplexities(n: int, ratios) -> tuple[list[float], list[str]]:
    """The perplexities ``ratio * n`` (the authors' ratios at our sample size), each at least
    :data:`MIN_PERPLEXITY`. Returns the values and a note for each ("" unless it was raised)."""
    if n < 2:
        raise ValueError(f"n must be at least 2, got {n}")
    values, notes = [], []
    for r in ratios:
        if not r > 0:
            raise ValueError(f"perplexity ratios must be positive, got {r}")
        p = round(r * n, 2)  # 0.001 * 25000 = 25.000000000000004: keep keys and titles clean
        note = ""
        if p < MIN_PERPLEXITY:
            note = f"perplexity {r:g} x {n:,} = {r * n:g} is below {MIN_PERPLEXITY:g}; used {MIN_PERPLEXITY:g}"
            p = MIN_PERPLEXITY
        values.append(p)
        notes.append(note)
    return values, notes


def sample_indices(labels, size: int, seed: int = 0) -> np.ndarray:
    """Sorted indices of a stratified random sample of ``size`` points: each class gets its share of
    ``size`` (largest remainders round), drawn without replacement. The authors drew plain random
    points; on balanced data the two agree in expectation, and stratifying keeps small samples
    (smoke profile) from under-representing a class. All indices when ``size >= len(labels)``."""
    labels = np.asarray(labels)
    n = len(labels)
    if size < 1:
        raise ValueError(f"size must be positive, got {size}")
    if size >= n:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    share = counts * size / n
    take = np.floor(share).astype(int)
    extra = np.argsort(-(share - take), kind="stable")[: size - take.sum()]
    take[extra] += 1
    picks = [rng.choice(np.flatnonzero(labels == c), size=t, replace=False) for c, t in zip(classes, take)]
    return np.sort(np.concatenate(picks))


def preprocess(X, seed: int = 0) -> np.ndarray:
    """The authors' preprocessing: min-max scale every feature to [0, 1], then PCA to
    min(50, D, n - 1) dimensions. float64, as openTSNE wants."""
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or len(X) < 2:
        raise ValueError(f"X must be 2-D with at least 2 rows, got shape {X.shape}")
    if not np.isfinite(X).all():
        raise ValueError("X has non-finite values")
    X = MinMaxScaler().fit_transform(X)
    dim = min(PCA_DIM, X.shape[1], len(X) - 1)
    return PCA(n_components=dim, random_state=seed).fit_transform(X)


def _affinities(X: np.ndarray, perplexity: float, seed: int, n_jobs: int, max_affinities: int):
    """openTSNE affinities for ``perplexity`` on preprocessed ``X`` and a note saying which they are."""
    n = len(X)
    wanted = min(n - 1, int(3 * perplexity))  # openTSNE's neighbour count for this perplexity
    k = max(1, min(wanted, max_affinities // n))
    capped = k < wanted
    cap = f" (memory cap: n x k <= {max_affinities:,} affinities)" if capped else ""
    if perplexity < k:
        aff = PerplexityBasedNN(X, perplexity=perplexity, k_neighbors=k, method="exact",
                                n_jobs=n_jobs, random_state=seed)
        where = f"all {k:,} other points (exact)" if k == n - 1 else f"the {k:,} nearest neighbours{cap}"
        return aff, f"perplexity {perplexity:,g} over {where}"
    aff = Uniform(X, k_neighbors=k, method="exact", n_jobs=n_jobs, random_state=seed)
    where = f"all {k:,} other points" if k == n - 1 else f"the {k:,} nearest neighbours{cap}"
    return aff, (f"perplexity {perplexity:,g} needs at least {perplexity:,g} neighbours; "
                 f"used uniform affinities over {where} instead (the limit of a Gaussian whose "
                 f"perplexity reaches its neighbour count)")


def tsne_embedding(X, perplexity: float, seed: int = 0, n_jobs: int = -1,
                   max_affinities: int = MAX_AFFINITIES) -> tuple[np.ndarray, str]:
    """2-D openTSNE embedding of raw features ``X`` (n, D) at ``perplexity``, after :func:`preprocess`.

    Returns ``(Y, note)``: Y (n, 2) float64 and a note naming the affinities actually used (see the
    module docstring; never a silent clip). The same ``seed`` gives the same Y."""
    if not perplexity > 0:
        raise ValueError(f"perplexity must be positive, got {perplexity}")
    Xp = preprocess(X, seed)
    aff, note = _affinities(Xp, float(perplexity), seed, n_jobs, max_affinities)
    tsne = TSNE(negative_gradient_method="fft", initialization="pca", n_jobs=n_jobs, random_state=seed)
    Y = np.asarray(tsne.fit(Xp, affinities=aff), dtype=np.float64)
    return Y, note


def tsne_grid_embeddings(features: dict[str, np.ndarray], labels, sample_size: int, ratios,
                         seed: int = 0, n_jobs: int = -1, max_affinities: int = MAX_AFFINITIES,
                         ) -> dict[tuple[str, float], tuple[np.ndarray, str]]:
    """Embeddings for the t-SNE grid: ``{(column, perplexity): (Y, note)}``.

    ``features`` maps a column name (e.g. "CL ResNet-18") to training features whose rows match
    ``labels``. Every column uses the same sample, ``sample_indices(labels, sample_size, seed)``
    (colour the points with ``labels[that]``), and the perplexities ``perplexities(n, ratios)``; a
    raised perplexity is noted in its notes."""
    labels = np.asarray(labels)
    for name, F in features.items():
        if len(F) != len(labels):
            raise ValueError(f"features[{name!r}] has {len(F)} rows but labels has {len(labels)}")
    idx = sample_indices(labels, sample_size, seed)
    ps, raised = perplexities(len(idx), ratios)
    out = {}
    jobs = [(name, p, r) for name in features for p, r in zip(ps, raised)]
    for name, p, r in tqdm(jobs, desc=f"t-SNE of {len(idx):,} points", unit="embedding"):
        Y, note = tsne_embedding(features[name][idx], p, seed=seed, n_jobs=n_jobs,
                                 max_affinities=max_affinities)
        out[name, p] = Y, "; ".join(filter(None, [r, note]))
    return out


# ================================ claim 5: are the classes separated? ================================

SEPARATION_K = 10  # neighbours for the 2-D class purity; small: it asks "is my map neighbourhood my class"


def map_purity(embeddings: dict, labels, k: int = SEPARATION_K) -> dict:
    """CHI(k) of each 2-D map, ``{(column, perplexity): purity}``: the share of a point's k nearest
    map neighbours in its class. Ten separated classes score near the features' own purity; one mixed
    disc scores near chance (about 0.1 for ten balanced classes)."""
    from .metrics import chi

    labels = np.asarray(labels)
    out = {}
    for key, Y in embeddings.items():
        Y = np.asarray(Y[0] if isinstance(Y, tuple) else Y)
        out[key] = chi(Y, labels, [k], progress=False)[k]
    return out


def check_claim5(purity: dict, columns: dict[str, str], perplexities) -> list[dict]:
    """Claim 5 per encoder: SL keeps its classes apart at every perplexity, CL only at the smallest.

    ``columns`` maps each column to ``(kind, encoder)``, kind "CL" or "SL". Checked as: from the smallest to the largest perplexity
    the map purity of CL falls by more than 0.1 and that of SL by less than 0.05 (the same two-sided form
    as claim 1)."""
    lo, hi = min(perplexities), max(perplexities)
    rows = []
    for enc in sorted({e for _, e in columns.values()}):
        sl = [c for c, (kind, e) in columns.items() if e == enc and kind == "SL"]
        for cl in (c for c, (kind, e) in columns.items() if e == enc and kind == "CL"):
            drop_cl = purity[cl, lo] - purity[cl, hi]
            row = {"claim": 5, "encoder": enc, "contrastive": cl, "drop CL": drop_cl}
            if not sl:
                rows.append({**row, "numbers": f"map purity drop CL {drop_cl:.3f}; no SL column", "holds": None})
                continue
            drop_sl = purity[sl[0], lo] - purity[sl[0], hi]
            rows.append({**row, "drop SL": drop_sl,
                         "numbers": (f"map CHI({SEPARATION_K}) at perplexity {lo:,g} -> {hi:,g}: "
                                     f"CL {purity[cl, lo]:.3f} -> {purity[cl, hi]:.3f}, "
                                     f"SL {purity[sl[0], lo]:.3f} -> {purity[sl[0], hi]:.3f}"),
                         "holds": bool(drop_cl > 0.1 and drop_sl < 0.05)})
    return rows
