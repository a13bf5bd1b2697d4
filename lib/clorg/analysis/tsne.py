"""t-SNE embeddings of the feature sets at several perplexities (paper SPEC, sections 4 and 8).

The authors: 25,000 random training features, one global min and max (``X -= X.min(); X /= X.max()``,
which keeps the geometry), PCA to 50 dimensions, *exact* t-SNE (their own O(n^2) torch code) at
perplexities 25, 2500 and 24900 (0.001, 0.1 and 0.996 of the sample), from a random N(0, 1) start, with
early exaggeration 4 for the first 101 steps (0 to 100: their ``if iter == 100: P /= 4`` follows that step), 1000 steps, momentum 0.5 then 0.8 (from step 20) and
learning rate 500 (their gradient omits the factor 4, as openTSNE's does, so 500 means the same here).

We keep those ratios at the profile's sample size (:func:`perplexities`), the same preprocessing
(:func:`preprocess`) and their schedule (:func:`optimise`, with the profile's ``tsne`` settings). Four
choices of the profile's ``tsne`` section say how close to the authors a map is (the fidelity page sets
each profile's beside theirs); the `paper` profile takes the authors' four:

- ``start``: ``normal``, their N(0, 1) start as drawn; or ``rescaled``, the same draw scaled to openTSNE's
  standard deviation of 1e-4. t-SNE is not scale-free: the two start the optimisation at different
  distances, so their maps differ.
- ``neighbours``: ``all``, Gaussian affinities over all other points, as theirs; or ``3P``, over the 3P
  nearest (openTSNE's rule; the Gaussian mass beyond them is what the approximation drops).
- ``sample``: ``per map``, a fresh random sample for every map, as theirs; or ``shared``, one sample for
  every map, so that maps of one feature set differ only by the perplexity.
- ``gradient``: ``exact``, their O(n^2) gradient (:func:`exact_optimise`, a port of their own loop, on
  the profile's device); or ``fft``, openTSNE's FFT-interpolated repulsion, which lets 25,000 points run
  on CPUs (bench/tsne_exact.py measures how far its maps lie from exact ones).

Our samples are stratified by class (:func:`sample_indices`); theirs were plain random draws, which agree
in expectation on balanced classes.

Affinities, and what openTSNE would otherwise do behind our back. ``openTSNE.TSNE(perplexity=P)`` builds
a ``MultiscaleMixture`` that, when 3P > n - 1, *replaces* P by (n - 1) / 3 with only a log warning: at
P = 0.996 n that is a third of the requested perplexity, a different experiment. ``PerplexityBasedNN``
with ``k_neighbors = min(n - 1, 3P)`` does not clip while P < k, and with k = n - 1 its affinities are
the exact Gaussian ones over all points (the row perplexities hit P to ~1e-5 at P = 4,980 of 5,000). So
:func:`tsne_embedding` builds that affinity object itself, with exact neighbours (Annoy would return an
approximate and slow "all points"), and says in a note which affinity it used:

- P < k: Gaussian affinities at perplexity P over the k nearest neighbours (k = n - 1 for ``all``,
  min(n - 1, 3P) for ``3P``);
- P >= k (only for P >= n - 1, or under the memory cap below): uniform affinities over the k nearest
  neighbours, the limit of a Gaussian whose perplexity reaches its neighbour count.

Memory rule. The affinity matrix holds n * k entries; building and symmetrising it peaks at ~50 bytes an
entry (1.5 GB peak RSS for n = 5,000, k = 4,999). We cap k at ``max_affinities // n`` (the profile's
``tsne.max_affinities``; 100 M entries, ~5 GB, on the CPU profiles): all of the paper's perplexities run
exactly up to n = 10,000. The ``paper`` profile, for a machine with 128 GB of memory, allows all
25,000 x 24,999 of them, so with ``neighbours: all`` its three perplexities use exact Gaussian affinities
over all points, as the authors' did. Under a cap, the note says which perplexity was truncated to how
many neighbours.

Everything here is a pure function of arrays: no file IO, results are returned.
"""

from __future__ import annotations

import numpy as np
import torch
from openTSNE import TSNEEmbedding
from openTSNE.affinity import PerplexityBasedNN, Uniform
from openTSNE.initialization import rescale
from openTSNE.nearest_neighbors import PrecomputedNeighbors, Sklearn
from sklearn.decomposition import PCA
from tqdm import tqdm

from ..core import checks, criteria
from ..core.devices import default_device
from . import records as R

