"""clorg.analysis.tsne: perplexity mapping, sampling, the authors' preprocessing and schedule, affinities (no
silent clip), determinism, the grid, map purity and its records, and the grid figure."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from openTSNE import TSNEEmbedding  # noqa: E402
from openTSNE.affinity import MultiscaleMixture, PerplexityBasedNN, Uniform  # noqa: E402
from scipy.spatial.distance import pdist  # noqa: E402
from sklearn.neighbors import KNeighborsClassifier  # noqa: E402

from clorg.analysis import records as R  # noqa: E402
from clorg.analysis import tsne  # noqa: E402
from clorg.analysis.metrics import chi  # noqa: E402
from clorg.analysis.tsne import (MIN_PERPLEXITY, MOMENTUM_SWITCH, _affinities, exact_gradient,  # noqa: E402
                                 initial_embedding, map_labels, map_purity, map_purity_records, optimise,
                                 perplexities, preprocess, sample_indices, tsne_embedding, tsne_grid, wide_k)

RATIOS = [0.001, 0.1, 0.996]
# the authors' schedule (the profiles' tsne section)
SETTINGS = {"iterations": 1000, "exaggeration_iterations": 100, "exaggeration": 4.0, "learning_rate": 500.0,
            "start": "rescaled", "neighbours": "3P", "sample": "shared", "gradient": "fft",
            "max_affinities": 100_000_000}
# the same, shorter: enough for 300 points to settle, and a 2-core machine runs it in seconds
FAST = {**SETTINGS, "iterations": 350}


def blobs(n=300, d=20, k=3, sep=20.0, seed=0):
    """k well-separated Gaussian clusters in d dimensions."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % k
    centres = rng.normal(size=(k, d)) * sep
    return centres[labels] + rng.normal(size=(n, d)), labels


@pytest.fixture(scope="module")
def data():
    return blobs()


@pytest.fixture(scope="module")
def small_embedding(data):
    X, _ = data
    return tsne_embedding(X, 10, FAST, seed=0, n_jobs=1)


# ---------------------------------------------- perplexities ----------------------------------------------

def test_perplexities_keep_the_authors_ratios():
    ps, notes = perplexities(25_000, RATIOS)
    assert ps == [25, 2500, 24900]
    assert notes == ["", "", ""]
    assert perplexities(5_000, RATIOS)[0] == [5, 500, 4980]


def test_small_n_raises_tiny_perplexities_with_a_note():
    ps, notes = perplexities(500, RATIOS)
    assert ps == [MIN_PERPLEXITY, 50, 498]
    assert "below" in notes[0] and notes[1:] == ["", ""]
    with pytest.raises(ValueError, match="ratios"):
        perplexities(500, [0.1, 0])


# ----------------------------------------------- sampling -----------------------------------------------

def test_sample_is_stratified_sorted_and_seeded():
    labels = np.repeat(np.arange(4), [100, 200, 300, 400])
    idx = sample_indices(labels, 100, seed=1)
    assert len(idx) == len(np.unique(idx)) == 100 and (np.diff(idx) > 0).all()
    assert np.bincount(labels[idx]).tolist() == [10, 20, 30, 40]
    assert np.array_equal(idx, sample_indices(labels, 100, seed=1))
    assert not np.array_equal(idx, sample_indices(labels, 100, seed=2))
    assert np.array_equal(sample_indices(labels, 5000), np.arange(1000))


# --------------------------------------------- preprocessing ---------------------------------------------

def test_preprocess_scales_and_reduces(data):
    X, _ = data
    assert preprocess(X).shape == (300, 20)  # min(50, D=20, n-1)
    assert preprocess(X[:10]).shape == (10, 9)
    assert preprocess(np.hstack([X] * 5)).shape == (300, 50)
    assert preprocess(X).dtype == np.float64


