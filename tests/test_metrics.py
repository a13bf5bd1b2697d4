"""clorg.analysis.metrics against direct dense implementations, networkx and scikit-learn."""

import math

import networkx as nx
import numpy as np
import pytest
import scipy.sparse
import torch
from scipy.spatial.distance import cdist
from sklearn.metrics import calinski_harabasz_score

from clorg.analysis.metrics import (calinski_harabasz, chi, modularity, nearest_neighbours, rld, rld_graph,
                                   rld_sweep)

TEMPERATURES = [0.01, 0.05, 0.1, 0.5, 1.0, 5.0]


# ------------------------------------------------ references ------------------------------------------

def dense_weights(X, T):
    """The authors' graph, written out densely in float64 (SPEC 2.1): W = n^2 E^2 / (r r^T)."""
    n = len(X)
    D = cdist(X, X)
    mean = D[np.triu_indices(n, 1)].mean()
    S = -D / mean
    np.fill_diagonal(S, -np.inf)
    E = np.exp(S / T)
    r = E.sum(axis=1)
    return n * n * E**2 / np.outer(r, r)


def dense_modularity(W, y):
    two_m = W.sum()
    k = W.sum(axis=1)
    same = y[:, None] == y[None, :]
    return ((W - np.outer(k, k) / two_m) * same).sum() / two_m


def dense_rld(X, y, T):
    return dense_modularity(dense_weights(X, T), y)


def brute_chi(X, y, k):
    """Stable sort of cosine similarities, self last: the documented tie rule, by brute force."""
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    S = Xn @ Xn.T
    np.fill_diagonal(S, -np.inf)
    nearest = np.argsort(-S, axis=1, kind="stable")[:, :k]
    return (y[nearest] == y[:, None]).mean()


def mixture(rng, n, n_classes, dim=8, spread=1.0, weights=None, duplicates=0):
    """Class centres + Gaussian noise, with unbalanced classes and optionally duplicated rows."""
    y = rng.choice(n_classes, size=n, p=weights)
    X = rng.normal(size=(n_classes, dim))[y] * spread + rng.normal(size=(n, dim))
    if duplicates:  # copy existing rows (with their labels) over random others
        src, dst = rng.choice(n, size=(2, duplicates), replace=False)
        X[dst], y[dst] = X[src], y[src]
    return X, y


def nx_graph(W):
    return nx.from_numpy_array(W)  # undirected, weight='weight'


# -------------------------------------------------- RLD -----------------------------------------------

@pytest.mark.parametrize("n, n_classes, block, duplicates", [
    (300, 2, 64, 0),
    (777, 7, 100, 80),      # n not a multiple of the block; many tiles; duplicated rows
    (1000, 20, 128, 150),
    (2000, 5, 333, 200),
])
def test_rld_matches_dense_reference(n, n_classes, block, duplicates):
    rng = np.random.default_rng(n)
    weights = rng.dirichlet(np.ones(n_classes) * 0.7)  # unbalanced classes
    weights = (weights + 0.02) / (weights + 0.02).sum()
    X, y = mixture(rng, n, n_classes, weights=weights, duplicates=duplicates)
    assert np.unique(y).size == n_classes
    ours = rld_sweep(X, y, TEMPERATURES, block_size=block)
    for T in TEMPERATURES:
        ref = dense_rld(X, y, T)
        assert ours[T] == pytest.approx(ref, rel=1e-6, abs=1e-12), T
        if n <= 300:  # the single-T entry point against the same dense reference
            assert rld(X, y, T, block_size=block) == pytest.approx(ref, rel=1e-6, abs=1e-12)


def test_rld_float32_and_torch_input_agree_with_float64():
    rng = np.random.default_rng(1)
    X, y = mixture(rng, 600, 4, dim=16, spread=1.5)
    X /= np.linalg.norm(X, axis=1, keepdims=True)  # the paper's setting: unit rows
    ref = rld_sweep(X, y, [1.0, 0.1])
    ours32 = rld_sweep(torch.from_numpy(X.astype(np.float32)), torch.from_numpy(y), [1.0, 0.1])
    for T in ref:
        assert ours32[T] == pytest.approx(ref[T], rel=1e-4)


