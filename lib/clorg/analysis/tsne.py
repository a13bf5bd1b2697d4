"""t-SNE embeddings of the feature sets at several perplexities (paper SPEC, sections 4 and 8).

The authors: 25,000 random training features, one global min and max (``X -= X.min(); X /= X.max()``,
which keeps the geometry), PCA to 50 dimensions, *exact* t-SNE (their own O(n^2) torch code) at
perplexities 25, 2500 and 24900 (0.001, 0.1 and 0.996 of the sample), from a random N(0, 1) start, with
early exaggeration 4 for the first 101 steps (0 to 100: their ``if iter == 100: P /= 4`` follows that step), 1000 steps, momentum 0.5 then 0.8 (from step 20) and
learning rate 500 (their gradient omits the factor 4, as openTSNE's does, so 500 means the same here).

We keep those ratios at the profile's sample size (:func:`perplexities`), the same preprocessing
(:func:`preprocess`), their start (N(0, 1), scaled to openTSNE's standard deviation of 1e-4, which only
sets the scale the optimisation starts from) and their schedule (:func:`optimise`, with the profile's
``tsne`` settings), and run openTSNE: exact affinities (below), FFT-interpolated repulsion, all cores,
seeded. The repulsion is the one approximation left; it is what lets 25,000 points run on CPUs.

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
entry (1.5 GB peak RSS for n = 5,000, k = 4,999). We cap k at ``max_affinities // n`` (the profile's
``tsne.max_affinities``; 100 M entries, ~5 GB, on the CPU profiles): all of the paper's perplexities run
exactly up to n = 10,000. The ``paper`` profile, for a machine with 128 GB of memory, allows all
25,000 x 24,999 of them, so its three perplexities use exact Gaussian affinities over all points, as the
authors' did. Under a cap, the note says which perplexity was truncated to how many neighbours.

Everything here is a pure function of arrays: no file IO, results are returned.
"""

from __future__ import annotations

import numpy as np
from openTSNE import TSNEEmbedding
from openTSNE.affinity import PerplexityBasedNN, Uniform
from openTSNE.initialization import rescale
from sklearn.decomposition import PCA
from tqdm import tqdm

from ..core import checks, criteria
from . import records as R

PCA_DIM = 50                  # the authors' PCA dimension before t-SNE
MIN_PERPLEXITY = 2.0          # below ~2 a point's "neighbourhood" is one point and t-SNE degenerates
MAX_AFFINITIES = 100_000_000  # default cap on n * k affinity entries (see the module docstring)
MOMENTUM_SWITCH = 20          # the authors' momentum is 0.5 before this step, 0.8 from it on


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
    """The authors' preprocessing: subtract the global minimum and divide by the global maximum of the
    whole matrix (one scale for every feature, so distances keep their proportions), then PCA to
    min(50, D, n - 1) dimensions. float64, as openTSNE wants."""
    X = checks.features(X, "X", min_rows=2, dtype=None).numpy().astype(np.float64)
    X = X - X.min()
    top = X.max()
    if top > 0:
        X /= top
    dim = min(PCA_DIM, X.shape[1], len(X) - 1)
    return PCA(n_components=dim, random_state=seed).fit_transform(X)


def initial_embedding(n: int, seed: int) -> np.ndarray:
    """The authors' random N(0, 1) start, rescaled to openTSNE's standard deviation of 1e-4."""
    return rescale(np.random.default_rng(seed).standard_normal((n, 2)))


def optimise(embedding: TSNEEmbedding, settings: dict) -> TSNEEmbedding:
    """The authors' schedule on an openTSNE embedding: ``settings`` holds the profile's ``iterations``,
    ``exaggeration_iterations``, ``exaggeration`` and ``learning_rate``; momentum 0.5 before step
    :data:`MOMENTUM_SWITCH`, then 0.8. The gains and momentum state carry over between the phases."""
    total = settings["iterations"]
    ee = min(settings["exaggeration_iterations"], total)
    bounds = sorted({0, min(MOMENTUM_SWITCH, total), ee, total})
    for start, stop in zip(bounds, bounds[1:]):
        embedding = embedding.optimize(stop - start, inplace=True, learning_rate=settings["learning_rate"],
                                       exaggeration=settings["exaggeration"] if start < ee else None,
                                       momentum=0.5 if start < MOMENTUM_SWITCH else 0.8)
    return embedding


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


def tsne_embedding(X, perplexity: float, settings: dict, seed: int = 0, n_jobs: int = -1) -> tuple[np.ndarray, str]:
    """2-D embedding of raw features ``X`` (n, D) at ``perplexity``, after :func:`preprocess`, with the
    authors' start and schedule (``settings``: the profile's ``tsne`` section; its ``max_affinities``
    caps the affinity matrix). Returns ``(Y, note)``: Y (n, 2) float64 and a note naming the affinities
    actually used (see the module docstring; never a silent clip). The same ``seed`` gives the same Y."""
    if not perplexity > 0:
        raise ValueError(f"perplexity must be positive, got {perplexity}")
    Xp = preprocess(X, seed)
    aff, note = _affinities(Xp, float(perplexity), seed, n_jobs, settings.get("max_affinities", MAX_AFFINITIES))
    embedding = TSNEEmbedding(initial_embedding(len(Xp), seed), aff, negative_gradient_method="fft",
                              n_jobs=n_jobs, random_state=seed)
    return np.asarray(optimise(embedding, settings), dtype=np.float64), note


