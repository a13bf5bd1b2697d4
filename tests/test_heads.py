"""clorg.analysis.heads: one fit signature, parameter counts, separable toy data, protocols, the GCN's graphs,
determinism, the kNN votes against brute force, input checks."""

import inspect

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist

from clorg.analysis.heads import GCNHead, KNNClassifier, LabelSpreadingHead, LinearHead, knn_probe
from clorg.analysis.metrics import rld_graph


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


def dense_weights(X, T):
    """The authors' RLD graph written out densely in float64: W = n^2 E^2 / (r r^T), W_ii = 0."""
    X = np.asarray(X, dtype=np.float64)
    n = len(X)
    D = cdist(X, X)
    S = -D / D[np.triu_indices(n, 1)].mean()
    np.fill_diagonal(S, -np.inf)
    E = np.exp(S / T)
    r = E.sum(axis=1)
    return n * n * E**2 / np.outer(r, r)


def normalised(W):
    """D^-1/2 W D^-1/2 with degrees clamped at >= 1 (the authors' rule)."""
    inv_sqrt = 1 / np.sqrt(np.maximum(W.sum(axis=1), 1))
    return W * inv_sqrt[:, None] * inv_sqrt[None, :]


# ---------------------------------------------- one signature -----------------------------------------

@pytest.mark.parametrize("head", [LinearHead, GCNHead, LabelSpreadingHead, KNNClassifier])
def test_every_head_has_the_same_fit_signature(head):
    params = list(inspect.signature(head.fit).parameters.values())
    assert [p.name for p in params] == ["self", "X", "y", "X_val", "y_val", "X_test", "y_test"]
    assert all(p.default is None for p in params[3:])


def test_the_shared_signature_means_the_same_for_every_head():
    """The same call, positional, fits every head: the third and fourth arguments are the validation split,
    the fifth and sixth the test split, for inductive and transductive heads alike."""
    (X, y), (Xv, yv), (Xt, yt) = SEPARATED
    heads = [LinearHead(), GCNHead(k=10), LabelSpreadingHead(), KNNClassifier()]
    for head in heads:
        fitted = head.fit(X, y, Xv, yv, Xt, yt)
        assert fitted is head
        assert head.val_accuracy_ == 1.0 and head.test_accuracy_ == 1.0, type(head).__name__
    knn = KNNClassifier().fit(X, y)
    assert knn.val_accuracy_ is None and knn.test_accuracy_ is None
    with pytest.raises(ValueError, match="X_val and y_val must be given together"):
        KNNClassifier().fit(X, y, X_val=Xv)


# ----------------------------------------------- parameters -------------------------------------------

def test_parameter_counts_match_the_paper():
    (X, y), _, (Xt, _) = SEPARATED
    gcn = GCNHead(num_classes=10, k=10, max_steps=2).fit(X, y, X_test=Xt)
    assert gcn.n_parameters_ == 652  # embedding 176 + layer 1 (256+1+16+BN 32) + layer 2 (160+1+10)
    rng = np.random.default_rng(0)
    lin = LinearHead(num_classes=10, max_steps=2).fit(rng.normal(size=(30, 512)), np.arange(30) % 10)
    assert lin.n_parameters_ == 512 * 10 + 10


# ---------------------------------------- separable data: 100 % ---------------------------------------

@pytest.mark.parametrize("k", [None, 10])
def test_gcn_is_perfect_on_separated_classes(k):
    (X, y), (Xv, yv), (Xt, yt) = SEPARATED
    authors = GCNHead(k=k).fit(X, y, X_test=Xt, y_test=yt)
    honest = GCNHead(k=k).fit(X, y, X_test=Xt, y_test=yt, X_val=Xv, y_val=yv)
    for head in (authors, honest):
        assert head.score(yt) == 1.0 and head.test_accuracy_ == 1.0
        np.testing.assert_array_equal(head.predict(), yt)
    assert honest.val_accuracy_ == 1.0 and authors.val_accuracy_ is None
    assert honest.graph_ == authors.graph_ == ("dense" if k is None else "top-10")


def test_linear_and_knn_are_perfect_on_separated_classes():
    (X, y), (Xv, yv), (Xt, yt) = SEPARATED
    assert LinearHead().fit(X, y).score(Xt, yt) == 1.0
    assert LinearHead().fit(X, y, Xv, yv).score(Xt, yt) == 1.0
    for weights in ("similarity", "uniform"):
        assert KNNClassifier(weights=weights).fit(X, y).score(Xt, yt) == 1.0