PCA_DIM = 50                  # the authors' PCA dimension before t-SNE
MIN_PERPLEXITY = 2.0          # below ~2 a point's "neighbourhood" is one point and t-SNE degenerates
MAX_AFFINITIES = 100_000_000  # default cap on n * k affinity entries (see the module docstring)
MOMENTUM_SWITCH = 20          # the authors' momentum is 0.5 before this step, 0.8 from it on
MIN_GAIN = 0.01               # their gains' floor (delta-bar-delta: +0.2 on a sign change, x0.8 otherwise)
# their floors (tsne_torch.py): the *exaggerated* P at 1e-16 (``P = torch.max(P * 4, 1e-16)``, divided by 4
# after the exaggeration, so P itself is floored at 1e-16 / exaggeration), and Q at 1e-12
P_FLOOR_EXAGGERATED = 1e-16
Q_FLOOR = 1e-12
# the four choices of the profile's tsne section (module docstring): the authors' first
STARTS, NEIGHBOURS, SAMPLES, GRADIENTS = ("normal", "rescaled"), ("all", "3P"), ("per map", "shared"), ("exact", "fft")


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


def preprocess(X) -> np.ndarray:
    """The authors' preprocessing: subtract the global minimum and divide by the global maximum of the
    whole matrix (one scale for every feature, so distances keep their proportions), then PCA to
    min(50, D, n - 1) dimensions by an exact SVD, as theirs (scikit-learn's default picks a randomized
    solver below 10 D points of D dimensions, whose distances are off by up to 0.7 % on 5,000 features of
    512). float64, as openTSNE wants."""
    X = checks.features(X, "X", min_rows=2, dtype=None).numpy().astype(np.float64)
    X = X - X.min()
    top = X.max()
    if top > 0:
        X /= top
    dim = min(PCA_DIM, X.shape[1], len(X) - 1)
    return PCA(n_components=dim, svd_solver="full").fit_transform(X)


def initial_embedding(n: int, seed: int, start: str) -> np.ndarray:
    """The authors' random N(0, 1) start: as drawn (``start="normal"``, theirs) or rescaled to openTSNE's
    standard deviation of 1e-4 (``"rescaled"``). The same seed draws the same points for both."""
    if start not in STARTS:
        raise ValueError(f"start must be one of {list(STARTS)}, got {start!r}")
    Y = np.random.default_rng(seed).standard_normal((n, 2))
    return Y if start == "normal" else rescale(Y)


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


def _shifted_neighbours(X: np.ndarray, k: int, seed: int, n_jobs: int) -> PrecomputedNeighbors:
    """The exact ``k`` nearest neighbours of every row of ``X``, with each row's squared distances shifted so
    that its nearest neighbour is at 0. A row's Gaussian affinities exp(-beta d^2) / sum, their entropy and so
    the perplexity search are unchanged by the shift in exact arithmetic; openTSNE's search, though, adds
    2.2e-16 to a row's sum of kernel values, which outweighs the whole sum for a point far from its nearest
    neighbour at a small perplexity (292 rows of 3,000 of quick's MoCo features wrong at perplexity 3).
    Shifted, every row's largest kernel value is the one at distance 0, far above that addition, as in the
    authors' x2p (which has no such term). In place: the paper profile's n x k is 25,000 x 24,999."""
    neighbours, distances = Sklearn(X, k, "euclidean", n_jobs=n_jobs, random_state=seed).build()  # method "exact"
    squared = np.asarray(distances, dtype=np.float64)  # ours to change: no copy when already float64
    np.square(squared, out=squared)
    squared -= squared[:, :1].copy()
    return PrecomputedNeighbors(neighbours, np.sqrt(squared, out=squared))


