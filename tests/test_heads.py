"""clorg.heads: parameter counts, separable toy data, protocols, determinism, input checks."""

import numpy as np
import pytest
import torch

from clorg.heads import GCNHead, LabelSpreadingHead, LinearHead, WeightedKNN
from clorg.metrics import rld_graph


def clusters(seed, n_per, n_classes=5, dim=32, noise=0.05):
    """Tight classes around random unit centres, L2-normalised, shuffled."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_classes, dim))
    y = np.repeat(np.arange(n_classes), n_per)
    X = centres[y] / np.linalg.norm(centres[y], axis=1, keepdims=True) + noise * rng.normal(size=(len(y), dim))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    order = rng.permutation(len(y))
    return X[order].astype(np.float32), y[order]


def splits(seed=0, noise=0.05, n_classes=5):
    """40 train / 10 val / 20 test per class (same centres for all three)."""
    X, y = clusters(seed, 70, n_classes=n_classes, noise=noise)
    n_tr, n_va = 40 * n_classes, 10 * n_classes
    return (X[:n_tr], y[:n_tr]), (X[n_tr:n_tr + n_va], y[n_tr:n_tr + n_va]), (X[n_tr + n_va:], y[n_tr + n_va:])


SEPARATED = splits()


# ----------------------------------------------- parameters -------------------------------------------

def test_parameter_counts_match_the_paper():
    (X, y), _, (Xt, _) = SEPARATED
    gcn = GCNHead(num_classes=10, k=10, max_steps=2).fit(X, y, Xt)
    assert gcn.n_parameters_ == 652  # embedding 176 + layer 1 (256+1+16+BN 32) + layer 2 (160+1+10)
    rng = np.random.default_rng(0)
    lin = LinearHead(num_classes=10, max_steps=2).fit(rng.normal(size=(30, 512)), np.arange(30) % 10)
    assert lin.n_parameters_ == 512 * 10 + 10


# ---------------------------------------- separable data: 100 % ---------------------------------------

@pytest.mark.parametrize("k", [None, 10])
def test_gcn_is_perfect_on_separated_classes(k):
    (X, y), (Xv, yv), (Xt, yt) = SEPARATED
    authors = GCNHead(k=k).fit(X, y, Xt, yt)
    honest = GCNHead(k=k).fit(X, y, Xt, yt, X_val=Xv, y_val=yv)
    for head in (authors, honest):
        assert head.score(yt) == 1.0 and head.test_accuracy_ == 1.0
        np.testing.assert_array_equal(head.predict(), yt)
    assert honest.val_accuracy_ == 1.0
    assert (honest.graph_.layout == torch.strided) == (k is None)


def test_linear_and_knn_are_perfect_on_separated_classes():
    (X, y), (Xv, yv), (Xt, yt) = SEPARATED
    assert LinearHead().fit(X, y).score(Xt, yt) == 1.0
    assert LinearHead().fit(X, y, Xv, yv).score(Xt, yt) == 1.0
    for weights in ("similarity", "uniform"):
        assert WeightedKNN(weights=weights).fit(X, y).score(Xt, yt) == 1.0


def test_gcn_graph_is_the_sparse_rld_graph_on_all_nodes():
    (X, y), (Xv, yv), (Xt, _) = SEPARATED
    head = GCNHead(k=7, temperature=0.2, max_steps=1).fit(X, y, Xt, X_val=Xv, y_val=yv)
    W = head.graph_
    expected = rld_graph(np.concatenate([X, Xv, Xt]), 0.2, 7)
    assert W.layout == torch.sparse_coo and W.shape == (350, 350)
    assert torch.equal(W.indices(), expected.indices()) and torch.equal(W.values(), expected.values())
    dense = W.to_dense()
    assert torch.equal(dense, dense.T) and not bool(dense.diagonal().any())
    assert bool(((dense != 0).sum(dim=1) >= 7).all())


# ------------------------------------------------ protocols -------------------------------------------

def test_linear_honest_protocol_ignores_test_labels():
    (X, y), (Xv, yv), (Xt, yt) = splits(noise=0.6)
    plain = LinearHead(patience=10).fit(X, y, Xv, yv)
    watched = LinearHead(patience=10).fit(X, y, Xv, yv, X_test=Xt, y_test=yt)
    assert torch.equal(plain.model_.weight, watched.model_.weight)
    np.testing.assert_array_equal(plain.predict(Xt), watched.predict(Xt))
    assert plain.test_curve_ is None and plain.best_test_accuracy_ is None
    assert len(watched.test_curve_) == watched.n_steps_
    assert watched.best_test_accuracy_ == watched.test_curve_.max() >= watched.test_accuracy_


@pytest.mark.parametrize("with_val", [True, False])
def test_gcn_honest_protocol_ignores_test_labels(with_val):
    (X, y), (Xv, yv), (Xt, yt) = splits(noise=0.6)
    val = dict(X_val=Xv, y_val=yv) if with_val else {}
    plain = GCNHead(k=10, patience=15).fit(X, y, Xt, **val)
    watched = GCNHead(k=10, patience=15).fit(X, y, Xt, yt, **val)
    for a, b in zip(plain.model_.parameters(), watched.model_.parameters()):
        assert torch.equal(a, b)
    np.testing.assert_array_equal(plain.predict(), watched.predict())
    assert plain.n_steps_ == watched.n_steps_ and plain.test_accuracy_ is None
    assert watched.best_test_accuracy_ == watched.test_curve_.max() >= watched.test_accuracy_
    assert watched.score(yt) == watched.test_accuracy_


def test_early_stopping_keeps_the_best_validation_weights():
    (X, y), (Xv, yv), _ = splits(noise=0.6)
    head = LinearHead(patience=5).fit(X, y, Xv, yv)
    assert head.val_accuracy_ == head.best_score_
    assert head.n_steps_ < head.max_steps  # it stopped early ...
    assert head.n_steps_ - 1 - head.best_step_ <= 5  # ... at most `patience` steps after the kept one


def test_determinism_and_seed():
    (X, y), (Xv, yv), (Xt, yt) = splits(noise=0.6)
    a = GCNHead(k=10, patience=10, seed=3).fit(X, y, Xt, yt, X_val=Xv, y_val=yv)
    b = GCNHead(k=10, patience=10, seed=3).fit(X, y, Xt, yt, X_val=Xv, y_val=yv)
    c = GCNHead(k=10, patience=10, seed=4).fit(X, y, Xt, yt, X_val=Xv, y_val=yv)
    np.testing.assert_array_equal(a.test_curve_, b.test_curve_)
    np.testing.assert_array_equal(a.predict(), b.predict())
    assert not all(torch.equal(p, q) for p, q in zip(a.model_.parameters(), c.model_.parameters()))
    l1, l2 = LinearHead(seed=1).fit(X, y, Xv, yv), LinearHead(seed=1).fit(X, y, Xv, yv)
    assert torch.equal(l1.model_.weight, l2.model_.weight)
    state = torch.random.get_rng_state()
    GCNHead(k=10, max_steps=3).fit(X, y, Xt)
    assert torch.equal(state, torch.random.get_rng_state())  # the global RNG is left alone


# ------------------------------------------ noisy but clustered ---------------------------------------

def test_knn_and_label_spreading_beat_chance_on_noisy_clusters():
    (X, y), _, (Xt, yt) = splits(noise=0.5)  # 5 classes: chance is 0.2
    assert WeightedKNN().fit(X, y).score(Xt, yt) > 0.5
    assert WeightedKNN(weights="uniform").fit(X, y).score(Xt, yt) > 0.5
    spread = LabelSpreadingHead().fit(X, y, Xt, yt)
    assert spread.test_accuracy_ == spread.score(yt) > 0.5
    assert spread.predict().shape == yt.shape


def test_weighted_knn_votes_by_similarity():
    # Query at angle 0: one class-0 point very close, two class-1 points further away.
    angles = np.array([0.05, 0.6, 0.65])
    X = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    y = np.array([0, 1, 1])
    query = np.array([[1.0, 0.0]])
    assert WeightedKNN(k=3, temperature=0.01).fit(X, y).predict(query)[0] == 0
    assert WeightedKNN(k=3, weights="uniform").fit(X, y).predict(query)[0] == 1
    assert WeightedKNN(k=3, temperature=0.01, block_size=1).fit(X, y).predict(np.repeat(query, 3, 0)).tolist() == [0] * 3


# ----------------------------------------------- bad input --------------------------------------------

(X0, Y0), _, (XT0, YT0) = splits()


def fit_all(X, y):
    """Each head's fit on the given training set."""
    return [lambda: LinearHead(max_steps=2).fit(X, y), lambda: GCNHead(k=5, max_steps=2).fit(X, y, XT0),
            lambda: WeightedKNN().fit(X, y), lambda: LabelSpreadingHead().fit(X, y, XT0)]