# ------------------------------------------------ GCN graphs ------------------------------------------

def test_gcn_dense_graph_is_the_authors_normalised_rld_graph():
    (X, _), (Xv, _), (Xt, _) = SEPARATED
    nodes = np.concatenate([X, Xv, Xt])
    A = GCNHead(temperature=0.2).graph(nodes)  # k=None: the dense graph
    assert A.layout == torch.strided and A.dtype == torch.float32 and A.shape == (350, 350)
    np.testing.assert_allclose(A.numpy(), normalised(dense_weights(nodes, 0.2)), rtol=2e-4, atol=1e-7)
    half = GCNHead(temperature=0.2, dense_dtype="bfloat16").graph(nodes)
    assert half.dtype == torch.bfloat16
    np.testing.assert_allclose(half.float().numpy(), A.numpy(), rtol=1e-2, atol=1e-5)  # bf16: 8 bits of mantissa


def test_gcn_top_k_graph_is_the_mean_of_both_directions():
    """k given: each node keeps its k heaviest edges of the dense W (directed graph A), and the GCN's graph
    is (A + A^T) / 2, normalised: an edge both ends keep has weight W_ij, an edge one end keeps W_ij / 2."""
    (X, y), (Xv, yv), (Xt, _) = SEPARATED
    nodes = np.concatenate([X, Xv, Xt])
    W = dense_weights(nodes, 0.2)
    k = 7
    top = np.argsort(-W, axis=1, kind="stable")[:, :k]
    kept = np.zeros_like(W, dtype=bool)
    kept[np.arange(len(W))[:, None], top] = True
    directed = np.where(kept, W, 0.0)
    mean = (directed + directed.T) / 2
    assert (kept ^ kept.T).any() and (kept & kept.T).any()  # both kinds of edge occur here
    np.testing.assert_allclose(mean[kept & kept.T], W[kept & kept.T])
    np.testing.assert_allclose(mean[kept ^ kept.T], W[kept ^ kept.T] / 2)

    A = GCNHead(k=k, temperature=0.2).graph(nodes)
    assert A.layout == torch.sparse_csr and A.shape == (350, 350)
    dense = A.to_dense().numpy()
    assert np.array_equal(dense != 0, kept | kept.T)
    np.testing.assert_allclose(dense, normalised(mean), rtol=2e-4, atol=1e-7)
    # ... and it is rld_graph's top-k graph, normalised
    sparse = rld_graph(torch.from_numpy(nodes), 0.2, k).to_dense().numpy()
    np.testing.assert_allclose(dense, normalised(sparse), rtol=1e-5, atol=1e-8)


def test_gcn_dense_graph_is_refused_above_dense_max_nodes():
    (X, y), _, (Xt, _) = SEPARATED  # 200 + 100 nodes
    with pytest.raises(ValueError, match=r"dense graph on 300 nodes; for more than dense_max_nodes=299 nodes pass k"):
        GCNHead(dense_max_nodes=299).fit(X, y, X_test=Xt)
    with pytest.raises(ValueError, match="dense_max_nodes=100 nodes pass k"):
        GCNHead(dense_max_nodes=100).graph(np.concatenate([X, Xt]))
    assert GCNHead(dense_max_nodes=300, max_steps=2).fit(X, y, X_test=Xt).graph_ == "dense"
    assert GCNHead(k=5, dense_max_nodes=100, max_steps=2).fit(X, y, X_test=Xt).graph_ == "top-5"  # k: no limit


def test_bfloat16_dense_graph_predicts_as_float32_on_separated_classes():
    (X, y), (Xv, yv), (Xt, yt) = SEPARATED
    full = GCNHead(dense_dtype="float32").fit(X, y, Xv, yv, Xt, yt)
    half = GCNHead(dense_dtype="bfloat16").fit(X, y, Xv, yv, Xt, yt)
    np.testing.assert_array_equal(half.predict(), full.predict())
    assert half.test_accuracy_ == full.test_accuracy_ == 1.0 and half.val_accuracy_ == 1.0