def test_preprocess_uses_one_global_min_and_max(monkeypatch):
    """The authors' X -= X.min(); X /= X.max(): one scale for the whole matrix, so the geometry is kept:
    every pairwise distance is divided by the same number (per-feature scaling would change their ratios)."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(60, 6)) * np.array([100.0, 1, 1, 0.01, 5, 3]) + 7  # features on very different scales
    seen = []

    class Identity:  # PCA stand-in: records what it is given
        def __init__(self, n_components, **options):
            self.n_components = n_components

        def fit_transform(self, A):
            seen.append(A.copy())
            return A

    monkeypatch.setattr(tsne, "PCA", Identity)
    preprocess(X)
    (before_pca,) = seen
    assert before_pca.min() == 0.0 and before_pca.max() == 1.0
    np.testing.assert_allclose(before_pca, (X - X.min()) / (X.max() - X.min()), rtol=1e-12)
    d_in, d_out = pdist(X), pdist(before_pca)
    np.testing.assert_allclose(d_out / d_in, 1 / (X.max() - X.min()), rtol=1e-9)  # all ratios unchanged
    per_feature = (X - X.min(axis=0)) / (X.max(axis=0) - X.min(axis=0))
    assert np.ptp(pdist(per_feature) / d_in) > 0.1  # what the authors' rule avoids


def test_preprocess_then_full_pca_keeps_distances():
    """With D <= 50 dimensions and n > D, the PCA is a rotation: the distances out are the scaled ones in."""
    X, _ = blobs(n=80, d=10, seed=3)
    np.testing.assert_allclose(pdist(preprocess(X)), pdist(X) / (X.max() - X.min()), rtol=1e-8)


def test_preprocess_pca_is_exact_where_scikit_learn_would_pick_a_randomized_solver():
    """Over 500 x 500 and fewer than 10 D points of D dimensions, scikit-learn's default is a randomized SVD;
    the authors' is exact. The exact projection's distances equal those of the top-50 singular subspace."""
    rng = np.random.default_rng(4)
    X = rng.random((1000, 600))  # over 500 x 500 and 1000 < 10 x 600; a flat spectrum, a randomized SVD's worst
    Z = (X - X.min()) / (X.max() - X.min())
    Z = Z - Z.mean(0)
    _, _, Vt = np.linalg.svd(Z, full_matrices=False)
    np.testing.assert_allclose(pdist(preprocess(X)), pdist(Z @ Vt[:50].T), rtol=1e-9)


def _gaussian_joint_p(X: np.ndarray, perplexity: float, k: int) -> np.ndarray:
    """A reference for the affinities: each row's Gaussian over its k nearest at the perplexity, from the
    distances as they are (bisection in float64 on beta with no added constant, as the authors' x2p: a row
    whose kernel values all underflow has no entropy, and the search lowers beta until they do not),
    symmetrised and normalised to sum 1."""
    from scipy.spatial.distance import squareform

    D = squareform(pdist(X, "sqeuclidean"))
    n = len(X)
    P = np.zeros((n, n))
    for i in range(n):
        order = np.argsort(D[i])[1:k + 1]
        d = D[i, order]
        lo, hi = 0.0, np.inf
        beta = 1.0
        for _ in range(200):
            w = np.exp(-beta * d)
            with np.errstate(invalid="ignore"):  # all underflowed: NaN, and the search lowers beta
                q = w / w.sum()
            entropy = -(q[q > 0] * np.log(q[q > 0])).sum()
            if entropy > np.log(perplexity):
                lo, beta = beta, beta * 2 if hi == np.inf else (beta + hi) / 2
            else:
                hi, beta = beta, (beta + lo) / 2
        P[i, order] = q
    P = P + P.T
    return P / P.sum()


def test_affinities_of_a_point_far_from_its_nearest_neighbour_are_its_gaussian_ones():
    """openTSNE's perplexity search adds 2.2e-16 to a row's sum: for a point whose nearest neighbour is far,
    every exp(-beta d^2) is below it and the row came out wrong (quick's MoCo features at perplexity 3: 292
    rows of 3,000). Shifted so the nearest is at 0, every row is the Gaussian at its perplexity."""
    rng = np.random.default_rng(5)
    X = np.vstack([rng.normal(size=(60, 3)), [[30.0, 0.0, 0.0]]])  # one point 30 away from every other
    aff, _ = _affinities(X, 3, seed=0, n_jobs=1, max_affinities=10**8, neighbours="3P")
    # P's largest entries are ~0.011; unshifted, the far point's pairs were off by 3e-3
    np.testing.assert_allclose(aff.P.toarray(), _gaussian_joint_p(X, 3, 9), rtol=0, atol=1e-8)


# ------------------------------------------------ schedule ------------------------------------------------

def record_optimize(monkeypatch, delegate: bool):
    """Replace TSNEEmbedding.optimize by a recorder (that still optimises if `delegate`, else returns the
    embedding as it is)."""
    calls = []
    real = TSNEEmbedding.optimize

    def recording(self, n_iter, inplace=False, propagate_exception=False, **params):
        calls.append({"n_iter": n_iter, "inplace": inplace, **params})
        return real(self, n_iter, inplace=inplace, **params) if delegate else self

    monkeypatch.setattr(TSNEEmbedding, "optimize", recording)
    return calls


def phases(calls):
    return [(c["n_iter"], c["exaggeration"], c["momentum"]) for c in calls]


def test_optimise_runs_the_authors_phases_on_a_tiny_embedding(monkeypatch):
    X, _ = blobs(n=40, d=5, seed=4)
    calls = record_optimize(monkeypatch, delegate=True)
    Y, _ = tsne_embedding(X, 5, {**SETTINGS, "iterations": 150, "exaggeration_iterations": 60}, seed=0, n_jobs=1)
    # exaggeration 4 for 60 steps (momentum 0.5 for the first 20 of them), then 90 plain steps at momentum 0.8
    assert MOMENTUM_SWITCH == 20
    assert phases(calls) == [(20, 4.0, 0.5), (40, 4.0, 0.8), (90, None, 0.8)]
    assert sum(c["n_iter"] for c in calls) == 150
    assert all(c["learning_rate"] == 500.0 and c["inplace"] for c in calls)
    assert Y.shape == (40, 2) and np.isfinite(Y).all()


@pytest.mark.parametrize("iterations, ee, expected", [
    (1000, 100, [(20, 4.0, 0.5), (80, 4.0, 0.8), (900, None, 0.8)]),  # the authors'
    (50, 100, [(20, 4.0, 0.5), (30, 4.0, 0.8)]),                      # exaggeration longer than the run
    (10, 100, [(10, 4.0, 0.5)]),                                       # shorter than the momentum switch
    (300, 0, [(20, None, 0.5), (280, None, 0.8)]),                     # no exaggeration
    (300, 10, [(10, 4.0, 0.5), (10, None, 0.5), (280, None, 0.8)]),   # exaggeration ends before the switch
    (20, 20, [(20, 4.0, 0.5)]),
])
def test_optimise_runs_exactly_the_iterations(iterations, ee, expected):
    class Recorder:  # an embedding that only records the optimize calls it gets
        calls = []

        def optimize(self, n_iter, inplace=False, **params):
            self.calls.append({"n_iter": n_iter, "inplace": inplace, **params})
            return self

    embedding = Recorder()
    assert optimise(embedding, {**SETTINGS, "iterations": iterations, "exaggeration_iterations": ee}) is embedding
    assert phases(embedding.calls) == expected
    assert sum(n for n, _, _ in expected) == iterations


# ----------------------------------------------- embeddings -----------------------------------------------

def test_shape_finite_and_deterministic(data, small_embedding):
    X, _ = data
    Y, note = small_embedding
    assert Y.shape == (300, 2) and Y.dtype == np.float64 and np.isfinite(Y).all()
    assert note == "perplexity 10 over the 30 nearest neighbours"
    Y2, _ = tsne_embedding(X, 10, FAST, seed=0, n_jobs=2)
    assert np.array_equal(Y, Y2)  # the same seed gives the same Y, whatever the number of threads
    Y3, _ = tsne_embedding(X, 10, FAST, seed=1, n_jobs=1)
    assert not np.allclose(Y, Y3)
    with pytest.raises(ValueError, match="perplexity must be positive"):
        tsne_embedding(X, 0, SETTINGS)


def test_separated_clusters_stay_separated(data, small_embedding):
    _, labels = data
    Y, _ = small_embedding
    # leave-one-out 1-NN accuracy on the embedding: neighbour 0 of a training point is itself
    nn = KNeighborsClassifier(n_neighbors=2).fit(Y, labels)
    neighbour = nn.kneighbors(Y, return_distance=False)[:, 1]
    assert (labels[neighbour] == labels).mean() > 0.99
    assert map_purity(Y, labels, [10])[10] > 0.99


def test_openTSNE_would_clip_a_near_n_perplexity(data):
    """Why we build the affinities ourselves: TSNE(perplexity=P) uses MultiscaleMixture, which turns
    P = 0.996 n into (n - 1) / 3 with only a log warning."""
    X, _ = data
    aff = MultiscaleMixture(preprocess(X), 298.8, method="exact")
    assert aff.effective_perplexities_ == [pytest.approx(299 / 3)]


def test_near_n_perplexity_is_exact_over_all_points_not_clipped(data):
    X, labels = data
    p = perplexities(300, RATIOS)[0][2]
    aff, note = _affinities(preprocess(X), p, seed=0, n_jobs=1, max_affinities=10**8, neighbours="3P")
    assert isinstance(aff, PerplexityBasedNN) and aff.effective_perplexity_ == p == 298.8
    assert aff.P.nnz == 300 * 299  # every pair
    assert note == "perplexity 298.8 over all 299 other points (exact)"
    Y, note2 = tsne_embedding(X, p, FAST, seed=0, n_jobs=1)
    assert note2 == note and np.isfinite(Y).all()


def test_perplexity_beyond_n_uses_uniform_affinities_and_says_so(data):
    X, _ = data
    aff, note = _affinities(preprocess(X), 400, seed=0, n_jobs=1, max_affinities=10**8, neighbours="3P")
    assert isinstance(aff, Uniform) and aff.P.nnz == 300 * 299
    assert "uniform affinities over all 299 other points" in note


def test_memory_cap_truncates_neighbours_and_says_so(data, monkeypatch):
    X, _ = data
    Xp = preprocess(X)
    aff, note = _affinities(Xp, 30, seed=0, n_jobs=1, max_affinities=300 * 60, neighbours="3P")
    assert isinstance(aff, PerplexityBasedNN) and aff.effective_perplexity_ == 30
    assert "the 60 nearest neighbours (memory cap" in note
    aff, note = _affinities(Xp, 298.8, seed=0, n_jobs=1, max_affinities=300 * 60, neighbours="3P")
    assert isinstance(aff, Uniform) and "uniform affinities over the 60 nearest neighbours (memory cap" in note
    # the cap comes from the settings (the profile's tsne.max_affinities)
    record_optimize(monkeypatch, delegate=False)
    _, note = tsne_embedding(X, 30, {**SETTINGS, "max_affinities": 300 * 60}, seed=0, n_jobs=1)
    assert "the 60 nearest neighbours (memory cap: n x k <= 18,000 affinities)" in note


# ------------------------------------------- the authors' choices -------------------------------------------

def test_the_authors_start_is_normal_and_the_rescaled_one_the_same_draw_at_sd_1e_4():
    normal, rescaled = initial_embedding(5000, 3, "normal"), initial_embedding(5000, 3, "rescaled")
    assert normal.std() == pytest.approx(1.0, abs=0.03)  # N(0, 1) as drawn: t-SNE is not scale-free
    assert rescaled.std() == pytest.approx(1e-4, rel=0.01)
    np.testing.assert_allclose(rescaled / rescaled[:, 0].std(), normal / normal[:, 0].std(), atol=1e-9)
    with pytest.raises(ValueError, match="start must be one of"):
        initial_embedding(10, 0, "uniform")


def test_all_neighbours_gives_gaussian_affinities_over_every_pair_at_a_small_perplexity(data):
    Xp = preprocess(data[0])
    aff, note = _affinities(Xp, 10, seed=0, n_jobs=1, max_affinities=10**8, neighbours="all")
    assert isinstance(aff, PerplexityBasedNN) and aff.effective_perplexity_ == 10
    assert note == "perplexity 10 over all 299 other points (exact)"
    three_p, _ = _affinities(Xp, 10, seed=0, n_jobs=1, max_affinities=10**8, neighbours="3P")
    # far pairs of these clusters underflow to 0 in float64 even over all points, but many more pairs count
    assert three_p.P.nnz <= 300 * 30 * 2 < aff.P.nnz  # 30 neighbours a row, symmetrised
    # the mass 3P leaves out is small, not zero: the two are not the same experiment
    left_out = 1 - aff.P.multiply(three_p.P > 0).sum()
    assert 0 < left_out < 0.05


def _kl(P, Y):
    """KL(P || Q) of a 2-D map, Q the Student-t similarities: the quantity t-SNE descends."""
    d = ((Y[:, None, :] - Y[None, :, :]) ** 2).sum(-1)
    num = 1 / (1 + d)
    np.fill_diagonal(num, 0)
    Q = np.maximum(num / num.sum(), 1e-12)
    mask = P > 0
    return float((P[mask] * np.log(P[mask] / Q[mask])).sum())


def test_the_exact_gradient_is_a_quarter_of_the_kl_gradient():
    """Finite differences of KL(P || Q) on a 12-point map: the authors' gradient leaves out the factor 4."""
    import torch

    rng = np.random.default_rng(0)
    A = rng.random((12, 12))
    P = A + A.T
    np.fill_diagonal(P, 0)
    P /= P.sum()
    Y = rng.normal(size=(12, 2))
    grad = exact_gradient(torch.tensor(P, dtype=torch.float64), torch.tensor(Y)).numpy()
    numeric = np.zeros_like(Y)
    for i in range(12):
        for c in range(2):
            up, down = Y.copy(), Y.copy()
            up[i, c] += 1e-6
            down[i, c] -= 1e-6
            numeric[i, c] = (_kl(P, up) - _kl(P, down)) / 2e-6
    np.testing.assert_allclose(4 * grad, numeric, rtol=1e-5, atol=1e-8)