def test_rld_equals_modularity_of_the_dense_graph():
    rng = np.random.default_rng(2)
    X, y = mixture(rng, 400, 6)
    for T in (0.05, 1.0):
        W = dense_weights(X, T)
        assert rld(X, y, T) == pytest.approx(modularity(W, y), rel=1e-9)


def test_rld_arbitrary_integer_labels_and_row_order_do_not_matter():
    rng = np.random.default_rng(3)
    X, y = mixture(rng, 500, 3)
    base = rld(X, y, 0.1)
    relabelled = np.array([-5, 17, 1000])[y]
    perm = rng.permutation(len(y))
    assert rld(X, relabelled, 0.1) == pytest.approx(base, rel=1e-12)
    assert rld(X[perm], y[perm], 0.1, block_size=64) == pytest.approx(base, rel=1e-10)


def test_rld_small_temperature_is_finite_and_sane():
    rng = np.random.default_rng(4)
    X, y = mixture(rng, 5000, 10, dim=32, spread=0.6)
    X = (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)
    values = rld_sweep(X, y, [0.01, 0.1])
    assert all(np.isfinite(v) for v in values.values())
    assert 0 < values[0.01] < 0.9 and 0 < values[0.1] < 0.9
    # a small dense check at the same temperature: no under/overflow difference
    assert rld(X[:800].astype(np.float64), y[:800], 0.01) == pytest.approx(
        dense_rld(X[:800].astype(np.float64), y[:800], 0.01), rel=1e-6)


def test_rld_is_near_zero_for_random_labels():
    rng = np.random.default_rng(5)
    X, _ = mixture(rng, 3000, 5, spread=2.0)
    y = rng.integers(0, 5, size=3000)
    for T, value in rld_sweep(X, y, [0.05, 0.5, 5.0]).items():
        assert abs(value) < 0.02, (T, value)


def test_rld_bounds():
    rng = np.random.default_rng(6)
    # Well separated balanced blobs: RLD approaches, never exceeds, 1 - sum_c (n_c/n)^2 = 1 - 1/C
    # (for balanced classes that bound follows from Cauchy-Schwarz on the class degree shares).
    X, _ = mixture(rng, 1200, 6)
    y = np.arange(1200) % 6
    X = X + 20 * rng.normal(size=(6, 8))[y]
    bound = 1 - 1 / 6
    for T, value in rld_sweep(X, y, [0.05, 0.5, 5.0]).items():
        assert value <= bound + 1e-12
    assert rld(X, y, 0.05) > bound - 0.02
    # In general the bound is on the degree shares: Q <= 1 - sum_c (K_c / 2m)^2.
    X, y = mixture(rng, 700, 4, spread=3.0, weights=[0.6, 0.25, 0.1, 0.05])
    W = dense_weights(X, 0.2)
    K = np.bincount(y, weights=W.sum(axis=1))
    assert rld(X, y, 0.2) <= 1 - ((K / K.sum()) ** 2).sum() + 1e-12
    # ...and not on the count shares once classes are unbalanced (SPEC 2.1 states the count bound):
    # a big tight class has low degrees, a small diffuse one high degrees, evening out the shares.
    X = np.vstack([rng.normal(scale=0.01, size=(900, 2)), rng.uniform(-1, 1, size=(100, 2)) + [5, 0]])
    y = np.repeat([0, 1], [900, 100])
    count_bound = 1 - (0.9**2 + 0.1**2)
    assert rld(X, y, 1.0) > count_bound + 0.2
    assert rld(X, y, 1.0) <= 1 - 1 / 2


def test_rld_separates_local_from_global_structure():
    """The paper's point in miniature: class-pure tiny clusters scattered everywhere get a high
    RLD at a small temperature and a low one at a large temperature."""
    rng = np.random.default_rng(7)
    centres = rng.uniform(-1, 1, size=(60, 2))
    owner = np.arange(60) % 3
    pick = rng.integers(0, 60, size=1500)
    X = centres[pick] + rng.normal(scale=0.005, size=(1500, 2))
    y = owner[pick]
    values = rld_sweep(X, y, [0.02, 5.0])
    assert values[0.02] > 0.5 > 0.1 > values[5.0]


# ----------------------------------------------- modularity -------------------------------------------