@pytest.mark.parametrize("k", [None, 10])
def test_gcn_is_the_two_layer_graph_convolution_written_out(k):
    """The GCN's logits and gradients are those of its definition, every product with the graph taken on
    the layer's input: h1 = selu(BN(A z1 + lam1 z1 + b1)) + h0, z1 = E[labels] Theta1, logits = A z2 + lam2 z2 +
    b2, z2 = h1 Theta2 (the head reaches A z1 through the labels' spread, A onehot(labels), instead), with
    the products made as the training loop makes them (:func:`_propagate_many`, here with a second fit's
    columns beside, as when fits train together)."""
    from clorg.analysis.heads import _GCN, _propagate_many
    (X, y), _, (Xt, _) = splits(noise=0.6)
    A = GCNHead(k=k, temperature=0.2).graph(np.concatenate([X, Xt]))
    dense = A.to_dense() if k else A
    torch.manual_seed(3)
    model = _GCN(5, 16)
    with torch.no_grad():  # non-zero lambdas, so that every term counts
        model.layer1.lam.fill_(0.3)
        model.layer2.lam.fill_(-0.2)
    labels = torch.randint(0, 6, (len(dense),), generator=torch.Generator().manual_seed(1))
    other = torch.randn(len(dense), 7, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        spread, _ = _propagate_many(A, [model.onehot(labels), other])
    h = model.hidden(labels, spread)
    ours = model.logits(h, _propagate_many(A, [model.projected(h), other])[0])
    ours.square().sum().backward()
    got = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    l1, l2 = model.layer1, model.layer2
    z1 = model.embed(labels) @ l1.theta
    h1 = torch.nn.functional.selu(torch.nn.functional.batch_norm(
        dense @ z1 + l1.lam * z1 + l1.bias, None, None, l1.norm.weight, l1.norm.bias, training=True)) + model.embed(labels)
    z2 = h1 @ l2.theta
    theirs = dense @ z2 + l2.lam * z2 + l2.bias
    theirs.square().sum().backward()
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5)
    # the first layer's bias: BatchNorm cancels it, so its true gradient is 0 and both sides hold float32
    # noise of the sums they are made of (~1e-4 against gradients of 1e1 to 1e3): compared at that scale
    scale = max(float(g.abs().max()) for g in got)
    for (name, p), g in zip(model.named_parameters(), got):
        atol = 1e-5 * scale if name == "layer1.bias" else 1e-4
        torch.testing.assert_close(g, p.grad, rtol=1e-4, atol=atol, msg=lambda m: f"{name}: {m}")


def test_fit_on_graph_roles_are_index_sets_in_any_node_order():
    """One graph over all images serves every split: the nodes may be in any order, roles are by index.
    Without validation nodes it is the authors' protocol (what classify's authors'-protocol fit uses)."""
    (X, y), (Xv, yv), (Xt, yt) = SEPARATED
    nodes = np.concatenate([Xt, X, Xv])  # test first
    head = GCNHead(k=10, seed=1)
    A = head.graph(nodes)
    n_t, n_tr = len(Xt), len(X)
    train_idx, val_idx, test_idx = np.arange(n_t, n_t + n_tr), np.arange(n_t + n_tr, len(nodes)), np.arange(n_t)
    honest = head.fit_on_graph(A, np.concatenate([y, yv]), train_idx, val_idx, test_idx, yt)
    assert honest.test_accuracy_ == honest.val_accuracy_ == 1.0
    np.testing.assert_array_equal(honest.predict(), yt)
    authors = GCNHead(k=10, seed=1).fit_on_graph(A, np.concatenate([y, yv]), np.concatenate([train_idx, val_idx]),
                                                 [], test_idx, yt)
    assert authors.val_accuracy_ is None and authors.best_test_accuracy_ == 1.0
    with pytest.raises(ValueError, match="labels has 200 labels but its features have 250 rows"):
        GCNHead(k=10).fit_on_graph(A, y, train_idx, val_idx, test_idx, yt)


