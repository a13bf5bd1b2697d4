"""Classifier protocols as records (clorg.analysis.classify)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from factories import feature_set  # noqa: E402

from clorg.analysis import classify  # noqa: E402
from clorg.analysis import records as R  # noqa: E402
from clorg.book import store  # noqa: E402

HEADS = {"temperatures": [0.1], "seeds": 3, "validation_fraction": 0.1,
         "label_smoothing": 0.1, "mask_range": [0.05, 0.6],
         "random_init_label_smoothing": 0.0, "random_init_mask_range": [0.05, 0.5],
         "graph_k": 10, "dense_max_nodes": 12000, "graph_ks_compared": [5, 10], "spreading_k": 10,
         "dense_dtype": "float32", "lr": 0.1, "linear_patience": 30, "gcn_patience": 50, "gcn_width": 16,
         "honest_max_steps": 2000, "spreading_alpha": 0.2, "spreading_max_iter": 30}


def _clusters(n_per_class=30, classes=3, dim=8, noise=0.05, seed=0):
    rng = np.random.default_rng(seed)
    centres = np.eye(dim)[:classes]
    y = np.repeat(np.arange(classes), n_per_class)
    X = centres[y] + noise * rng.standard_normal((len(y), dim))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    return X.astype(np.float32), y


def _features(seed=0, noise=0.05, classes=3, dim=8, n_train=30, n_test=10, **identity):
    X, y = _clusters(n_per_class=n_train, classes=classes, dim=dim, seed=seed, noise=noise)
    Xt, yt = _clusters(n_per_class=n_test, classes=classes, dim=dim, seed=seed + 100, noise=noise)
    return feature_set(X, y, Xt, yt, **identity)


def test_validation_split_is_stratified_disjoint_and_seeded():
    y = np.repeat(np.arange(4), [50, 20, 10, 3])
    fit, val = classify.validation_split(y, 0.1, seed=1)
    assert len(np.intersect1d(fit, val)) == 0 and len(fit) + len(val) == len(y)
    assert np.bincount(y[val]).tolist() == [5, 2, 1, 1]  # at least one per class
    assert np.array_equal(val, classify.validation_split(y, 0.1, seed=1)[1])
    assert not np.array_equal(val, classify.validation_split(y, 0.1, seed=2)[1])
    with pytest.raises(ValueError, match="class 1 has 1 training image"):
        classify.validation_split(np.array([0, 0, 1]), 0.5)
    with pytest.raises(ValueError, match="fraction"):
        classify.validation_split(y, 1.5)


# ------------------------------------------------- settings ------------------------------------------

def test_head_settings_follow_the_authors_runs():
    assert classify.head_settings(HEADS, random_init=False) == {"label_smoothing": 0.1, "mask_range": (0.05, 0.6)}
    assert classify.head_settings(HEADS, random_init=True) == {"label_smoothing": 0.0, "mask_range": (0.05, 0.5)}


def test_graph_choice_dense_up_to_the_limit():
    heads = {**HEADS, "graph_k": 50, "dense_max_nodes": 100}
    assert classify.graph_k(heads, 100) is None and classify.graph_k(heads, 101) == 50
    assert classify.graph_name(None) == "dense" and classify.graph_name(np.int64(50)) == 50


@pytest.mark.parametrize("random_init", [False, True])
def test_records_use_the_settings_of_the_feature_set(random_init, monkeypatch):
    """Epoch-0 features (the random initialisation) get the random-init label smoothing and mask range;
    trained features the others; for every head that takes them."""
    seen = []

    def spy(cls):
        class Spy(cls):
            def __init__(self, **kw):
                seen.append((cls.__name__, kw.get("label_smoothing"), kw.get("mask_range")))
                super().__init__(**kw)
        return Spy

    monkeypatch.setattr(classify, "LinearHead", spy(classify.LinearHead))
    monkeypatch.setattr(classify, "GCNHead", spy(classify.GCNHead))
    f = _features(epoch=0 if random_init else 20, method="supervised" if random_init else "moco_queue")
    assert f.random_init == random_init
    classify.classifier_records([f], {**HEADS, "seeds": 1})
    want = ((0.0, (0.05, 0.5)) if random_init else (0.1, (0.05, 0.6)))
    assert {name for name, _, _ in seen} == {"LinearHead", "GCNHead"}
    for name, smoothing, masks in seen:
        assert smoothing == want[0]
        if name == "GCNHead":
            assert masks == want[1]


def test_the_honest_protocol_validates_on_training_images_only(monkeypatch):
    """Every honest fit early-stops on a validation split drawn from the training images, disjoint from the
    images it fits, and never on the test set: the linear head's validation rows, the GCN's validation nodes
    and their labels, for each head seed (the split differs between seeds)."""
    linear, gcn = [], []
    fit_linear = classify.LinearHead.fit

    def spy_linear(self, X, y, X_val=None, y_val=None, X_test=None, y_test=None):
        linear.append((X, y, X_val, y_val))
        return fit_linear(self, X, y, X_val, y_val, X_test, y_test)

    fit_gcn = classify.fit_gcn_heads

    def spy_gcn(A, fits):
        gcn.extend(fits)
        return fit_gcn(A, fits)

    monkeypatch.setattr(classify.LinearHead, "fit", spy_linear)
    monkeypatch.setattr(classify, "fit_gcn_heads", spy_gcn)
    f = _features(noise=0.3)
    classify.classifier_records([f], {**HEADS, "seeds": 2})
    rows = {tuple(np.round(x, 6)) for x in f.train}
    honest_linear = [c for c in linear if c[2] is not None]
    assert len(honest_linear) == 2
    for seed, (X, y, X_val, y_val) in enumerate(honest_linear):
        fit, val = classify.validation_split(f.train_labels, HEADS["validation_fraction"], seed)
        np.testing.assert_array_equal(X_val, f.train[val])
        np.testing.assert_array_equal(y_val, f.train_labels[val])
        np.testing.assert_array_equal(X, f.train[fit])
        assert {tuple(np.round(x, 6)) for x in X_val} <= rows
    honest_gcn = [g for g in gcn if len(g.val_idx)]
    assert len(honest_gcn) == 2
    n_train = len(f.train)
    for seed, g in enumerate(honest_gcn):
        fit, val = classify.validation_split(f.train_labels, HEADS["validation_fraction"], seed)
        assert list(g.fit_idx) == list(fit) and list(g.val_idx) == list(val) and max(g.val_idx) < n_train
        assert list(g.test_idx) == list(range(n_train, n_train + len(f.test)))
        assert list(g.labels) == list(f.train_labels[fit]) + list(f.train_labels[val])  # no test label


# ------------------------------------------------- records -------------------------------------------

@pytest.fixture(scope="module")
def separated_records():
    return classify.classifier_records([_features()], HEADS)[0]


def test_records_are_tidy(separated_records):
    records = separated_records
    assert all(list(r) == list(R.FIELDS) for r in records)
    identities = {(r["encoder"], r["method"], r["schedule"], r["epoch"]) for r in records}
    assert identities == {("enc", "moco_queue", "cosine", 20)}
    metrics = {r["metric"] for r in records}
    assert metrics == {R.head_metric(h, q) for h in ("linear", "gcn") for q in (R.TEST, R.VALIDATION, R.AUTHORS,
                                                                                   R.PARAMETERS, R.STEPS, R.CAP_HIT)} \
        | {R.head_metric("label_spreading", q) for q in (R.TEST, R.VALIDATION)}
    # per seed: test and validation accuracy; once: the authors' protocol and the parameter count
    for head, parameter in (("linear", None), ("gcn", 0.1)):
        for quantity in (R.TEST, R.VALIDATION):
            found = R.select(records, metric=R.head_metric(head, quantity))
            assert [r["seed"] for r in found] == [0, 1, 2]
            assert all(r["parameter"] == parameter for r in found)
        for quantity in (R.AUTHORS, R.PARAMETERS):
            (one,) = R.select(records, metric=R.head_metric(head, quantity))
            assert one["seed"] is None and one["parameter"] == parameter
    assert [r["seed"] for r in R.select(records, metric=R.head_metric("label_spreading", R.TEST))] == [0]


@pytest.mark.parametrize("head, parameter, params", [("linear", None, 8 * 3 + 3), ("gcn", 0.1, None),
                                                     ("label_spreading", None, None)])
def test_heads_are_perfect_on_separated_classes_under_both_protocols(separated_records, head, parameter, params):
    records = separated_records
    test = [r["value"] for r in R.select(records, metric=R.head_metric(head, R.TEST), parameter=parameter)]
    assert test == [1.0] * (1 if head == "label_spreading" else 3)
    out = classify.summary(records, head, parameter, encoder="enc", method="moco_queue")
    assert out["test_mean"] == 1.0 and out["test_std"] == 0.0 and out["val_mean"] == 1.0
    assert out["seeds"] == len(test)
    if head != "label_spreading":
        assert out["authors"] == 1.0
    if params:
        assert out["parameters"] == params


def test_parameter_records_of_the_papers_heads():
    """512-d features and 10 classes: the linear head has 5,130 parameters, the GCN 652, whatever the data."""
    f = _features(classes=10, dim=512, n_train=4, n_test=2, noise=0.3)
    heads = {**HEADS, "seeds": 1}
    records = classify.classifier_records([f], heads)[0]
    assert R.value(records, metric=R.head_metric("linear", R.PARAMETERS)) == 5130
    assert R.value(records, metric=R.head_metric("gcn", R.PARAMETERS), parameter=0.1) == 652


def test_one_gcn_graph_per_feature_set_and_temperature(monkeypatch):
    """The graph is built once and serves every seed and both protocols."""
    built = []
    original = classify.GCNHead.graph

    def counting(self, nodes):
        built.append((self.temperature, self.k, len(nodes)))
        return original(self, nodes)

    monkeypatch.setattr(classify.GCNHead, "graph", counting)
    classify.classifier_records([_features()], {**HEADS, "temperatures": [0.1, 0.2], "seeds": 2, "graph_k": None})
    assert built == [(0.1, None, 120), (0.2, None, 120)]  # dense: 120 nodes <= dense_max_nodes


def test_along_the_run_both_protocols_share_each_temperatures_graph_and_give_what_each_gives_alone(monkeypatch):
    """Along the run (chapter 07) with our honest heads and the authors' Feateval both on, the GCN at the
    temperature both fit is built once and both protocols' fits train on it side by side; each protocol's
    records are those it gives alone (on this small dense graph the shared products round as the lone ones),
    ours first. Each fit has its protocol's settings: chapter 06's for ours, the random-init ones for theirs."""
    heads = {**HEADS, "temperatures": [0.1, 0.2]}
    f = _features(noise=0.3, epoch=20)
    alone = {p: classify.snapshot_head_records(f, heads, (p,)) for p in ("ours", "feateval")}
    built, trained = [], []
    original_graph, original_fit = classify.GCNHead.graph, classify.fit_gcn_heads

    def counting(self, nodes):
        built.append(self.temperature)
        return original_graph(self, nodes)

    def spy(A, fits):
        trained.append([(fit.head.temperature, fit.head.max_steps, fit.head.label_smoothing) for fit in fits])
        return original_fit(A, fits)

    monkeypatch.setattr(classify.GCNHead, "graph", counting)
    monkeypatch.setattr(classify, "fit_gcn_heads", spy)
    both = classify.snapshot_head_records(f, heads, ("ours", "feateval"))
    assert sorted(built) == [0.1, 0.2]
    cap = HEADS["honest_max_steps"]
    assert sorted(trained) == [[(0.1, cap, 0.1), (0.1, None, 0.0)], [(0.2, None, 0.0)]]
    assert both == alone["ours"] + alone["feateval"]


def test_graph_records_compare_dense_with_top_k():
    f = _features(noise=0.3)
    records = classify.graph_records(f, HEADS, 0.1)
    assert R.parameters(records, metric=R.head_metric("gcn", R.TEST)) == ["dense", 5, 10]
    for graph in ("dense", 5, 10):
        assert [r["seed"] for r in R.select(records, metric=R.head_metric("gcn", R.TEST), parameter=graph)] == [0, 1, 2]
        assert R.value(records, metric=R.head_metric("gcn", R.PARAMETERS), parameter=graph) == \
            (3 + 1) * 16 + (16 * 16 + 1 + 16 + 2 * 16) + (16 * 3 + 1 + 3)  # 3 classes
    # the dense graph here is the classifier chapter's GCN (same graph, seeds and splits): the same numbers
    dense_chapter = classify.classifier_records([f], {**HEADS, "graph_k": None})[0]
    for quantity in (R.TEST, R.VALIDATION, R.AUTHORS):
        ours = [r["value"] for r in R.select(records, metric=R.head_metric("gcn", quantity), parameter="dense")]
        theirs = [r["value"] for r in R.select(dense_chapter, metric=R.head_metric("gcn", quantity), parameter=0.1)]
        assert ours == theirs
    # above dense_max_nodes the dense graph is left out, without a record
    small = classify.graph_records(f, {**HEADS, "dense_max_nodes": 100, "seeds": 1}, 0.1)
    assert R.parameters(small, metric=R.head_metric("gcn", R.TEST)) == [5, 10]


def test_graph_records_take_the_dense_gcn_from_the_classifier_heads_and_fit_only_the_top_k(monkeypatch):
    """Chapter 06 fits the dense graph's GCN at T = 0.1 among its heads: the graph comparison takes those
    records (the very numbers it would fit: same graph, seeds and splits) and fits only the top-k graphs."""
    f, other = _features(noise=0.3), _features(noise=0.3, method="supervised")
    heads = {**HEADS, "temperatures": [0.1, 0.2]}
    alone = classify.graph_records(f, heads, 0.1)
    fitted = classify.classifier_records([other, f], heads)[0]
    built = []
    original = classify.GCNHead.graph
    monkeypatch.setattr(classify.GCNHead, "graph", lambda self, nodes: built.append(self.k) or original(self, nodes))
    assert classify.graph_records(f, heads, 0.1, fitted) == alone
    assert built == [5, 10]  # the dense graph not built again
    # heads at other temperatures, or of other features, are no dense fit of these: fitted here
    built.clear()
    assert classify.graph_records(f, heads, 0.1, R.select(fitted, parameter=0.2) + R.select(fitted, method="supervised")) == alone
    assert built == [None, 5, 10]


# ---------------------------------------------- summaries --------------------------------------------

def _hand_made(identity):
    out = []
    for t, tests, vals in ((0.1, [0.80, 0.82], [0.60, 0.62]), (0.2, [0.99, 0.97], [0.50, 0.52])):
        for seed, (test, val) in enumerate(zip(tests, vals)):
            out.append(R.record(identity, R.head_metric("gcn", R.TEST), test, parameter=t, seed=seed))
            out.append(R.record(identity, R.head_metric("gcn", R.VALIDATION), val, parameter=t, seed=seed))
        out.append(R.record(identity, R.head_metric("gcn", R.AUTHORS), max(tests) + 0.01, parameter=t))
        out.append(R.record(identity, R.head_metric("gcn", R.PARAMETERS), 652, parameter=t))
    return out


def test_summary_and_the_temperature_are_chosen_on_validation_not_test():
    a = {"encoder": "r", "method": "moco_queue", "schedule": "cosine", "epoch": 20}
    b = {**a, "method": "simclr"}
    records = _hand_made(a) + [dict(r, value=1 - r["value"]) if "accuracy" in r["metric"] else r for r in _hand_made(b)]
    s = classify.summary(records, "gcn", 0.1, **a)
    assert s == {"test_mean": pytest.approx(0.81), "test_std": pytest.approx(0.01), "seeds": 2,
                 "val_mean": pytest.approx(0.61), "authors": pytest.approx(0.83), "parameters": 652}
    # T = 0.2 is better on test only: the validation picks T = 0.1
    assert classify.best_gcn_temperature(records, **a) == 0.1
    # the other feature set's accuracies are flipped: its validation prefers T = 0.2
    assert classify.best_gcn_temperature(records, **b) == 0.2
    assert classify.summary(records, "linear", **a) == {}
    assert classify.best_gcn_temperature(records, encoder="nobody") is None


def test_best_temperature_ties_go_to_the_first():
    a = {"encoder": "r", "method": "m", "schedule": "cosine", "epoch": 5}
    records = [R.record(a, R.head_metric("gcn", R.VALIDATION), 0.5, parameter=t, seed=0) for t in (0.2, 0.1, 1.0)]
    records += [R.record(a, R.head_metric("gcn", R.TEST), acc, parameter=t, seed=0)
                for t, acc in ((0.2, 0.1), (0.1, 0.9), (1.0, 0.9))]
    assert classify.best_gcn_temperature(records, **a) == 0.2


# ------------------------------------------------- figure --------------------------------------------

def test_classifier_accuracy_figure_draws_every_head():
    from clorg.book import plots

    records = classify.classifier_records([_features(0)], {**HEADS, "seeds": 1})[0]
    fig = plots.classifier_accuracies(records)
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert sorted(labels) == sorted(["linear (honest)", "authors' protocol (best test step)", "gcn T=0.1 (honest)",
                                     "label spreading (honest)"])
    plt.close(fig)


# ======================================= claim 4's paired interval =======================================


def test_paired_gain_of_identical_heads_is_exactly_zero():
    a = np.tile(np.array([1, 0, 1, 1, 0], float), (3, 1))
    assert classify.paired_gain_interval(a, a.copy(), 200, 0, 0.95) == (0.0, 0.0, 0.0)


def test_paired_gain_when_one_head_is_always_right():
    ones, zeros = np.ones((2, 50)), np.zeros((2, 50))
    assert classify.paired_gain_interval(ones, zeros, 200, 0, 0.95) == (1.0, 1.0, 1.0)


def test_paired_gain_interval_matches_the_normal_approximation():
    """One seed, 4,000 images: head a right on the first 2,400, head b on the even ones. The paired
    differences are +1 on 1,200 images, -1 on 800 and 0 on 2,000: mean 0.1, variance 0.5 - 0.01 = 0.49, so
    the standard error is sqrt(0.49 / 4000) = 0.01107 and a 95 % interval is about 0.1 ± 0.0217."""
    i = np.arange(4000)
    a, b = (i < 2400).astype(float)[None], (i % 2 == 0).astype(float)[None]
    point, low, high = classify.paired_gain_interval(a, b, 2000, 0, 0.95)
    assert point == pytest.approx(0.1)
    assert (high - low) == pytest.approx(2 * 1.96 * 0.01107, rel=0.1)
    assert low == pytest.approx(0.1 - 0.0217, abs=0.004) and high == pytest.approx(0.1 + 0.0217, abs=0.004)


def test_paired_gain_resamples_the_seeds_too():
    """Seed 0: a beats b on every image; seed 1: they agree everywhere. A resample of two seeds is (0, 0),
    (0, 1), (1, 0) or (1, 1), each with probability 1/4, giving a gain of 1, 0.5, 0.5 or 0: so the 2.5 % and
    97.5 % quantiles are 0 and 1, whatever the images drawn."""
    a = np.array([[1.0] * 20, [1.0] * 20])
    b = np.array([[0.0] * 20, [1.0] * 20])
    point, low, high = classify.paired_gain_interval(a, b, 1000, 0, 0.95)
    assert (point, low, high) == (0.5, 0.0, 1.0)
    assert classify.paired_gain_interval(a, b, 1000, 0, 0.95) == classify.paired_gain_interval(a, b, 1000, 0, 0.95)  # seeded


@pytest.mark.parametrize("a, b, args, match", [
    (np.ones((2, 3)), np.ones((2, 4)), (10, 0, 0.95), "one shape"),
    (np.ones(3), np.ones(3), (10, 0, 0.95), "one shape"),
    (np.ones((1, 3)), np.ones((1, 3)), (10, 0, 1.0), "level"),
    (np.ones((1, 3)), np.ones((1, 3)), (0, 0, 0.95), "resamples"),
])
def test_paired_gain_refuses_bad_input(a, b, args, match):
    with pytest.raises(ValueError, match=match):
        classify.paired_gain_interval(a, b, *args)


def test_classifier_records_keep_each_seeds_test_predictions():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 20)
    X = rng.normal(size=(60, 8)) + 3 * np.eye(8)[y]
    yt = np.repeat(np.arange(3), 5)
    Xt = rng.normal(size=(15, 8)) + 3 * np.eye(8)[yt]
    f = feature_set(X, y, Xt, yt)
    heads = {**HEADS, "seeds": 2, "temperatures": [0.1]}
    records, predictions = classify.classifier_records([f], heads)
    assert sorted((p["head"], p["parameter"], p["seed"]) for p in predictions) == \
        [("gcn", 0.1, 0), ("gcn", 0.1, 1), ("linear", None, 0), ("linear", None, 1)]
    for p in predictions:  # the stored predictions give the stored honest accuracy
        acc = R.value(records, metric=R.head_metric(p["head"], R.TEST), parameter=p["parameter"], seed=p["seed"])
        assert len(p["predicted"]) == 15 and np.mean(np.asarray(p["predicted"]) == yt) == pytest.approx(acc)


def test_the_authors_protocol_has_no_step_cap_and_every_fit_records_its_steps():
    """A cap of 3 steps cuts every honest fit (recorded as a cap hit); the authors' fits run on their
    patience alone, past it, and record no hit."""
    records = classify.classifier_records([_features()], {**HEADS, "seeds": 2, "honest_max_steps": 3})[0]
    for head, t in (("linear", None), ("gcn", 0.1)):
        steps = R.select(records, metric=R.head_metric(head, R.STEPS), parameter=t)
        hits = {r["seed"]: r["value"] for r in R.select(records, metric=R.head_metric(head, R.CAP_HIT), parameter=t)}
        honest = [r["value"] for r in steps if r["seed"] is not None]
        (authors,) = [r["value"] for r in steps if r["seed"] is None]
        assert honest == [3, 3] and hits == {0: 1.0, 1: 1.0, None: 0.0}
        assert authors > 3  # patience (30 or 50 steps without a better score) alone stopped it


def test_the_heads_training_settings_come_from_the_profile():
    """A GCN wider than the authors' 16 has more parameters: the profile's heads.gcn_width reaches the head
    (652 parameters at 16 for 10 classes, SPEC 2.4; here 3 classes)."""
    f = _features()
    narrow = R.value(classify.classifier_records([f], {**HEADS, "seeds": 1})[0],
                     metric=R.head_metric("gcn", R.PARAMETERS), parameter=0.1)
    wide = R.value(classify.classifier_records([f], {**HEADS, "seeds": 1, "gcn_width": 32})[0],
                   metric=R.head_metric("gcn", R.PARAMETERS), parameter=0.1)
    # embedding (C + 1) x w, layer 1 w x w + 1 + w + BN 2w, layer 2 w x C + 1 + C, for C = 3
    assert (narrow, wide) == (4 * 16 + 16 * 16 + 1 + 16 + 32 + 16 * 3 + 1 + 3, 4 * 32 + 32 * 32 + 1 + 32 + 64 + 32 * 3 + 1 + 3)


def test_heads_saved_as_parts_are_not_fitted_again_and_give_the_same_records(monkeypatch):
    """Chapter 06 saves each head as a part of its result (clorg.book.store.Parts): a computation cut off
    after some heads resumes with them, and its records are those of an uninterrupted one."""
    class Parts(dict):
        def save(self, key, value):
            self[key] = store.plain(value)

    features = [_features(n_train=10, n_test=5), _features(seed=1, epoch=0, n_train=10, n_test=5)]
    heads = {**HEADS, "seeds": 1, "linear_patience": 5, "gcn_patience": 5, "honest_max_steps": 50}
    parts = Parts()
    whole = classify.classifier_records(features, heads, parts)
    assert set(parts) == {classify.head_job_key(f, kind, t) for f in features
                          for kind, t in (("linear", None), ("gcn", 0.1), ("label_spreading", None))}
    # cut off after the first three heads: only the others are fitted when it resumes
    kept = Parts({k: parts[k] for k in list(parts)[:3]})
    fitted = []
    real = classify._head_job
    monkeypatch.setattr(classify, "_head_job", lambda f, kind, t, *a: fitted.append((kind, t)) or real(f, kind, t, *a))
    assert store.plain(classify.classifier_records(features, heads, kept)) == store.plain(whole)
    assert len(fitted) == 3 and set(kept) == set(parts)
