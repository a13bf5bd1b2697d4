"""clorg.tsne: perplexity mapping, sampling, affinities (no silent clip), determinism, and the grid figure."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
from openTSNE.affinity import MultiscaleMixture, PerplexityBasedNN, Uniform
from sklearn.neighbors import KNeighborsClassifier

from clorg import plots, tsne
from clorg.tsne import (MIN_PERPLEXITY, _affinities, perplexities, preprocess, sample_indices,
                        tsne_embedding, tsne_grid_embeddings)

RATIOS = [0.001, 0.1, 0.996]


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
    return tsne_embedding(X, 10, seed=0, n_jobs=1)


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


def test_preprocess_scales_and_reduces(data):
    X, _ = data
    assert preprocess(X).shape == (300, 20)  # min(50, D=20, n-1)
    assert preprocess(X[:10]).shape == (10, 9)
    assert preprocess(np.hstack([X] * 5)).shape == (300, 50)


# ----------------------------------------------- embeddings -----------------------------------------------

def test_shape_finite_and_deterministic(data, small_embedding):
    X, _ = data
    Y, note = small_embedding
    assert Y.shape == (300, 2) and Y.dtype == np.float64 and np.isfinite(Y).all()
    assert note == "perplexity 10 over the 30 nearest neighbours"
    Y2, _ = tsne_embedding(X, 10, seed=0, n_jobs=-1)
    assert np.array_equal(Y, Y2)  # the same seed gives the same Y, whatever the number of threads
    Y3, _ = tsne_embedding(X, 10, seed=1, n_jobs=1)
    assert not np.allclose(Y, Y3)


def test_separated_clusters_stay_separated(data, small_embedding):
    _, labels = data
    Y, _ = small_embedding
    # leave-one-out 1-NN accuracy on the embedding: neighbour 0 of a training point is itself
    nn = KNeighborsClassifier(n_neighbors=2).fit(Y, labels)
    neighbour = nn.kneighbors(Y, return_distance=False)[:, 1]
    assert (labels[neighbour] == labels).mean() > 0.99


def test_openTSNE_would_clip_a_near_n_perplexity(data):
    """Why we build the affinities ourselves: TSNE(perplexity=P) uses MultiscaleMixture, which turns
    P = 0.996 n into (n - 1) / 3 with only a log warning."""
    X, _ = data
    aff = MultiscaleMixture(preprocess(X), 298.8, method="exact")
    assert aff.effective_perplexities_ == [pytest.approx(299 / 3)]


def test_near_n_perplexity_is_exact_over_all_points_not_clipped(data):
    X, labels = data
    p = perplexities(300, RATIOS)[0][2]
    aff, note = _affinities(preprocess(X), p, seed=0, n_jobs=1, max_affinities=10**8)
    assert isinstance(aff, PerplexityBasedNN) and aff.effective_perplexity_ == p == 298.8
    assert aff.P.nnz == 300 * 299  # every pair
    assert note == "perplexity 298.8 over all 299 other points (exact)"
    Y, note2 = tsne_embedding(X, p, seed=0, n_jobs=1)
    assert note2 == note and np.isfinite(Y).all()


def test_perplexity_beyond_n_uses_uniform_affinities_and_says_so(data):
    X, _ = data
    aff, note = _affinities(preprocess(X), 400, seed=0, n_jobs=1, max_affinities=10**8)
    assert isinstance(aff, Uniform) and aff.P.nnz == 300 * 299
    assert "uniform affinities over all 299 other points" in note


def test_memory_cap_truncates_neighbours_and_says_so(data):
    X, _ = data
    Xp = preprocess(X)
    aff, note = _affinities(Xp, 30, seed=0, n_jobs=1, max_affinities=300 * 60)
    assert isinstance(aff, PerplexityBasedNN) and aff.effective_perplexity_ == 30
    assert "the 60 nearest neighbours (memory cap" in note
    aff, note = _affinities(Xp, 298.8, seed=0, n_jobs=1, max_affinities=300 * 60)
    assert isinstance(aff, Uniform) and "uniform affinities over the 60 nearest neighbours (memory cap" in note


def test_grid_embeddings_share_one_sample(data, monkeypatch):
    """The plumbing only (the embedding itself is tested above): a stand-in records what it is given."""
    import clorg.tsne

    X, labels = data
    seen = []

    def fake(Xs, p, seed, n_jobs, max_affinities):
        seen.append(Xs)
        return Xs[:, :2], f"perplexity {p:g} over ..."

    monkeypatch.setattr(clorg.tsne, "tsne_embedding", fake)
    feats = {"CL a": X, "SL a": X * 2}
    out = tsne_grid_embeddings(feats, labels, sample_size=150, ratios=[0.001, 0.1], seed=0)
    assert list(out) == [("CL a", 2.0), ("CL a", 15.0), ("SL a", 2.0), ("SL a", 15.0)]
    idx = sample_indices(labels, 150, 0)
    assert all(np.array_equal(Xs, X[idx]) for Xs in seen[:2])
    assert all(np.array_equal(Xs, 2 * X[idx]) for Xs in seen[2:])
    assert out["CL a", 2.0][1] == "perplexity 0.001 x 150 = 0.15 is below 2; used 2; perplexity 2 over ..."
    assert out["CL a", 15.0][1] == "perplexity 15 over ..."
    with pytest.raises(ValueError, match="rows"):
        tsne_grid_embeddings({"x": X[:10]}, labels, 150, [0.1])


# ------------------------------------------------- figure -------------------------------------------------

def test_tsne_grid_figure():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 200)
    columns, ps = ["CL R18", "SL R18"], [2.0, 20.0, 199.2]
    emb = {(c, p): (rng.normal(size=(200, 2)), "note") for c in columns for p in ps}
    emb["SL R18", 20.0] = emb["SL R18", 20.0][0]  # a bare array works too
    fig = plots.tsne_grid(emb, labels, [f"class {i}" for i in range(10)], columns, ps)
    assert len(fig.axes) == 6
    assert fig.axes[1].get_title() == "SL R18\nperplexity 2"
    assert fig.axes[0].get_xticks().size == 0
    assert len(fig.legends) == 1 and len(fig.legends[0].get_texts()) == 10
    matplotlib.pyplot.close(fig)


def test_map_purity_separated_against_mixed_maps():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 50)
    separated = np.eye(2)[labels % 2] * 10 + np.array([0, 20])[labels // 2, None] + rng.normal(0, 0.1, (200, 2))
    mixed = rng.normal(0, 1, (200, 2))
    purity = tsne.map_purity({("SL", 2.0): separated, ("CL", 2.0): (mixed, "a note")}, labels, k=10)
    assert purity["SL", 2.0] == 1.0
    assert purity["CL", 2.0] < 0.5


def test_check_claim5_two_sided_threshold():
    columns = {"CL r18": ("CL", "r18"), "SL r18": ("SL", "r18"), "CL vit": ("CL", "vit")}
    purity = {("CL r18", 5.0): 0.9, ("CL r18", 500.0): 0.5, ("SL r18", 5.0): 0.95, ("SL r18", 500.0): 0.93,
              ("CL vit", 5.0): 0.9, ("CL vit", 500.0): 0.85}
    rows = {r["contrastive"]: r for r in tsne.check_claim5(purity, columns, [5.0, 500.0])}
    assert rows["CL r18"]["holds"] is True and rows["CL r18"]["drop CL"] == pytest.approx(0.4)
    assert "0.950 -> 0.930" in rows["CL r18"]["numbers"]
    assert rows["CL vit"]["holds"] is None  # no supervised ViT column to compare with
    purity["SL r18", 500.0] = 0.8  # SL loses its separation too: claim fails
    assert tsne.check_claim5(purity, columns, [5.0, 500.0])[0]["holds"] is False