def test_heads_fitted_together_are_the_heads_fitted_alone():
    """fit_gcn_heads shares each product with the graph among the heads still training; every head stops,
    scores and predicts as it does alone: the honest fits of three seeds (one stopped by the step cap),
    an authors' fit (no validation, no cap) and one that is not even scored (no test labels either). On a
    sparse graph, whose product sums each row alone, so that its width changes no bit (a dense product's
    kernel may round wider products differently). (Alone, these heads are those of the one-at-a-time loop
    before fit_gcn_heads, ebb7cb9^: same steps and test curves, checked when it was written.)"""
    k = 10
    from clorg.analysis.heads import GCNFit, fit_gcn_heads
    (X, y), (Xv, yv), (Xt, yt) = splits(noise=0.6)
    nodes = np.concatenate([X, Xv, Xt])
    A = GCNHead(k=k, temperature=0.2).graph(nodes)
    n_tr, n_va = len(X), len(Xv)
    fit_idx, val_idx, test_idx = np.arange(n_tr), np.arange(n_tr, n_tr + n_va), np.arange(n_tr + n_va, len(nodes))
    labels = np.concatenate([y, yv])

    def specs():
        honest = [GCNFit(GCNHead(k=k, temperature=0.2, seed=s, patience=10, max_steps=cap), labels, fit_idx,
                         val_idx, test_idx, yt) for s, cap in ((0, 400), (1, 12), (2, 400))]
        authors = GCNFit(GCNHead(k=k, temperature=0.2, seed=0, patience=10, max_steps=None), labels,
                         np.concatenate([fit_idx, val_idx]), [], test_idx, yt)
        unscored = GCNFit(GCNHead(k=k, temperature=0.2, seed=4, patience=10, max_steps=None), labels,
                          np.concatenate([fit_idx, val_idx]), [], test_idx)
        return honest + [authors, unscored]

    together = fit_gcn_heads(A, specs())
    alone = [s.head.fit_on_graph(A, s.labels, s.fit_idx, s.val_idx, s.test_idx, s.y_test) for s in specs()]
    assert together[1].n_steps_ == 12  # the cap stopped it; the others stopped on patience, at their own steps
    assert len({h.n_steps_ for h in together}) > 2
    assert together[-1].test_curve_ is None and together[-1].test_accuracy_ is None
    for a, b in zip(together, alone):
        assert (a.n_steps_, a.best_step_, a.best_score_) == (b.n_steps_, b.best_step_, b.best_score_)
        assert (a.val_accuracy_, a.test_accuracy_, a.best_test_accuracy_) == \
            (b.val_accuracy_, b.test_accuracy_, b.best_test_accuracy_)
        if a.test_curve_ is not None:
            np.testing.assert_array_equal(a.test_curve_, b.test_curve_)
        np.testing.assert_array_equal(a.predict(), b.predict())


def test_heads_fitted_together_need_a_head_each():
    """A head is fitted in place: the same head in two fits would keep only the later fit's attributes."""
    from clorg.analysis.heads import GCNFit, fit_gcn_heads
    (X, y), _, (Xt, yt) = SEPARATED
    A = GCNHead(k=10).graph(np.concatenate([X, Xt]))
    head = GCNHead(k=10, max_steps=2)
    fit = (y, np.arange(len(X)), [], np.arange(len(X), len(X) + len(Xt)), yt)
    with pytest.raises(ValueError, match="a GCNHead of its own"):
        fit_gcn_heads(A, [GCNFit(head, *fit), GCNFit(head, *fit)])


def test_fit_on_graph_refuses_overlapping_roles_and_indices_outside_the_graph():
    """A test node that is also a fit node would show its label to the head: refused, as are indices
    the graph does not have."""
    (X, y), (Xv, yv), (Xt, yt) = SEPARATED
    A = GCNHead(k=10).graph(np.concatenate([X, Xv, Xt]))
    n_tr, n_v, n = len(X), len(Xv), A.shape[0]
    fit_idx, val_idx, test_idx = np.arange(n_tr), np.arange(n_tr, n_tr + n_v), np.arange(n_tr + n_v, n)
    labels = np.concatenate([y, yv])
    leaky = test_idx.copy()
    leaky[0] = fit_idx[0]
    with pytest.raises(ValueError, match="the fit, validation and test nodes overlap"):
        GCNHead(k=10).fit_on_graph(A, labels, fit_idx, val_idx, leaky, yt)
    with pytest.raises(ValueError, match=rf"node indices must lie in \[0, {n}\)"):
        GCNHead(k=10).fit_on_graph(A, labels, fit_idx, val_idx, test_idx + 1, yt)


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
    plain = GCNHead(k=10, patience=15).fit(X, y, X_test=Xt, **val)
    watched = GCNHead(k=10, patience=15).fit(X, y, X_test=Xt, y_test=yt, **val)
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
    a = GCNHead(k=10, patience=10, seed=3).fit(X, y, X_test=Xt, y_test=yt, X_val=Xv, y_val=yv)
    b = GCNHead(k=10, patience=10, seed=3).fit(X, y, X_test=Xt, y_test=yt, X_val=Xv, y_val=yv)
    c = GCNHead(k=10, patience=10, seed=4).fit(X, y, X_test=Xt, y_test=yt, X_val=Xv, y_val=yv)
    np.testing.assert_array_equal(a.test_curve_, b.test_curve_)
    np.testing.assert_array_equal(a.predict(), b.predict())
    assert not all(torch.equal(p, q) for p, q in zip(a.model_.parameters(), c.model_.parameters()))
    l1, l2 = LinearHead(seed=1).fit(X, y, Xv, yv), LinearHead(seed=1).fit(X, y, Xv, yv)
    assert torch.equal(l1.model_.weight, l2.model_.weight)
    state = torch.random.get_rng_state()
    GCNHead(k=10, max_steps=3).fit(X, y, X_test=Xt)
    assert torch.equal(state, torch.random.get_rng_state())  # the global RNG is left alone