def _the_authors_loop(P, Y, iterations, eta=500.0, last_exaggerated=100):
    """tsne_torch.py's loop as they wrote it, on their float32 tensors, from a joint P and a start Y; their
    learning rate (500) and last exaggerated step (100) are parameters, the rest their constants."""
    import torch

    n = len(Y)
    P = torch.tensor(P, dtype=torch.float32) * 4.0
    P = torch.max(P, torch.tensor([1e-16]))
    Y = torch.tensor(Y, dtype=torch.float32)
    dY, iY, gains = torch.zeros(n, 2), torch.zeros(n, 2), torch.ones(n, 2)
    for it in range(iterations):
        sum_Y = torch.sum(Y * Y, 1)
        num = -2.0 * torch.mm(Y, Y.t())
        num = 1.0 / (1.0 + torch.add(torch.add(num, sum_Y).t(), sum_Y))
        num[range(n), range(n)] = 0.0
        Q = torch.max(num / torch.sum(num), torch.tensor([1e-12]))
        PQ = P - Q
        for i in range(n):
            dY[i, :] = torch.sum((PQ[:, i] * num[:, i]).repeat(2, 1).t() * (Y[i, :] - Y), 0)
        momentum = 0.5 if it < 20 else 0.8
        gains = (gains + 0.2) * ((dY > 0.0) != (iY > 0.0)) + (gains * 0.8) * ((dY > 0.0) == (iY > 0.0))
        gains[gains < 0.01] = 0.01
        iY = momentum * iY - eta * (gains * dY)
        Y = Y + iY
        Y = Y - torch.mean(Y, 0)
        if it == last_exaggerated:
            P = P / 4.0
    return Y.double().numpy()


