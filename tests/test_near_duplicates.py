"""Cross-class near-duplicate pairs (claim 6): the blockwise search against brute force, the pair
cosines under other features, the report the claim is checked on (clorg.book.claims), and the figures."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from clorg.analysis.near_duplicates import (cross_class_pairs, cross_class_report, pair_cosines,  # noqa: E402
                                            random_cross_class_pairs)
from clorg.book import plots  # noqa: E402


def brute_force(X, y, top):
    """Every cross-class pair i < j with its cosine, sorted by (cosine desc, i, j), the first ``top``."""
    U = X / np.linalg.norm(X, axis=1, keepdims=True)
    S = U @ U.T
    rows = [(-S[i, j], i, j) for i in range(len(X)) for j in range(i + 1, len(X)) if y[i] != y[j]]
    rows.sort()
    return [(i, j, -c) for c, i, j in rows[:top]]


@pytest.mark.parametrize("seed, n, classes, top, block", [
    (0, 50, 3, 10, 7),     # blocks smaller than n, not dividing it
    (1, 61, 5, 25, 16),
    (2, 40, 2, 1, 1),      # one-row blocks
    (3, 33, 4, 12, 1000),  # one block
    (4, 45, 3, 200, 8),    # top larger than a row's partners: must still be exact
])
def test_matches_brute_force(seed, n, classes, top, block):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 6))
    y = rng.integers(0, classes, size=n)
    want = brute_force(X, y, top)
    got = cross_class_pairs(X, y, top=top, block_size=block)
    assert list(got.columns) == ["i", "j", "label_i", "label_j", "cosine"]
    assert list(zip(got["i"], got["j"])) == [(i, j) for i, j, _ in want]
    np.testing.assert_allclose(got["cosine"], [c for _, _, c in want], atol=1e-12)
    assert (got["label_i"].to_numpy() == y[got["i"]]).all() and (got["label_j"].to_numpy() == y[got["j"]]).all()
    assert got.attrs["n_rows"] == n


def test_pairs_are_cross_class_unique_and_sorted():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(80, 4)).astype(np.float32)
    y = np.repeat(np.arange(4), 20)
    got = cross_class_pairs(X, y, top=300, block_size=9)
    assert len(got) == 300
    assert (got["i"] < got["j"]).all()
    assert (got["label_i"] != got["label_j"]).all()
    assert not got.duplicated(["i", "j"]).any()
    assert got["cosine"].is_monotonic_decreasing
    assert got["cosine"].dtype == np.float64


def test_fewer_cross_class_pairs_than_top_returns_them_all():
    X = np.random.default_rng(0).normal(size=(5, 3))
    y = np.array([0, 0, 0, 0, 1])  # 4 cross-class pairs
    got = cross_class_pairs(X, y, top=10, block_size=2)
    assert sorted(zip(got["i"], got["j"])) == [(0, 4), (1, 4), (2, 4), (3, 4)]


def test_ties_are_broken_by_i_then_j_whatever_the_block_size():
    # rows 0-3 are one direction, rows 4-7 another at exactly cosine 0 to it; the 10 cross-class pairs
    # within a group all tie at cosine 1 (exact in floating point): (0, 3) and (4, 7) share a class
    X = np.array([[1, 0]] * 4 + [[0, 1]] * 4, dtype=np.float32)
    y = np.array([0, 1, 2, 0, 1, 2, 0, 1])
    expected_top = [(0, 1), (0, 2), (1, 2), (1, 3), (2, 3), (4, 5), (4, 6), (5, 6)]
    for block in (1, 2, 3, 5, 8):
        got = cross_class_pairs(X, y, top=8, block_size=block)
        assert list(zip(got["i"], got["j"])) == expected_top, block
        assert (got["cosine"] == 1.0).all()
    # the cut falls inside a tie: the smaller (i, j) win
    got = cross_class_pairs(X, y, top=3, block_size=3)
    assert list(zip(got["i"], got["j"])) == [(0, 1), (0, 2), (1, 2)]
    every = cross_class_pairs(X, y, top=40, block_size=3)  # all 21 cross-class pairs: 10 at cosine 1, 11 at 0
    assert len(every) == 21 and (every["cosine"].iloc[10:] == 0).all()
    assert list(zip(every["i"], every["j"]))[10:13] == [(0, 4), (0, 5), (0, 7)]


def test_rows_are_normalised_and_labels_can_be_strings():
    X = np.array([[1.0, 0.0], [100.0, 1.0], [0.0, 3.0]])
    y = np.array(["cat", "dog", "cat"])
    got = cross_class_pairs(X, y, top=1)
    assert (got.loc[0, "i"], got.loc[0, "j"]) == (0, 1)
    assert got.loc[0, "cosine"] == pytest.approx(100 / np.hypot(100, 1))
    assert (got.loc[0, "label_i"], got.loc[0, "label_j"]) == ("cat", "dog")


def test_torch_input_gives_the_same_pairs():
    rng = np.random.default_rng(9)
    X = rng.normal(size=(30, 5))
    y = rng.integers(0, 3, size=30)
    a = cross_class_pairs(X, y, top=7, block_size=4)
    b = cross_class_pairs(torch.from_numpy(X), torch.from_numpy(y), top=7, block_size=4)
    pd.testing.assert_frame_equal(a, b)


@pytest.mark.parametrize("X, y, kwargs, match", [
    (np.array([[1.0, np.nan], [0.0, 1.0]]), [0, 1], {}, "NaN or infinite"),
    (np.array([[1.0, 0.0], [np.inf, 1.0]]), [0, 1], {}, "NaN or infinite"),
    (np.ones((3, 2)), [0, 1], {}, "one label per row"),
    (np.ones((3, 2)), [1, 1, 1], {}, "at least 2 classes"),
    (np.ones((3, 2)), [0, 1, 1], {"top": 0}, "top must be a positive integer"),
    (np.ones((3, 2)), [0, 1, 1], {"top": True}, "top must be a positive integer"),
    (np.ones((3, 2)), [0, 1, 1], {"block_size": 0}, "block_size must be a positive integer"),
    (np.array([[1.0, 0.0], [0.0, 0.0]]), [0, 1], {}, r"all-zero row \(1\)"),
    (np.zeros((0, 4)), [], {}, r"at least 1 row\(s\) and 1 column, got shape \(0, 4\)"),
    (np.ones(4), [0, 1, 0, 1], {}, "X must be a 2-D array"),
    (np.array([["a", "b"], ["c", "d"]]), [0, 1], {}, "X must be numeric"),
])
def test_cross_class_pairs_rejects_bad_input(X, y, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cross_class_pairs(X, np.asarray(y), **kwargs)


def test_pair_cosines_under_other_features():
    rng = np.random.default_rng(3)
    cl, sl = rng.normal(size=(20, 4)), 3.0 * rng.normal(size=(20, 7))
    y = np.arange(20) % 4
    pairs = cross_class_pairs(cl, y, top=6)
    got = pair_cosines(sl, pairs)
    U = sl / np.linalg.norm(sl, axis=1, keepdims=True)
    np.testing.assert_allclose(got, [U[i] @ U[j] for i, j in zip(pairs["i"], pairs["j"])], atol=1e-12)
    np.testing.assert_allclose(pair_cosines(sl, pairs[["i", "j"]].to_numpy()), got)  # an (m, 2) array works too
    assert pair_cosines(sl, np.zeros((0, 2), dtype=int)).shape == (0,)


def test_pair_cosines_checks_its_input():
    X = np.random.default_rng(0).normal(size=(10, 3))
    pairs = cross_class_pairs(X, np.arange(10) % 2, top=3)
    with pytest.raises(ValueError, match="X has 9 rows but the pairs were found among 10 images"):
        pair_cosines(X[:9], pairs)
    with pytest.raises(ValueError, match="X has 11 rows"):
        pair_cosines(np.vstack([X, X[:1]]), pairs)
    with pytest.raises(ValueError, match="X has 10 rows but the pairs were found among 12"):
        pair_cosines(X, pairs[["i", "j"]].to_numpy(), n_rows=12)
    with pytest.raises(ValueError, match=r"lie in \[0, 10\)"):
        pair_cosines(X, np.array([[0, 10]]))
    with pytest.raises(ValueError, match="columns 'i' and 'j'"):
        pair_cosines(X, pd.DataFrame({"a": [0], "b": [1]}))
    with pytest.raises(ValueError, match="integers"):
        pair_cosines(X, np.array([[0.0, 1.0]]))
    bad = X.copy()
    bad[pairs.loc[0, "i"]] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite"):
        pair_cosines(bad, pairs)
    bad[pairs.loc[0, "i"]] = 0.0
    with pytest.raises(ValueError, match="all-zero row"):
        pair_cosines(bad, pairs)


def test_report_on_a_hand_made_near_duplicate():
    # images 0 and 1 (classes 0, 1) are contrastive near-duplicates that the supervised encoder opposes
    cl = np.array([[1.0, 0.0, 0.0], [1.0, 0.02, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    sl = np.array([[1.0, 0.0], [-1.0, 0.1], [0.0, 1.0], [1.0, 1.0]])
    report = cross_class_report(cl, np.array([0, 1, 0, 1]), sl, top=5, keep=2)
    assert set(report) == {"pairs", "cl_cosines", "sl_cosines", "baseline"}  # no verdict here: clorg.book.claims
    first = report["pairs"][0]
    assert (first["i"], first["j"], first["label_i"], first["label_j"]) == (0, 1, 0, 1)
    assert first["cosine"] == pytest.approx(1 / np.hypot(1, 0.02))
    assert first["sl_cosine"] == pytest.approx(-1 / np.hypot(1, 0.1))
    assert len(report["pairs"]) == 2 and len(report["cl_cosines"]) == len(report["sl_cosines"]) == 4
    # what claim 6 is checked on: every pair's CL and SL cosine, most similar (CL) first
    assert report["cl_cosines"][0] == pytest.approx(first["cosine"])
    assert report["sl_cosines"][0] == pytest.approx(first["sl_cosine"])
    assert report["cl_cosines"] == sorted(report["cl_cosines"], reverse=True)
    # the baseline: random cross-class pairs are uniform over the 4 cross-class pairs here
    U = sl / np.linalg.norm(sl, axis=1, keepdims=True)
    cross_sl = [U[0] @ U[1], U[0] @ U[3], U[1] @ U[2], U[2] @ U[3]]
    b = report["baseline"]
    assert b["pairs"] == 10_000 and b["sl_mean"] == pytest.approx(np.mean(cross_sl), abs=0.03)
    assert b["sl_share_nonpositive"] == pytest.approx(0.25, abs=0.03)  # only the pair (0, 1) has SL <= 0


def test_report_is_json_and_matches_its_parts():
    """The report is stored as JSON by the results store: plain Python values only; its lists are the
    pairs of cross_class_pairs and their pair_cosines under the supervised features."""
    import json

    rng = np.random.default_rng(4)
    cl, sl = rng.normal(size=(40, 5)), rng.normal(size=(40, 3))
    y = np.arange(40) % 4
    report = cross_class_report(cl, y, sl, top=12, keep=3, baseline_pairs=500, sl_labels=y)
    assert json.loads(json.dumps(report)) == report
    pairs = cross_class_pairs(cl, y, top=12)
    np.testing.assert_allclose(report["cl_cosines"], pairs["cosine"])
    np.testing.assert_allclose(report["sl_cosines"], pair_cosines(sl, pairs))
    assert [(p["i"], p["j"]) for p in report["pairs"]] == list(zip(pairs["i"][:3], pairs["j"][:3]))
    rand = random_cross_class_pairs(y, 500)
    assert report["baseline"]["pairs"] == 500
    assert report["baseline"]["cl_mean"] == pytest.approx(pair_cosines(cl, rand).mean())
    assert report["baseline"]["sl_mean"] == pytest.approx(pair_cosines(sl, rand).mean())
    with pytest.raises(ValueError, match="keep must be a positive integer"):
        cross_class_report(cl, y, sl, keep=0)


def test_random_cross_class_pairs_are_uniform_over_the_other_classes():
    y = np.array([2, 0, 2, 1, 0, 2, 2])
    pairs = random_cross_class_pairs(y, 20_000, seed=1)
    assert pairs.shape == (20_000, 2) and (pairs[:, 0] < pairs[:, 1]).all()
    assert (y[pairs[:, 0]] != y[pairs[:, 1]]).all()
    np.testing.assert_array_equal(pairs, random_cross_class_pairs(y, 20_000, seed=1))
    # P(i, j) = (1/n) (1/(n - n_yi) + 1/(n - n_yj)) for each cross-class pair
    n, counts = len(y), np.bincount(y)
    seen = pd.Series(list(map(tuple, pairs))).value_counts(normalize=True)
    cross = [(i, j) for i in range(n) for j in range(i + 1, n) if y[i] != y[j]]
    assert set(seen.index) == set(cross)
    for i, j in cross:
        assert seen[(i, j)] == pytest.approx((1 / (n - counts[y[i]]) + 1 / (n - counts[y[j]])) / n, abs=0.01)
    with pytest.raises(ValueError, match="at least 2 classes"):
        random_cross_class_pairs(np.zeros(5, dtype=int))
    with pytest.raises(ValueError, match="n_pairs must be a positive integer"):
        random_cross_class_pairs(y, 0)


def test_report_guards_the_row_order():
    X = np.random.default_rng(1).normal(size=(6, 3))
    y = np.array([0, 1, 0, 1, 0, 1])
    with pytest.raises(ValueError, match="not the same images in the same order"):
        cross_class_report(X, y, X, sl_labels=y[::-1])


@pytest.mark.parametrize("channels", [3, 1])
def test_near_duplicate_pairs_figure(channels):
    images = np.random.default_rng(0).integers(0, 256, size=(10, 8, 8, channels), dtype=np.uint8)
    pairs = [{"i": 0, "j": 5, "label_i": 0, "label_j": 1, "cosine": 0.99831, "sl_cosine": -0.0712},
             {"i": 2, "j": 3, "label_i": 1, "label_j": 2, "cosine": 0.9951, "sl_cosine": 0.31},
             {"i": 4, "j": 9, "label_i": 2, "label_j": 0, "cosine": 0.9902, "sl_cosine": 0.05}]
    fig = plots.near_duplicate_pairs(images, pairs, ["cat", "dog", "ship"], n=2, per_row=4)
    try:
        assert len(fig.axes) == 4  # two pairs, two images each
        titles = [sf._suptitle.get_text() for sf in fig.subfigs if sf._suptitle is not None]
        assert titles == ["CL cos 0.998 / SL cos -0.07", "CL cos 0.995 / SL cos 0.31"]
        assert [ax.get_title() for ax in fig.axes] == ["cat\n#0", "dog\n#5", "dog\n#2", "ship\n#3"]  # two lines
        assert fig.axes[0].images[0].get_array().shape[:2] == (8, 8)
    finally:
        plt.close(fig)


def test_cl_against_sl_cosine_figure():
    run = {"encoder": "r18", "schedule": "cosine", "epoch": 20}
    comparisons = [{**run, "method": "moco_queue", "cl_cosines": [0.98, 0.999], "sl_cosines": [0.3, -0.1],
                    "baseline": {"sl_mean": 0.45, "sl_median": 0.44}},
                   {**run, "method": "simclr", "cl_cosines": [0.995], "sl_cosines": [0.2],
                    "baseline": {"sl_mean": 0.4, "sl_median": 0.38}}]
    fig = plots.cl_against_sl_cosine(comparisons)
    try:
        ax = fig.axes[0]
        assert len(ax.collections) == 5  # two runs, each run's top pair circled, and the literal corner
        circled = [c.get_offsets()[0].tolist() for c in ax.collections if len(c.get_offsets()) == 1][:2]
        assert circled == [[0.999, -0.1], [0.995, 0.2]]  # the top pair is the most similar, wherever it is listed
        assert [line.get_ydata()[0] for line in ax.lines if line.get_linestyle() == ":"] == [0.44, 0.38]
        assert ax.get_xlim()[1] >= 1.0 and ax.get_ylim()[0] < 0
        labels = ax.get_legend_handles_labels()[1]
        assert "r18 moco_queue" in labels and "literal reading: CL ≥ 0.99, SL ≤ 0" in labels
    finally:
        plt.close(fig)


def test_baseline_median_of_random_cross_class_pairs():
    """Three images of three classes: the random pairs are (0, 1), (0, 2) and (1, 2), a third each, with
    supervised cosines 0, 1/sqrt(5) and 2/sqrt(5); the median of 10,000 draws is the middle one."""
    sl = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 2.0]])
    report = cross_class_report(np.eye(3), np.array([0, 1, 2]), sl, top=3, keep=1)
    assert report["baseline"]["sl_median"] == pytest.approx(1 / np.sqrt(5))