# ------------------------------------------ noisy but clustered ---------------------------------------

def test_knn_and_label_spreading_beat_chance_on_noisy_clusters():
    (X, y), _, (Xt, yt) = splits(noise=0.5)  # 5 classes: chance is 0.2
    assert KNNClassifier(weights="similarity").fit(X, y).score(Xt, yt) > 0.5
    assert KNNClassifier(weights="uniform").fit(X, y).score(Xt, yt) > 0.5
    spread = LabelSpreadingHead().fit(X, y, X_test=Xt, y_test=yt)
    assert spread.test_accuracy_ == spread.score(yt) > 0.5
    assert spread.predict().shape == yt.shape


# ------------------------------------------------ kNN votes -------------------------------------------

def brute_knn(bank, bank_y, queries, k, weights="uniform", temperature=0.07):
    """Cosine kNN written out: sort every training point by similarity, sum the k nearest votes per class,
    the smaller class wins a tie."""
    B = bank / np.linalg.norm(bank, axis=1, keepdims=True)
    Q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    S = Q.astype(np.float64) @ B.astype(np.float64).T
    out = []
    for row in S:
        nearest = np.argsort(-row, kind="stable")[:k]
        w = np.ones(k) if weights == "uniform" else np.exp((row[nearest] - row[nearest].max()) / temperature)
        votes = np.bincount(bank_y[nearest], weights=w, minlength=bank_y.max() + 1)
        out.append(int(np.argmax(votes)))  # the first maximum: the smaller class
    return np.array(out)


@pytest.mark.parametrize("k", [1, 4, 15])
@pytest.mark.parametrize("weights", ["uniform", "similarity"])
def test_knn_matches_brute_force(k, weights):
    (X, y), _, (Xt, _) = splits(seed=k, noise=0.8)  # noisy: many queries have mixed neighbourhoods
    got = KNNClassifier(k=k, weights=weights, temperature=0.1, block_size=7).fit(X, y).predict(Xt)
    np.testing.assert_array_equal(got, brute_knn(X, y, Xt, k, weights, temperature=0.1))
    # uniform: the majority class of the k nearest, counted by hand
    if weights == "uniform" and k > 1:
        mixed = 0
        for q, pred in zip(Xt[:20], got[:20]):
            sims = (X / np.linalg.norm(X, axis=1, keepdims=True)) @ (q / np.linalg.norm(q))
            counts = np.bincount(y[np.argsort(-sims)[:k]], minlength=5)
            assert counts[pred] == counts.max() and pred == np.flatnonzero(counts == counts.max())[0]
            mixed += (counts > 0).sum() > 1
        assert mixed > 0  # the vote really decided something


def test_knn_uniform_tie_goes_to_the_smaller_class():
    X = np.array([[1.0, 0.1], [1.0, -0.1], [0.0, 1.0], [0.0, -1.0]])
    y = np.array([3, 1, 2, 2])
    # k = 2: one vote for class 3, one for class 1: class 1 wins the tie whatever the neighbours' order
    assert KNNClassifier(k=2).fit(X, y).predict(np.array([[1.0, 0.05]]))[0] == 1
    assert KNNClassifier(k=2).fit(X, y).predict(np.array([[1.0, -0.05]]))[0] == 1