def test_the_exact_loop_follows_the_authors_loop_step_for_step(data):
    """Their loop as written against ours, from the same P (3P affinities: most pairs are 0) and start,
    through the exaggeration, the momentum switch and past both (the floors are too small to show at this
    tolerance: the next test checks them). At their
    learning rate of 500 from an N(0, 1) start the two agree to 1e-6 for the first steps and then part as
    any two float32 summation orders do (the map is chaotic there); at 5 they stay together."""
    X, _ = data
    P = _affinities(preprocess(X[:80]), 5, seed=0, n_jobs=1, max_affinities=10**8, neighbours="3P")[0].P
    Y0 = initial_embedding(80, 0, "normal")
    settings = {**SETTINGS, "iterations": 40, "exaggeration_iterations": 11, "learning_rate": 5.0}
    ours = tsne.exact_optimise(P, Y0, settings, device="cpu")
    theirs = _the_authors_loop(P.toarray(), Y0, 40, eta=5.0, last_exaggerated=10)
    assert np.abs(theirs - Y0).max() > 0.1  # it moved
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-4)


def test_the_exact_loop_floors_p_as_the_authors_their_exaggerated_p_at_1e_16(monkeypatch):
    """Their floor is on 4P (1e-16), so P's own zeros sit at 2.5e-17, not at the 1e-12 of van der Maaten's
    numpy file; Q keeps its 1e-12."""
    seen = []
    real = tsne.exact_gradient

    def spy(P, Y, exaggeration=1.0, eye=None):
        seen.append((float(P.min()), exaggeration))
        return real(P, Y, exaggeration, eye)

    monkeypatch.setattr(tsne, "exact_gradient", spy)
    P = np.zeros((4, 4))
    P[0, 1] = P[1, 0] = P[2, 3] = P[3, 2] = 0.25
    tsne.exact_optimise(P, initial_embedding(4, 0, "normal"), {**SETTINGS, "iterations": 3,
                                                                "exaggeration_iterations": 2}, device="cpu")
    assert [e for _, e in seen] == [4.0, 4.0, 1.0]
    assert [m for m, _ in seen] == pytest.approx([2.5e-17] * 3, rel=1e-6, abs=0)  # float32 of 2.5e-17