def random_graph(rng, n, density=0.3):
    A = rng.random((n, n)) * (rng.random((n, n)) < density)
    W = np.triu(A, 1)
    return W + W.T


@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta")
@pytest.mark.parametrize("kind", ["numpy", "torch", "scipy_csr", "scipy_coo", "torch_coo", "torch_csr"])
def test_modularity_matches_networkx(kind):
    rng = np.random.default_rng(8)
    W = random_graph(rng, 60)
    y = rng.integers(0, 4, size=60)
    communities = [set(np.flatnonzero(y == c)) for c in np.unique(y)]
    expected = nx.community.modularity(nx_graph(W), communities, weight="weight")
    graph = {
        "numpy": lambda: W,
        "torch": lambda: torch.from_numpy(W),
        "scipy_csr": lambda: scipy.sparse.csr_matrix(W),
        "scipy_coo": lambda: scipy.sparse.coo_matrix(W),
        "torch_coo": lambda: torch.from_numpy(W).to_sparse(),
        "torch_csr": lambda: torch.from_numpy(W).to_sparse_csr(),
    }[kind]()
    assert modularity(graph, y) == pytest.approx(expected, rel=1e-10)


def test_modularity_of_an_obvious_partition():
    # two disconnected cliques: Q = 1 - 2 * (1/2)^2 = 0.5 for the right split, < 0 when mixed
    W = scipy.sparse.block_diag([np.ones((5, 5)) - np.eye(5)] * 2).toarray()
    assert modularity(W, np.repeat([0, 1], 5)) == pytest.approx(0.5)
    assert modularity(W, np.tile([0, 1], 5)) < 0
    assert modularity(W, np.zeros(10, dtype=int)) == pytest.approx(0.0)


# --------------------------------------------------- CH -----------------------------------------------

@pytest.mark.parametrize("seed, n, n_classes", [(0, 50, 2), (1, 500, 7), (2, 2000, 20)])
def test_calinski_harabasz_matches_sklearn(seed, n, n_classes):
    rng = np.random.default_rng(seed)
    X, y = mixture(rng, n, n_classes, dim=5, spread=0.7)
    expected = calinski_harabasz_score(X, y)
    assert calinski_harabasz(X, y) == pytest.approx(expected, rel=1e-10)
    assert calinski_harabasz(torch.from_numpy(X).float(), y) == pytest.approx(expected, rel=1e-4)


def test_calinski_harabasz_degenerate_classes_follow_sklearn():
    X = np.repeat(np.eye(3), 4, axis=0)  # every point on its class mean
    y = np.repeat([0, 1, 2], 4)
    with pytest.warns(RuntimeWarning, match=r"every one of the 12 points sits on its class mean .* convention"):
        assert calinski_harabasz(X, y) == calinski_harabasz_score(X, y) == 1.0


# -------------------------------------------------- CHI -----------------------------------------------