def test_knn_votes_by_similarity():
    # Query at angle 0: one class-0 point very close, two class-1 points further away.
    angles = np.array([0.05, 0.6, 0.65])
    X = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    y = np.array([0, 1, 1])
    query = np.array([[1.0, 0.0]])
    assert KNNClassifier(k=3, weights="similarity", temperature=0.01).fit(X, y).predict(query)[0] == 0
    assert KNNClassifier(k=3, weights="uniform").fit(X, y).predict(query)[0] == 1
    assert KNNClassifier(k=3, weights="similarity", temperature=0.01, block_size=1).fit(X, y).predict(
        np.repeat(query, 3, 0)).tolist() == [0] * 3
    # a high temperature flattens the weights to a majority vote
    assert KNNClassifier(k=3, weights="similarity", temperature=100.0).fit(X, y).predict(query)[0] == 1


# ----------------------------------------------- bad input --------------------------------------------

(X0, Y0), _, (XT0, YT0) = splits()


def fit_all(X, y):
    """Each head's fit on the given training set."""
    return {"linear": lambda: LinearHead(max_steps=2).fit(X, y),
            "gcn": lambda: GCNHead(k=5, max_steps=2).fit(X, y, X_test=XT0),
            "knn": lambda: KNNClassifier().fit(X, y),
            "label_spreading": lambda: LabelSpreadingHead().fit(X, y, X_test=XT0)}


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
    for name, fit in fit_all(X, y).items():
        if name == "knn" and message.startswith("at least 2 classes"):
            continue  # a memory bank of one class is allowed: the vote is defined (see below)
        with pytest.raises(ValueError, match=message):
            fit()


def test_knn_of_one_class_votes_for_it():
    assert KNNClassifier(k=3).fit(X0, np.full(200, 4)).predict(XT0).tolist() == [4] * len(XT0)


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
        GCNHead().fit(X0, Y0)
    with pytest.raises(ValueError, match="X_test is required"):
        LabelSpreadingHead().fit(X0, Y0, X0[:5], Y0[:5])  # a validation split is not a test split
    with pytest.raises(ValueError, match="pass k"):
        GCNHead(k=None, dense_max_nodes=4000).fit(np.ones((5000, 2)), np.arange(5000) % 2, X_test=np.ones((1, 2)))
    with pytest.raises(ValueError, match="k must be smaller than the number of nodes"):
        GCNHead(k=400).fit(X0, Y0, X_test=XT0)
    with pytest.raises(ValueError, match="mask_range must be"):
        GCNHead(mask_range=(0.5, 0.1)).fit(X0, Y0, X_test=XT0)
    with pytest.raises(ValueError, match=r"dense_dtype must be one of \['float32', 'bfloat16'\]"):
        GCNHead(dense_dtype="float16").fit(X0, Y0, X_test=XT0)
    with pytest.raises(ValueError, match="lr must be a positive number"):
        LinearHead(lr=0).fit(X0, Y0)
    with pytest.raises(ValueError, match="patience must be a positive integer"):
        GCNHead(patience=2.5).fit(X0, Y0, X_test=XT0)
    with pytest.raises(ValueError, match=r"label_smoothing must be a number in \[0, 1\)"):
        LinearHead(label_smoothing=1.0).fit(X0, Y0)
    with pytest.raises(ValueError, match="weights must be"):
        KNNClassifier(weights="distance").fit(X0, Y0)
    with pytest.raises(ValueError, match="k must be at most the number of training samples"):
        KNNClassifier(k=201).fit(X0, Y0)
    with pytest.raises(ValueError, match="all-zero row"):
        KNNClassifier().fit(X0, Y0).predict(np.zeros((1, 32)))
    with pytest.raises(ValueError, match=r"alpha must be a number in \(0, 1\)"):
        LabelSpreadingHead(alpha=1.0).fit(X0, Y0, X_test=XT0)
    with pytest.raises(ValueError, match="y_test has 3 labels"):
        GCNHead(k=5, max_steps=2).fit(X0, Y0, X_test=XT0).score(YT0[:3])


# ------------------------------------ what each fit may see of the labels ------------------------------------

