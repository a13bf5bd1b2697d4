"""clorg.analysis.toy: the 2-D toy panels, their shapes and determinism, and the scores the paper reports."""

import numpy as np
import pytest

from clorg.analysis.metrics import rld
from clorg.analysis.toy import BLOB_CENTRES, CURVE_TEMPERATURES, TOY_PANELS, chapter_result, toy_panels, toy_scores

GENERATORS = [make for _, make in TOY_PANELS.values()]
NAMES = list(TOY_PANELS)


def test_panels_are_the_papers_six_in_order():
    assert NAMES == ["uniform", "rings", "lines", "tiny_clusters", "segments", "blobs"]
    assert [title[:3] for title, _ in TOY_PANELS.values()] == ["(a)", "(b)", "(c)", "(d)", "(e)", "(f)"]


@pytest.mark.parametrize("make", GENERATORS, ids=NAMES)
@pytest.mark.parametrize("points_per_class, n_classes", [(300, 5), (37, 3), (1, 2)])
def test_shapes_dtypes_and_class_counts(make, points_per_class, n_classes):
    X, y = make(points_per_class, n_classes, rng=0)
    assert X.shape == (points_per_class * n_classes, 2) and X.dtype == np.float64
    assert y.dtype == np.int64
    assert np.array_equal(np.bincount(y), np.full(n_classes, points_per_class))
    assert np.isfinite(X).all()


@pytest.mark.parametrize("make", GENERATORS, ids=NAMES)
def test_seeded_determinism(make):
    X1, y1 = make(50, 4, rng=123)
    X2, y2 = make(50, 4, rng=np.random.default_rng(123))
    X3, _ = make(50, 4, rng=124)
    assert np.array_equal(X1, X2) and np.array_equal(y1, y2)
    assert not np.array_equal(X1, X3)


def test_panel_geometry():
    X, y = TOY_PANELS["rings"][1](300, 5, rng=1)
    radius = np.linalg.norm(X, axis=1)
    for c in range(5):
        assert np.mean(radius[y == c]) == pytest.approx(0.2 + 0.2 * c, abs=0.005)
        assert np.std(radius[y == c]) == pytest.approx(0.01, rel=0.2)
    X, y = TOY_PANELS["lines"][1](300, 5, rng=2)
    for c in range(5):  # distance to the class's line ~ |N(0, 0.05)|
        a = 0.4 * np.pi * c
        off_line = X[y == c] @ np.array([np.cos(a), -np.sin(a)])
        assert np.std(off_line) == pytest.approx(0.05, rel=0.2)
    X, y = TOY_PANELS["blobs"][1](300, 5, rng=3)
    for c in range(5):
        assert np.allclose(X[y == c].mean(axis=0), BLOB_CENTRES[c], atol=0.02)
    X, y = TOY_PANELS["tiny_clusters"][1](300, 5, rng=4)
    rounded = {tuple(p) for p in np.round(X[y == 0], 1)}
    assert len(rounded) < 60  # 20 tight clusters, not 300 scattered points
    X, y = TOY_PANELS["uniform"][1](300, 5, rng=5)
    assert X.min() >= -1 and X.max() <= 1


def test_bad_sizes():
    with pytest.raises(ValueError, match="points_per_class must be an integer >= 1"):
        TOY_PANELS["uniform"][1](0, 5)
    with pytest.raises(ValueError, match="n_classes must be an integer >= 1"):
        TOY_PANELS["rings"][1](10, 2.5)
    with pytest.raises(ValueError, match="n_classes must be <= 5 for blobs"):
        TOY_PANELS["blobs"][1](10, 6)


def test_toy_panels_are_independent_streams():
    a, b = toy_panels(seed=7, points_per_class=40), toy_panels(seed=7, points_per_class=40)
    assert all(np.array_equal(a[k][0], b[k][0]) for k in NAMES)
    assert not np.array_equal(a["uniform"][0], toy_panels(seed=8, points_per_class=40)["uniform"][0])


@pytest.mark.parametrize("seed", [0, 1])
def test_scores_match_the_papers_picture(seed):
    """The authors' saved runs (SPEC 6): RLD(T=0.05) ~ 0 for (a), 0.67-0.79 for (b)-(f); CH small for
    (a)-(d) and in the thousands for (e)-(f). Checked with margins, not the exact numbers."""
    scores = toy_scores(seed)
    assert set(scores) == set(NAMES)
    assert abs(scores["uniform"]["rld"]) < 0.05
    for name in ["rings", "lines", "tiny_clusters", "segments", "blobs"]:
        assert 0.6 < scores[name]["rld"] < 1 - 1 / 5 + 1e-9, name
    assert scores["blobs"]["rld"] > 0.75
    for name in ["uniform", "rings", "lines", "tiny_clusters"]:
        assert scores[name]["ch"] < 50, name
    for name in ["segments", "blobs"]:
        assert scores[name]["ch"] > 1000, name
    # CH cannot tell the locally dense tiny clusters from uniform noise; RLD can
    assert scores["tiny_clusters"]["rld"] - scores["uniform"]["rld"] > 0.6


def test_comparison_with_the_authors_flags_values_outside_our_range():
    from clorg.analysis.toy import compare_with_authors, describe_comparison

    ours = {s: {"p": {"rld": 0.70 + 0.01 * s, "ch": 10.0 + s}} for s in range(3)}  # rld 0.70..0.72, ch 10..12
    table = compare_with_authors(ours, {"p": [(0.71, 11.0), (0.90, 10.5)]})
    rld_row, ch_row = table.to_dict("records")
    assert rld_row["metric"] == "RLD" and not rld_row["consistent"]  # 0.90 is far outside 0.70..0.72
    assert rld_row["max_z"] == pytest.approx((0.90 - 0.71) / 0.01) and rld_row["authors"] == [0.71, 0.90]
    assert ch_row["consistent"]
    text = describe_comparison(table, 3)
    assert "p RLD" in text and "systematic difference" in text and "p CH" not in text
    assert rld_row["outside"] == [0.90] and "the authors' 0.9 lies outside" in text  # 0.71 lies inside
    # the sentence's distance is that of the value outside, not of the farther of the two
    inside_far = compare_with_authors({s: {"p": {"rld": v, "ch": 1.0 + s}} for s, v in enumerate([0.0, 0.95, 0.97, 0.99, 1.0])},
                                      {"p": [(1.02, 2.0), (0.1, 3.0)]})
    assert "the authors' 1.02 lies outside" in describe_comparison(inside_far, 5)
    assert "it is 0.5 of our standard deviations" in describe_comparison(inside_far, 5)
    assert "lies within the range" in describe_comparison(table[table.metric == "CH"], 3)


def test_the_chapter_result_holds_seed_zeros_scores_and_curves():
    """The stored toy result: seed 0's RLD and CH per panel, and seed 0's RLD at each curve temperature,
    each as metrics.rld gives it on that panel's points, with no comparison where no authors' run is given."""
    res = chapter_result(2, 30, 0.05, {})
    panels = toy_panels(0, 30)
    assert res["seeds"] == 2 and res["comparison"] == []
    for name, (X, y) in panels.items():
        assert res["scores"][name]["rld"] == pytest.approx(rld(X, y, 0.05))
        for t in (CURVE_TEMPERATURES[0], CURVE_TEMPERATURES[6], CURVE_TEMPERATURES[-1]):
            assert res["curves"][name][res["curve_temperatures"].index(t)] == pytest.approx(rld(X, y, t), abs=1e-9)
    assert res["curve_temperatures"][0] == pytest.approx(0.01) and res["curve_temperatures"][-1] == pytest.approx(10)