def test_the_exact_t_sne_separates_clusters_and_is_seeded(data):
    X, labels = data
    exact = {**FAST, "start": "normal", "neighbours": "all", "gradient": "exact"}
    Y, note = tsne_embedding(X, 10, exact, seed=0, n_jobs=1)
    assert note == "perplexity 10 over all 299 other points (exact); exact gradient"
    assert Y.shape == (300, 2) and np.isfinite(Y).all() and abs(Y.mean(0)).max() < 1e-3  # centred each step
    assert map_purity(Y, labels, [10])[10] > 0.99
    Y2, _ = tsne_embedding(X, 10, exact, seed=0, n_jobs=1)
    np.testing.assert_array_equal(Y, Y2)
    with pytest.raises(ValueError, match="gradient must be one of"):
        tsne_embedding(X, 10, {**exact, "gradient": "bh"}, seed=0, n_jobs=1)


# -------------------------------------------------- grid --------------------------------------------------

def _feature_sets(X, labels):
    from factories import feature_set

    return [feature_set(X, labels, X[:3], labels[:3], encoder="r18", method="moco_queue"),
            feature_set(2 * X, labels, X[:3], labels[:3], encoder="r18", method="supervised",
                        schedule="paper-compressed", epoch=0)]


def test_grid_shares_one_sample_and_carries_identity_fields(data, monkeypatch):
    """The plumbing only (the embedding itself is tested above): a stand-in records what it is given."""
    X, labels = data
    seen = []

    def fake(Xs, p, settings, seed=0, n_jobs=-1):
        seen.append((Xs, p, settings, seed))
        return Xs[:, :2] + p, f"perplexity {p:g} over ..."

    monkeypatch.setattr(tsne, "tsne_embedding", fake)
    settings = {**SETTINGS, "sample_size": 150, "perplexity_ratios": [0.001, 0.1]}
    out = tsne_grid(_feature_sets(X, labels), labels, settings, seed=0)
    idx = sample_indices(labels, 150, 0)
    assert [(p, s) for _, p, _, s in seen] == [(2.0, 0), (15.0, 0), (2.0, 0), (15.0, 0)]
    assert all(s is settings for _, _, s, _ in seen)
    assert all(np.array_equal(Xs, X[idx]) for Xs, *_ in seen[:2])
    assert all(np.array_equal(Xs, 2 * X[idx]) for Xs, *_ in seen[2:])
    assert out["Y"].shape == (2, 2, 150, 2) and out["Y"].dtype == np.float32
    np.testing.assert_allclose(out["Y"][1, 1], 2 * X[idx][:, :2] + 15.0, rtol=1e-6)
    np.testing.assert_array_equal(out["indices"], idx)
    np.testing.assert_array_equal(out["labels"], labels[idx])
    np.testing.assert_array_equal(out["perplexities"], [2.0, 15.0])
    assert out["notes"].shape == (2, 2)
    assert out["notes"][0, 0] == "perplexity 0.001 x 150 = 0.15 is below 2; used 2; perplexity 2 over ..."
    assert out["notes"][0, 1] == "perplexity 15 over ..."
    assert out["encoder"].tolist() == ["r18", "r18"] and out["method"].tolist() == ["moco_queue", "supervised"]
    assert out["schedule"].tolist() == ["cosine", "paper-compressed"] and out["epoch"].tolist() == [20, 0]
    with pytest.raises(ValueError, match="300 training features but 10 labels"):
        tsne_grid(_feature_sets(X, labels), labels[:10], settings)