def _affinities(X: np.ndarray, perplexity: float, seed: int, n_jobs: int, max_affinities: int,
                neighbours: str):
    """openTSNE affinities for ``perplexity`` on preprocessed ``X`` and a note saying which they are:
    over all other points (``neighbours="all"``) or the 3P nearest (``"3P"``), within the memory cap."""
    if neighbours not in NEIGHBOURS:
        raise ValueError(f"neighbours must be one of {list(NEIGHBOURS)}, got {neighbours!r}")
    n = len(X)
    # all points, or openTSNE's neighbour count for this perplexity
    wanted = n - 1 if neighbours == "all" else min(n - 1, int(3 * perplexity))
    k = max(1, min(wanted, max_affinities // n))
    capped = k < wanted
    cap = f" (memory cap: n x k <= {max_affinities:,} affinities)" if capped else ""
    if perplexity < k:
        aff = PerplexityBasedNN(perplexity=perplexity, knn_index=_shifted_neighbours(X, k, seed, n_jobs),
                                n_jobs=n_jobs, random_state=seed)
        where = f"all {k:,} other points (exact)" if k == n - 1 else f"the {k:,} nearest neighbours{cap}"
        return aff, f"perplexity {perplexity:,g} over {where}"
    aff = Uniform(X, k_neighbors=k, method="exact", n_jobs=n_jobs, random_state=seed)
    where = f"all {k:,} other points" if k == n - 1 else f"the {k:,} nearest neighbours{cap}"
    return aff, (f"perplexity {perplexity:,g} needs at least {perplexity:,g} neighbours; "
                 f"used uniform affinities over {where} instead (the limit of a Gaussian whose "
                 f"perplexity reaches its neighbour count)")


def exact_gradient(P: torch.Tensor, Y: torch.Tensor, exaggeration: float = 1.0, eye=None) -> torch.Tensor:
    """The authors' t-SNE gradient at ``Y`` (n, 2) for joint probabilities ``P`` (n, n): sum_j (a P_ij -
    Q_ij) num_ij (y_i - y_j), a quarter of the gradient of KL(aP || Q) (their loop, like openTSNE, leaves
    out the factor 4, so their learning rate means the same in both). Every pair, O(n^2)."""
    if eye is None:
        eye = torch.eye(len(Y), dtype=torch.bool, device=Y.device)
    sq = (Y * Y).sum(1)
    num = 1.0 / (1.0 + (sq[:, None] + sq[None, :] - 2.0 * Y @ Y.T).clamp_min(0.0))
    num.masked_fill_(eye, 0.0)
    Q = (num / num.sum()).clamp_min(Q_FLOOR)
    W = (exaggeration * P - Q) * num
    return W.sum(1, keepdim=True) * Y - W @ Y  # sum_j W_ij (y_i - y_j), W symmetric


def exact_optimise(P, Y0: np.ndarray, settings: dict, device=None) -> np.ndarray:
    """The authors' exact t-SNE loop (their ``tsne_torch.py``, after van der Maaten's ``tsne.py``) from
    the start ``Y0`` on the joint probabilities ``P`` (symmetric, summing to 1; sparse or dense), on
    ``device`` (default: the GPU when there is one). Every pair enters the gradient:

    num_ij = 1 / (1 + |y_i - y_j|^2) (0 on the diagonal), Q = num / sum(num) floored at 1e-12, P floored
    at 1e-16 / exaggeration (their floor of the exaggerated P); dY_i = sum_j (a P_ij - Q_ij) num_ij
    (y_i - y_j) (no factor 4, as theirs), with a = the exaggeration for the first ``exaggeration_iterations`` steps, then 1; gains +0.2 where the gradient's
    sign differs from the last update's, x0.8 where not, floored at 0.01; update = momentum x update -
    learning_rate x gains x dY (momentum 0.5 before step 20, then 0.8); Y centred after every step.
    Memory: five n x n float32 matrices (2.5 GB each at n = 25,000)."""
    device = torch.device(default_device() if device is None else device)
    n = len(Y0)
    if hasattr(P, "toarray"):
        P = P.toarray()
    floor = P_FLOOR_EXAGGERATED / settings["exaggeration"]
    P = torch.as_tensor(np.asarray(P), dtype=torch.float32, device=device).clamp_min(floor)
    Y = torch.as_tensor(Y0, dtype=torch.float32, device=device).clone()
    update, gains = torch.zeros_like(Y), torch.ones_like(Y)
    eye = torch.eye(n, dtype=torch.bool, device=device)
    total, ee = settings["iterations"], min(settings["exaggeration_iterations"], settings["iterations"])
    for step in range(total):
        grad = exact_gradient(P, Y, settings["exaggeration"] if step < ee else 1.0, eye)
        momentum = 0.5 if step < MOMENTUM_SWITCH else 0.8
        flipped = (grad > 0) != (update > 0)
        gains = torch.where(flipped, gains + 0.2, gains * 0.8).clamp_min(MIN_GAIN)
        update = momentum * update - settings["learning_rate"] * gains * grad
        Y = Y + update
        Y = Y - Y.mean(0)
    if not torch.isfinite(Y).all():
        raise ValueError("the exact t-SNE diverged (non-finite map); lower tsne.learning_rate")
    return Y.double().cpu().numpy()


def tsne_embedding(X, perplexity: float, settings: dict, seed: int = 0, n_jobs: int = -1) -> tuple[np.ndarray, str]:
    """2-D embedding of raw features ``X`` (n, D) at ``perplexity``, after :func:`preprocess`, with the
    authors' schedule (``settings``: the profile's ``tsne`` section: its ``start``, ``neighbours`` and
    ``gradient`` choices, and ``max_affinities`` capping the affinity matrix). Returns ``(Y, note)``: Y
    (n, 2) float64 and a note naming the affinities actually used (see the module docstring; never a
    silent clip). The same ``seed`` gives the same Y."""
    if not perplexity > 0:
        raise ValueError(f"perplexity must be positive, got {perplexity}")
    gradient = settings["gradient"]
    if gradient not in GRADIENTS:
        raise ValueError(f"gradient must be one of {list(GRADIENTS)}, got {gradient!r}")
    Xp = preprocess(X)
    aff, note = _affinities(Xp, float(perplexity), seed, n_jobs, settings.get("max_affinities", MAX_AFFINITIES),
                            settings["neighbours"])
    Y0 = initial_embedding(len(Xp), seed, settings["start"])
    if gradient == "exact":
        return exact_optimise(aff.P, Y0, settings), note + "; exact gradient"
    embedding = TSNEEmbedding(Y0, aff, negative_gradient_method="fft", n_jobs=n_jobs, random_state=seed)
    return np.asarray(optimise(embedding, settings), dtype=np.float64), note


def map_labels(grid: dict, i: int, j: int) -> np.ndarray:
    """The class labels of the points of map (feature set ``i``, perplexity ``j``) of a t-SNE grid: one
    sample for every map (``labels`` of shape (n,)) or a sample per map (shape (sets, perplexities, n))."""
    labels = np.asarray(grid["labels"])
    return labels if labels.ndim == 1 else labels[i, j]


def tsne_grid(features, labels, settings: dict, seed: int = 0, n_jobs: int = -1) -> dict:
    """The t-SNE grid (SPEC 4): every feature set of ``features`` (each with ``train``) at the profile's
    perplexity ratios, on stratified samples of ``settings["sample_size"]`` training points: one for
    every map (``sample: shared``) or a fresh one per map (``per map``, the authors').

    Returns arrays for the results store: ``Y`` (sets, perplexities, n, 2) float32, ``notes`` (sets,
    perplexities), ``indices`` and ``labels`` of the samples ((n,) when shared, (sets, perplexities, n)
    per map; :func:`map_labels` reads either), ``perplexities``, and the sets' identity fields
    ``encoder``, ``method``, ``schedule``, ``epoch`` (one entry per set)."""
    labels = np.asarray(labels)
    for f in features:
        if len(f.train) != len(labels):
            raise ValueError(f"{f.encoder} {f.method}: {len(f.train)} training features but {len(labels)} labels")
    sample = settings["sample"]
    if sample not in SAMPLES:
        raise ValueError(f"sample must be one of {list(SAMPLES)}, got {sample!r}")
    size = min(settings["sample_size"], len(labels))
    ps, raised = perplexities(size, settings["perplexity_ratios"])
    jobs = [(i, j) for i in range(len(features)) for j in range(len(ps))]
    # per map: map (i, j) draws with its own seed, so that any one map can be made again alone
    idx = {job: sample_indices(labels, size, seed if sample == "shared" else seed + 1 + n)
           for n, job in enumerate(jobs)}
    Y = np.zeros((len(features), len(ps), size, 2), dtype=np.float32)
    notes = np.empty((len(features), len(ps)), dtype=object)
    for i, j in tqdm(jobs, desc=f"t-SNE of {size:,} points", unit="map"):
        emb, note = tsne_embedding(features[i].train[idx[i, j]], ps[j], settings, seed=seed, n_jobs=n_jobs)
        Y[i, j], notes[i, j] = emb, "; ".join(filter(None, [raised[j], note]))
    if sample == "shared":
        indices = idx[jobs[0]]
    else:
        indices = np.stack([np.stack([idx[i, j] for j in range(len(ps))]) for i in range(len(features))])
    ident = {k: np.array([f.identity[k] for f in features]) for k in ("encoder", "method", "schedule", "epoch")}
    return {"Y": Y, "notes": notes.astype(str), "indices": indices, "labels": labels[indices],
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
    out = []
    for i in range(len(grid["Y"])):
        ident = {k: grid[k][i].item() for k in ("encoder", "method", "schedule", "epoch")}
        for j, p in enumerate(grid["perplexities"]):
            labels = map_labels(grid, i, j)
            k_wide = wide_k(labels)
            purity = map_purity(grid["Y"][i, j], labels, [SEPARATION_K, k_wide])
            out.append(R.record(ident, R.MAP_PURITY, purity[SEPARATION_K], parameter=float(p)))
            out.append(R.record(ident, R.MAP_PURITY_WIDE, purity[k_wide], parameter=float(p)))
    return out