def tsne_grid(features, labels, settings: dict, seed: int = 0, n_jobs: int = -1) -> dict:
    """The t-SNE grid (SPEC 4): every feature set of ``features`` (each with ``train``) on one stratified
    sample of ``settings["sample_size"]`` training points, at the profile's perplexity ratios.

    Returns arrays for the results store: ``Y`` (sets, perplexities, n, 2) float32, ``notes`` (sets,
    perplexities), ``indices`` and ``labels`` of the sample, ``perplexities``, and the sets' identity
    fields ``encoder``, ``method``, ``schedule``, ``epoch`` (one entry per set)."""
    labels = np.asarray(labels)
    for f in features:
        if len(f.train) != len(labels):
            raise ValueError(f"{f.encoder} {f.method}: {len(f.train)} training features but {len(labels)} labels")
    idx = sample_indices(labels, settings["sample_size"], seed)
    ps, raised = perplexities(len(idx), settings["perplexity_ratios"])
    Y = np.zeros((len(features), len(ps), len(idx), 2), dtype=np.float32)
    notes = np.empty((len(features), len(ps)), dtype=object)
    jobs = [(i, j) for i in range(len(features)) for j in range(len(ps))]
    for i, j in tqdm(jobs, desc=f"t-SNE of {len(idx):,} points", unit="map"):
        emb, note = tsne_embedding(features[i].train[idx], ps[j], settings, seed=seed, n_jobs=n_jobs)
        Y[i, j], notes[i, j] = emb, "; ".join(filter(None, [raised[j], note]))
    ident = {k: np.array([f.identity[k] for f in features]) for k in ("encoder", "method", "schedule", "epoch")}
    return {"Y": Y, "notes": notes.astype(str), "indices": idx, "labels": labels[idx],
            "perplexities": np.array(ps), **ident}


# ================================ claim 5: are the classes separated? ================================

SEPARATION_K = criteria.MAP_PURITY_K  # map neighbours of the local purity, claim 5's P(p): "is my map neighbourhood my class"
WIDE_K = 500            # map neighbours for the global purity (at most a class's size minus one)


def wide_k(labels) -> int:
    """The global purity's k: :data:`WIDE_K`, or one below the smallest class of the sample."""
    return int(min(WIDE_K, np.unique(np.asarray(labels), return_counts=True)[1].min() - 1))


def map_purity(Y, labels, ks) -> dict[int, float]:
    """For each k: the mean share of a point's k nearest map neighbours (Euclidean distance in the 2-D
    map, the point itself excluded) that share its class. On a map, distance is what the eye reads;
    cosine similarity (CHI's, for features) would measure angles around the map's origin instead."""
    from sklearn.neighbors import NearestNeighbors

    Y = checks.features(Y, "Y", min_rows=2, dtype=None).numpy()
    labels = np.asarray(labels)
    k_max = max(ks)
    if not 1 <= k_max < len(Y):
        raise ValueError(f"k must satisfy 1 <= k < n (= {len(Y)}), got {k_max}")
    _, idx = NearestNeighbors(n_neighbors=k_max + 1).fit(Y).kneighbors(Y)
    # drop each point itself (the nearest at distance 0; with duplicates, whichever of them is its own row)
    own = idx == np.arange(len(Y))[:, None]
    keep = np.where(own.any(axis=1, keepdims=True), ~own, np.arange(k_max + 1)[None, :] < k_max)
    neighbours = idx[keep].reshape(len(Y), k_max)
    same = labels[neighbours] == labels[:, None]
    return {int(k): float(same[:, :k].mean()) for k in ks}


def map_purity_records(grid: dict) -> list[dict]:
    """Records of each map's purity at two scales (:func:`map_purity`): k = 10 (``map_purity``: local, are
    a point's map neighbours its class) and k = :func:`wide_k` (``map_purity_wide``: global, does a class
    hold together over a class-sized neighbourhood). The parameter is the perplexity. Ten separated
    classes score near 1 on both; one mixed disc near chance (0.1 for ten balanced classes)."""
    labels, out = np.asarray(grid["labels"]), []
    k_wide = wide_k(labels)
    for i in range(len(grid["Y"])):
        ident = {k: grid[k][i].item() for k in ("encoder", "method", "schedule", "epoch")}
        for j, p in enumerate(grid["perplexities"]):
            purity = map_purity(grid["Y"][i, j], labels, [SEPARATION_K, k_wide])
            out.append(R.record(ident, R.MAP_PURITY, purity[SEPARATION_K], parameter=float(p)))
            out.append(R.record(ident, R.MAP_PURITY_WIDE, purity[k_wide], parameter=float(p)))
    return out