def test_grid_draws_a_fresh_sample_per_map_as_the_authors(data, monkeypatch):
    X, labels = data
    seen = []

    def fake(Xs, p, settings, seed=0, n_jobs=-1):
        seen.append(Xs)
        return Xs[:, :2], "note"

    monkeypatch.setattr(tsne, "tsne_embedding", fake)
    settings = {**SETTINGS, "sample_size": 150, "perplexity_ratios": [0.001, 0.1], "sample": "per map"}
    out = tsne_grid(_feature_sets(X, labels), labels, settings, seed=0)
    assert out["indices"].shape == out["labels"].shape == (2, 2, 150)
    samples = {tuple(out["indices"][i, j]) for i in range(2) for j in range(2)}
    assert len(samples) == 4  # four maps, four samples
    for i in range(2):
        for j in range(2):
            idx = out["indices"][i, j]
            assert np.array_equal(map_labels(out, i, j), labels[idx])
            assert np.array_equal(seen[2 * i + j], (X if i == 0 else 2 * X)[idx])
            assert np.bincount(labels[idx]).tolist() == [50, 50, 50]  # each sample stratified
    # the purity records read each map's own labels
    recs = map_purity_records({**out, "Y": np.stack([np.stack([X[out["indices"][i, j]][:, :2] for j in range(2)])
                                                     for i in range(2)])})
    assert len(recs) == 8
    with pytest.raises(ValueError, match="sample must be one of"):
        tsne_grid(_feature_sets(X, labels), labels, {**settings, "sample": "some"}, seed=0)