@pytest.mark.parametrize("X, y, message", [
    (X0[:, 0], Y0, "X must be a 2-D array"),
    (np.where(np.arange(X0.size).reshape(X0.shape) == 5, np.nan, X0), Y0, "X contains NaN or infinite"),
    (np.where(np.arange(X0.size).reshape(X0.shape) == 5, np.inf, X0), Y0, "X contains NaN or infinite"),
    (X0, Y0[:-1], "y has 199 labels but its features have 200 rows"),
    (X0, np.zeros(200, dtype=int), "at least 2 classes, got 1"),
    (X0, Y0.astype(float), "integer class labels"),
    (X0, Y0 - 1, r"class indices in >= 0"),
], ids=["1d", "nan", "inf", "length", "one-class", "float", "negative"])
def test_bad_training_input(X, y, message):
    for fit in fit_all(X, y):
        with pytest.raises(ValueError, match=message):
            fit()


def test_bad_other_input():
    with pytest.raises(ValueError, match=r"y must hold class indices in \[0, 3\)"):
        LinearHead(num_classes=3).fit(X0, Y0)
    with pytest.raises(ValueError, match=r"y_val must hold class indices in \[0, 5\)"):
        LinearHead().fit(X0, Y0, X0[:5], np.array([0, 1, 2, 3, 5]))
    with pytest.raises(ValueError, match="X_val was given without y_val"):
        LinearHead().fit(X0, Y0, X_val=X0)
    with pytest.raises(ValueError, match="X_test has 3 features but the training features have 32"):
        LinearHead().fit(X0, Y0, X_test=X0[:, :3], y_test=Y0)
    with pytest.raises(ValueError, match="X_test is required"):
        GCNHead().fit(X0, Y0, None)
    with pytest.raises(ValueError, match="pass k"):
        GCNHead(k=None).fit(np.ones((5000, 2)), np.arange(5000) % 2, np.ones((1, 2)))
    with pytest.raises(ValueError, match="k must be smaller than the number of nodes"):
        GCNHead(k=400).fit(X0, Y0, XT0)
    with pytest.raises(ValueError, match="mask_range must be"):
        GCNHead(mask_range=(0.5, 0.1)).fit(X0, Y0, XT0)
    with pytest.raises(ValueError, match="lr must be a positive number"):
        LinearHead(lr=0).fit(X0, Y0)
    with pytest.raises(ValueError, match="patience must be a positive integer"):
        GCNHead(patience=2.5).fit(X0, Y0, XT0)
    with pytest.raises(ValueError, match="label_smoothing must be in"):
        LinearHead(label_smoothing=1.0).fit(X0, Y0)
    with pytest.raises(ValueError, match="weights must be"):
        WeightedKNN(weights="distance").fit(X0, Y0)
    with pytest.raises(ValueError, match="k must be at most the number of training samples"):
        WeightedKNN(k=201).fit(X0, Y0)
    with pytest.raises(ValueError, match="all-zero row"):
        WeightedKNN().fit(X0, Y0).predict(np.zeros((1, 32)))
    with pytest.raises(ValueError, match="alpha must be in"):
        LabelSpreadingHead(alpha=1.0).fit(X0, Y0, XT0)
    with pytest.raises(ValueError, match="y_test has 3 labels"):
        GCNHead(k=5, max_steps=2).fit(X0, Y0, XT0).score(YT0[:3])