def _gcn_run(mask_range=(0.2, 0.4)):
    """A _GCNRun on 50 nodes: 30 train (fit), 10 validation, 10 test, three classes."""
    from clorg.analysis.heads import GCNFit, _GCNRun

    y = np.arange(40) % 3
    fit = GCNFit(GCNHead(num_classes=3, mask_range=mask_range, seed=0), y, np.arange(30), np.arange(30, 40),
                 np.arange(40, 50), num_classes=3)
    return _GCNRun(fit, torch.eye(50)), y


def test_a_gcn_step_hides_a_share_of_the_fit_labels_and_never_shows_validation_or_test_labels():
    """The authors' masking (SPEC 2.5): each step draws p ~ U(mask_range) and shows a fit node "unknown" (index C)
    with probability p, its label otherwise; validation and test nodes are always unknown, in training and in
    evaluation alike (their labels would leak into the early stopping and the score)."""
    r, y = _gcn_run()
    C = 3
    assert r.visible[:30].tolist() == y[:30].tolist() and (r.visible[30:] == C).all()  # evaluation inputs
    shares = []
    for _ in range(400):
        inputs, hidden = r.draw_inputs()
        assert (inputs[30:] == C).all()  # validation and test: never a label
        assert (inputs[:30][hidden] == C).all() and inputs[:30][~hidden].tolist() == y[:30][~hidden.numpy()].tolist()
        shares.append(hidden.float().mean().item())
    assert 0.27 < np.mean(shares) < 0.33  # p ~ U(0.2, 0.4): the hidden share averages 0.3 ...
    assert min(shares) >= 0.03 and max(shares) < 0.75  # ... and follows p, not one node a step
    wide, _ = _gcn_run(mask_range=(0.6, 0.8))
    assert np.mean([wide.draw_inputs()[1].float().mean().item() for _ in range(400)]) > 0.6  # the range is read


def test_label_spreading_spreads_the_fit_labels_only(monkeypatch):
    """Validation and test nodes enter the graph unlabelled (-1): their labels are only read to score."""
    from sklearn.semi_supervised import LabelSpreading

    seen = {}
    fit = LabelSpreading.fit

    def spy(self, X, y):
        seen["labels"] = np.asarray(y).copy()
        return fit(self, X, y)

    monkeypatch.setattr(LabelSpreading, "fit", spy)
    (X, y), (Xv, yv), (Xt, yt) = splits(noise=0.6)
    LabelSpreadingHead(k=5).fit(X, y, X_val=Xv, y_val=yv, X_test=Xt, y_test=yt)
    assert seen["labels"][:len(X)].tolist() == y.tolist() and (seen["labels"][len(X):] == -1).all()


@pytest.mark.parametrize("head", ["linear", "gcn"])
def test_early_stopping_keeps_the_weights_of_the_best_step_not_the_last(head):
    """On noisy data the last weights scored are worse than the best ones; the fitted head must hold the best.
    The validation split is passed again as test nodes, so the test curve holds every step's score."""
    noise = 0.9 if head == "linear" else 0.6
    (X, y), (Xv, yv), _ = splits(noise=noise)
    if head == "linear":
        h = LinearHead(patience=5).fit(X, y, Xv, yv, X_test=Xv, y_test=yv)
    else:
        h = GCNHead(k=10, patience=10).fit(X, y, X_val=Xv, y_val=yv, X_test=Xv, y_test=yv)
    assert h.test_curve_[-1] < h.best_score_ == h.test_curve_[h.best_step_]  # the data makes the test bite
    assert h.val_accuracy_ == h.best_score_  # the kept weights are the best step's


def test_knn_probe_caps_k_at_the_training_points_and_scores_each_k_used_once():
    """A k above the training points is capped at their number (a small subset under a profile's k), keyed by the
    k used; two requested ks that come to one k give one entry; each accuracy is the classifier's at that k."""
    rng = np.random.default_rng(0)
    train, test = rng.normal(size=(6, 4)), rng.normal(size=(9, 4))
    y_train, y_test = np.array([0, 0, 1, 1, 2, 2]), rng.integers(0, 3, 9)
    got = knn_probe(train, y_train, test, y_test, [1, 10, 20, 3])
    assert list(got) == [1, 6, 3]
    for k, accuracy in got.items():
        assert accuracy == KNNClassifier(k=k).fit(train, y_train).score(test, y_test)
    assert list(knn_probe(train, y_train, test, y_test, [6])) == [6]