@pytest.mark.parametrize("n, n_classes, block", [(300, 3, 37), (1000, 10, 128)])
def test_chi_matches_brute_force(n, n_classes, block):
    rng = np.random.default_rng(n)
    X, y = mixture(rng, n, n_classes, dim=6, spread=0.8, duplicates=n // 10)
    ks = [1, 5, 10, 50, n - 1]
    ours = chi(X, y, ks, block_size=block)
    for k in ks:
        assert ours[k] == pytest.approx(brute_chi(X, y, k), abs=1e-12), k


def test_chi_ties_break_by_lower_index():
    """Many exact ties: 40 distinct points, each repeated with a different label per copy. Which
    copies land in the top k is decided by the tie rule alone."""
    rng = np.random.default_rng(9)
    base = rng.normal(size=(40, 4))
    X = np.repeat(base, 5, axis=0)            # copies are adjacent: indices 5p .. 5p+4
    y = rng.integers(0, 3, size=len(X))
    ks = [1, 2, 3, 4, 6, 7, 12]
    ours = chi(X, y, ks, block_size=16)
    for k in ks:
        assert ours[k] == pytest.approx(brute_chi(X, y, k), abs=1e-12), k
    # and the rule is really "lower index first", not just any consistent choice: for an anchor
    # with 4 copies, k = 2 takes the two lowest-index other copies
    X2 = np.array([[1.0, 0], [1, 0], [1, 0], [1, 0], [0, 1], [0, 1]])
    y2 = np.array([0, 0, 1, 1, 1, 0])
    # anchors 0 and 1 take {1, 2} and {0, 2}: one hit each; anchors 2 and 3 take {0, 1}: none;
    # anchors 4 and 5 take the other copy and then row 0 (label 0): 0 and 1 hits. Highest-index-first
    # would give anchor 0 {2, 3} and anchor 1 {2, 3} instead, with no hits.
    expected = np.mean([1 / 2, 1 / 2, 0, 0, 0 / 2, 1 / 2])
    assert chi(X2, y2, 2)[2] == pytest.approx(expected)
    assert brute_chi(X2, y2, 2) == pytest.approx(expected)


def test_chi_uses_cosine_not_euclidean():
    X = np.array([[1.0, 0.0], [10.0, 0.1], [0.9, 0.5], [0.0, 1.0], [0.1, 10.0], [0.5, 0.9]])
    y = np.array([0, 0, 0, 1, 1, 1])
    assert chi(X, y, 1)[1] == 1.0  # scale does not matter, only direction
    assert chi(X * np.array([[1.0], [7.0], [0.01], [3.0], [1.0], [100.0]]), y, 2)[2] == 1.0


def test_chi_of_separated_classes_and_random_labels():
    rng = np.random.default_rng(10)
    X, y = mixture(rng, 2000, 4, dim=10, spread=10.0, weights=np.full(4, 0.25))
    assert chi(X, y, [1, 100])[100] > 0.99
    # random labels: a neighbour shares the anchor's class by chance, sum_c n_c (n_c - 1) / (n (n - 1))
    shuffled = rng.permutation(y)
    counts = np.bincount(y)
    chance = (counts * (counts - 1)).sum() / (len(y) * (len(y) - 1))
    assert chi(X, shuffled, 100)[100] == pytest.approx(chance, abs=0.02)


# ------------------------------------------------ bad input -------------------------------------------

GOOD_X = np.random.default_rng(11).normal(size=(30, 3))
GOOD_Y = np.arange(30) % 3


@pytest.mark.parametrize("call", [
    lambda X, y: rld(X, y, 0.1),
    lambda X, y: rld_sweep(X, y, [0.1, 1.0]),
    lambda X, y: calinski_harabasz(X, y),
    lambda X, y: chi(X, y, [1, 5]),
], ids=["rld", "rld_sweep", "calinski_harabasz", "chi"])
@pytest.mark.parametrize("X, y, message", [
    (np.where(np.arange(90).reshape(30, 3) == 7, np.nan, GOOD_X), GOOD_Y, "NaN or infinite"),
    (np.where(np.arange(90).reshape(30, 3) == 7, np.inf, GOOD_X), GOOD_Y, "NaN or infinite"),
    (GOOD_X, GOOD_Y[:-1], "30 rows but y has 29 labels"),
    (GOOD_X, np.zeros(30, dtype=int), "at least 2 classes, got 1"),
    (GOOD_X, GOOD_Y.astype(float), "integer class labels"),
    (GOOD_X, GOOD_Y.astype(str), "y must be numeric"),
    (GOOD_X[:, 0], GOOD_Y, "X must be a 2-D array"),
    (GOOD_X[None], GOOD_Y, "X must be a 2-D array"),
    (GOOD_X, GOOD_Y[:, None], "y must be 1-D"),
], ids=["nan", "inf", "length", "one-class", "float-labels", "str-labels", "1d-X", "3d-X", "2d-y"])
def test_bad_input_is_rejected(call, X, y, message):
    with pytest.raises(ValueError, match=message):
        call(X, y)


@pytest.mark.parametrize("temperature", [0, -1.0, float("nan"), float("inf"), "0.1", None])
def test_bad_temperature(temperature):
    with pytest.raises(ValueError, match="temperature must be a positive number"):
        rld(GOOD_X, GOOD_Y, temperature)
    with pytest.raises(ValueError, match="temperature must be a positive number"):
        rld_sweep(GOOD_X, GOOD_Y, [1.0, temperature])
    with pytest.raises(ValueError, match="temperature must be a positive number"):
        rld_sweep(GOOD_X, GOOD_Y, temperature)  # one value, not in a list


@pytest.mark.parametrize("ks, message", [
    ([30], r"1 <= k < n_samples \(= 30\), got 30"),
    ([1, 31], r"1 <= k < n_samples \(= 30\), got 31"),
    ([0], r"1 <= k < n_samples \(= 30\), got 0"),
    ([-2], "got -2"),
    ([2.5], "k must be an integer"),
    ([], "at least one"),
])
def test_bad_k(ks, message):
    with pytest.raises(ValueError, match=message):
        chi(GOOD_X, GOOD_Y, ks)


def test_other_degenerate_inputs():
    with pytest.raises(ValueError, match="all rows of X coincide"):
        rld(np.ones((10, 2)), np.arange(10) % 2, 0.1)
    with pytest.raises(ValueError, match="all-zero row"):
        chi(np.vstack([GOOD_X[:-1], np.zeros(3)]), GOOD_Y, 2)
    with pytest.raises(ValueError, match="fewer classes than samples"):
        calinski_harabasz(GOOD_X[:4], np.arange(4))
    with pytest.raises(ValueError, match="block_size must be a positive integer"):
        rld(GOOD_X, GOOD_Y, 0.1, block_size=0)


@pytest.mark.parametrize("W, y, message", [
    (np.ones((4, 4)), np.arange(5) % 2, "W is 4 x 4 but y has 5 labels"),
    (np.ones((4, 3)), np.arange(4) % 2, "square"),
    (np.triu(np.ones((4, 4)), 1), np.arange(4) % 2, "symmetric"),
    (-np.ones((4, 4)), np.arange(4) % 2, "non-negative"),
    (np.full((4, 4), np.nan), np.arange(4) % 2, "NaN or infinite"),
    (np.zeros((4, 4)), np.arange(4) % 2, "no edge weight"),
    (scipy.sparse.csr_matrix(np.triu(np.ones((4, 4)), 1)), np.arange(4) % 2, "symmetric"),
    (np.ones((4, 4)), np.arange(4) % 2 * 0.5, "integer class labels"),
])
def test_modularity_bad_input(W, y, message):
    with pytest.raises(ValueError, match=message):
        modularity(W, y)


def test_threads_setting_is_restored():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        rld(GOOD_X, GOOD_Y, 0.1, num_threads=2)
        chi(GOOD_X, GOOD_Y, 3)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


# ---------------------------------------------- rld_graph ---------------------------------------------

@pytest.mark.parametrize("T, block", [(0.1, 1024), (1.0, 37)])
def test_rld_graph_dense_matches_reference(T, block):
    X, _ = mixture(np.random.default_rng(20), 150, 4, duplicates=3)
    W = rld_graph(X, T, block_size=block)
    assert W.dtype == torch.float64 and W.layout == torch.strided
    np.testing.assert_allclose(W.numpy(), dense_weights(X, T), rtol=1e-9, atol=0)
    assert modularity(W, np.arange(150) % 3) == pytest.approx(dense_rld(X, np.arange(150) % 3, T), abs=1e-10)
    W32 = rld_graph(torch.from_numpy(X).float(), T, block_size=block)  # float32 work dtype
    np.testing.assert_allclose(W32.double().numpy(), dense_weights(X, T), rtol=2e-4, atol=1e-8 * W.max().item())


@pytest.mark.parametrize("block", [1024, 37])
def test_rld_graph_normalised_is_the_gcn_adjacency_built_tile_by_tile(block):
    """normalised=True: D^-1/2 W D^-1/2 (degrees clamped at >= 1), each tile scaled as it is made and stored
    in the dtype asked for, so that W is never held whole."""
    X, _ = mixture(np.random.default_rng(22), 150, 4)
    W = dense_weights(X, 0.2)
    inv_sqrt = 1 / np.sqrt(np.maximum(W.sum(axis=1), 1))
    expected = W * inv_sqrt[:, None] * inv_sqrt[None, :]
    A = rld_graph(X, 0.2, block_size=block, normalised=True)
    assert A.dtype == torch.float64
    np.testing.assert_allclose(A.numpy(), expected, rtol=1e-9, atol=0)
    half = rld_graph(torch.from_numpy(X).float(), 0.2, block_size=block, normalised=True, dtype=torch.bfloat16)
    assert half.dtype == torch.bfloat16 and half.shape == (150, 150)
    np.testing.assert_allclose(half.double().numpy(), expected, rtol=2**-8, atol=1e-8 * expected.max())
    with pytest.raises(ValueError, match="for the dense graph"):
        rld_graph(X, 0.2, 5, normalised=True)


@pytest.mark.parametrize("k, block", [(1, 1024), (7, 16), (40, 33)])
def test_rld_graph_top_k_keeps_the_k_largest_per_row(k, block):
    X, _ = mixture(np.random.default_rng(21), 120, 3)
    dense = dense_weights(X, 0.2)
    directed = rld_graph(X, 0.2, k, symmetrize=False, block_size=block)
    assert directed.layout == torch.sparse_coo and directed.is_coalesced()
    rows, cols = directed.indices().numpy()
    vals = directed.values().numpy()
    assert np.array_equal(np.bincount(rows, minlength=120), np.full(120, k))
    expected = np.argsort(-dense, axis=1, kind="stable")[:, :k]  # no ties in continuous data
    for i in range(120):
        assert set(cols[rows == i]) == set(expected[i])
    np.testing.assert_allclose(vals, dense[rows, cols], rtol=1e-9)

    sym = rld_graph(X, 0.2, k, block_size=block)
    assert sym.layout == torch.sparse_coo and sym.is_coalesced()
    S = sym.to_dense().numpy()
    kept = np.zeros_like(dense, dtype=bool)
    kept[rows, cols] = True
    assert np.array_equal(S != 0, kept | kept.T)  # an edge of either direction is in the graph
    np.testing.assert_array_equal(S, S.T)
    assert np.all(np.diag(S) == 0)
    assert np.all((S != 0).sum(axis=1) >= k)
    # (A + A^T) / 2, the authors' ``to_spare``: kept by both ends -> W_ij, by one end -> W_ij / 2
    both, one = kept & kept.T, kept ^ kept.T
    np.testing.assert_allclose(S[both], dense[both], rtol=1e-9)
    np.testing.assert_allclose(S[one], dense[one] / 2, rtol=1e-9)
    A = np.where(kept, dense, 0.0)
    np.testing.assert_allclose(S, (A + A.T) / 2, rtol=1e-9, atol=0)


def test_rld_graph_top_k_halves_the_edges_kept_by_one_end_only():
    """A hand-made case: a tight pair (0, 1) and a far point 2. With k = 1 the points 0 and 1 keep each
    other (both ends: full weight), point 2 keeps its nearest of them, which does not keep it back
    (one end: half weight)."""
    X = np.array([[0.0, 0.0], [0.1, 0.0], [5.0, 0.0]])
    W = dense_weights(X, 1.0)
    S = rld_graph(X, 1.0, 1).to_dense().numpy()
    expected = np.zeros((3, 3))
    expected[0, 1] = expected[1, 0] = W[0, 1]
    expected[1, 2] = expected[2, 1] = W[2, 1] / 2
    np.testing.assert_allclose(S, expected, rtol=1e-9, atol=1e-12)


def test_rld_graph_bad_input():
    with pytest.raises(ValueError, match="1 <= k < n_samples"):
        rld_graph(GOOD_X, 0.1, 30)
    with pytest.raises(ValueError, match="temperature must be a positive number"):
        rld_graph(GOOD_X, 0.0, 5)
    with pytest.raises(ValueError, match="NaN or infinite"):
        rld_graph(np.where(np.arange(90).reshape(30, 3) == 7, np.nan, GOOD_X), 0.1)
    with pytest.raises(ValueError, match="pass k"):
        rld_graph(GOOD_X, 0.1, dense_max_nodes=29)
    assert rld_graph(GOOD_X, 0.1, dense_max_nodes=30).shape == (30, 30)  # at the limit: still dense


def test_rld_graph_dense_limit_names_the_way_out():
    # the default limit, 12,000 nodes, is checked before any work is done (no 13,000^2 matrix is built)
    with pytest.raises(ValueError, match=r"dense 13000 x 13000 graph .* dense_max_nodes=12000 .* pass k"):
        rld_graph(np.zeros((13_000, 1), dtype=np.float32), 0.1)


# ------------------------------------------- nearest neighbours ---------------------------------------

def test_nearest_neighbours_are_chis_cosine_neighbours():
    rng = np.random.default_rng(22)
    X = rng.normal(size=(60, 5)) * rng.uniform(0.1, 10, size=(60, 1))  # row scale must not matter
    queries = np.array([0, 17, 59])
    got = nearest_neighbours(X, queries, 4)
    assert got.shape == (3, 4)
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    S = Xn @ Xn.T
    np.fill_diagonal(S, -np.inf)
    expected = np.argsort(-S, axis=1, kind="stable")[queries, :4]  # most similar first, itself excluded
    np.testing.assert_array_equal(got, expected)
    with pytest.raises(ValueError, match=r"1 <= k < n_samples \(= 60\)"):
        nearest_neighbours(X, queries, 60)


def test_one_tie_rule_for_every_neighbour_search():
    """top_neighbours: the first k of a stable descending sort (equal values: lower column first), worked
    out by hand on rows with ties across the cut and inside the k; nearest_neighbours and the kNN
    classifier follow it."""
    from clorg.analysis.heads import KNNClassifier
    from clorg.analysis.metrics import nearest_neighbours, top_neighbours

    S = torch.tensor([[0.5, 0.9, 0.5, 0.1, 0.5],    # a tie across the cut at k = 2: columns 0, 2, 4 hold 0.5
                      [0.2, 0.2, 0.9, 0.2, 0.3],    # no tie at the cut, none inside
                      [0.7, 0.7, 0.7, 0.1, 0.0]])   # ties inside the k
    vals, idx = top_neighbours(S, 2)
    assert idx.tolist() == [[1, 0], [2, 4], [0, 1]]
    torch.testing.assert_close(vals, torch.tensor([[0.9, 0.5], [0.9, 0.3], [0.7, 0.7]]), rtol=0, atol=0)
    assert top_neighbours(S, 3)[1].tolist() == [[1, 0, 2], [2, 4, 0], [0, 1, 2]]
    # four identical points: every other point is equally near; the lower indices are the neighbours
    X = np.ones((4, 3)) / math.sqrt(3)
    assert nearest_neighbours(X, [0, 3], 2).tolist() == [[1, 2], [0, 1]]
    # the kNN vote with k = 1 among equally near training points of two classes: the lower index's class
    bank = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    knn = KNNClassifier(k=1).fit(bank, np.array([1, 0, 0]))
    assert knn.predict(np.array([[1.0, 0.0]])).tolist() == [1]


# ---------------------------------- the numerical safeguards of the RLD graph ----------------------------------

def test_float32_graph_matches_float64_where_rows_nearly_coincide():
    """Rows of norm 10, a tenth of them duplicated: |x|^2 + |y|^2 - 2 x.y cancels to noise in float32 for the
    duplicates, whose distance is 0. Their pairs are recomputed directly (metrics._refine_near_pairs), so the
    float32 graph agrees with the float64 one to 1e-4 (measured: 3e-6); from the cancelled form, 0.3 %."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 256))
    X[54:] = X[:6]  # six exact duplicates
    X *= 10 / np.linalg.norm(X, axis=1, keepdims=True)
    W64 = rld_graph(X, 0.1).numpy()
    W32 = rld_graph(X.astype(np.float32), 0.1).numpy()
    kept = W64 > 1e-6 * W64.max()  # the weights that count; float32 cannot hold the far smaller ones relatively
    assert np.abs(W32[kept] / W64[kept] - 1).max() < 1e-4


def test_the_normalised_graph_clamps_degrees_below_one():
    """The GCN's D^-1/2 W D^-1/2 with every degree clamped at >= 1 (the authors' rule): a far outlier at a small
    temperature has a degree far below 1 even with the n^2 factor, and must be scaled by 1, not by its degree."""
    rng = np.random.default_rng(1)
    X = np.vstack([rng.normal(size=(40, 8)), np.full((1, 8), 50.0)])
    W = rld_graph(X, 0.05).numpy()
    degree = W.sum(axis=1)
    assert degree.min() < 1e-3 and degree.max() > 1  # the data makes the clamp matter
    scale = 1 / np.sqrt(np.maximum(degree, 1))
    np.testing.assert_allclose(rld_graph(X, 0.05, normalised=True).numpy(), W * scale[:, None] * scale[None, :],
                               rtol=1e-10, atol=1e-300)