# --------------------------------------------- map purity -------------------------------------------------

def test_map_purity_separated_against_mixed_maps():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 50)
    separated = np.eye(2)[labels % 2] * 10 + np.array([0, 20])[labels // 2, None] + rng.normal(0, 0.1, (200, 2))
    mixed = rng.normal(0, 1, (200, 2))
    assert map_purity(separated, labels, [10]) == {10: 1.0}
    assert map_purity(mixed, labels, [10])[10] < 0.5


def test_map_purity_of_two_separated_blobs_is_one():
    rng = np.random.default_rng(1)
    labels = np.repeat([0, 1], 100)
    Y = np.array([[-5.0, 0.0], [5.0, 0.0]])[labels] + rng.normal(0, 0.5, (200, 2))
    assert map_purity(Y, labels, [1, 10, 99]) == {1: 1.0, 10: 1.0, 99: 1.0}


def test_map_purity_is_euclidean_not_cosine():
    """Two concentric rings: classes interleaved by angle, separated by radius. Map neighbours by distance
    (what the eye reads) are the same ring; neighbours by cosine (angle around the origin) mix them."""
    rng = np.random.default_rng(2)
    labels = np.repeat([0, 1], 200)
    angle = rng.uniform(0, 2 * np.pi, 400)
    radius = np.where(labels == 0, 1.0, 3.0) + rng.normal(0, 0.02, 400)
    Y = np.stack([np.cos(angle), np.sin(angle)], axis=1) * radius[:, None]
    assert map_purity(Y, labels, [10])[10] > 0.98
    assert chi(Y, labels, 10)[10] < 0.65  # the cosine neighbours: about chance (0.5)


def test_map_purity_excludes_the_point_itself_even_with_duplicates():
    Y = np.array([[0.0, 0.0], [0.0, 0.0], [10.0, 0.0], [10.0, 0.1]])
    labels = np.array([0, 1, 1, 1])
    # point 0's only neighbour at k=1 is its duplicate, of the other class; point 1's is point 0
    assert map_purity(Y, labels, [1])[1] == pytest.approx(0.5)
    with pytest.raises(ValueError, match=r"1 <= k < n \(= 4\)"):
        map_purity(Y, labels, [4])


def test_wide_k_is_capped_by_the_smallest_class():
    assert wide_k(np.repeat(np.arange(10), 1000)) == 500
    assert wide_k(np.repeat(np.arange(3), [50, 20, 80])) == 19


def test_map_purity_records_per_perplexity():
    rng = np.random.default_rng(3)
    labels = np.repeat(np.arange(3), 30)
    sep = np.array([[0.0, 0.0], [20.0, 0.0], [0.0, 20.0]])[labels] + rng.normal(0, 1, (90, 2))
    mixed = rng.normal(0, 1, (90, 2))
    grid = {"Y": np.stack([np.stack([sep, mixed]), np.stack([mixed, sep])]).astype(np.float32),
            "labels": labels, "perplexities": np.array([2.0, 89.64]),
            "encoder": np.array(["r18", "r18"]), "method": np.array(["supervised", "moco_queue"]),
            "schedule": np.array(["cosine", "cosine"]), "epoch": np.array([20, 20])}
    records = map_purity_records(grid)
    assert all(list(r) == list(R.FIELDS) for r in records) and len(records) == 2 * 2 * 2
    assert R.parameters(records, metric=R.MAP_PURITY) == [2.0, 89.64]
    assert all(type(r["parameter"]) is float and type(r["epoch"]) is int for r in records)
    assert R.value(records, metric=R.MAP_PURITY, method="supervised", parameter=2.0) == 1.0
    assert R.value(records, metric=R.MAP_PURITY_WIDE, method="supervised", parameter=2.0) == 1.0
    assert R.value(records, metric=R.MAP_PURITY, method="moco_queue", parameter=89.64) == 1.0
    for method, p, Y in (("supervised", 89.64, grid["Y"][0, 1]), ("moco_queue", 2.0, grid["Y"][1, 0])):
        purity = map_purity(Y, labels, [10, 29])  # wide k: one below the smallest class
        assert R.value(records, metric=R.MAP_PURITY, method=method, parameter=p) == pytest.approx(purity[10])
        assert R.value(records, metric=R.MAP_PURITY_WIDE, method=method, parameter=p) == pytest.approx(purity[29])
        assert purity[29] < 0.6  # a mixed disc: near chance


# ------------------------------------------------- figure -------------------------------------------------

def test_tsne_grid_figure():
    from clorg.book import plots

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 200)
    ps = [2.0, 20.0, 199.2]
    maps = {"Y": rng.normal(size=(2, 3, 200, 2)), "labels": labels, "perplexities": np.array(ps),
            "encoder": np.array(["resnet18", "resnet18"]), "method": np.array(["moco_queue", "supervised"]),
            "schedule": np.array(["cosine", "cosine"]), "epoch": np.array([20, 20])}
    fig = plots.tsne_grid(maps, [f"class {i}" for i in range(10)])
    assert len(fig.axes) == 6
    assert fig.axes[1].get_title() == "resnet18 supervised\nperplexity 2"
    assert fig.axes[2].get_title() == "resnet18 moco_queue\nperplexity 20"
    assert fig.axes[0].get_xticks().size == 0
    assert len(fig.legends) == 1 and len(fig.legends[0].get_texts()) == 10
    matplotlib.pyplot.close(fig)
