"""Classifier protocols and claim 4 (clorg.classify)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from clorg import classify


def _clusters(n_per_class=30, classes=3, dim=8, noise=0.05, seed=0):
    rng = np.random.default_rng(seed)
    centres = np.eye(dim)[:classes]
    y = np.repeat(np.arange(classes), n_per_class)
    X = centres[y] + noise * rng.standard_normal((len(y), dim))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    return X.astype(np.float32), y


def _features(seed=0, noise=0.05):
    X, y = _clusters(seed=seed, noise=noise)
    Xt, yt = _clusters(n_per_class=10, seed=seed + 100, noise=noise)
    return SimpleNamespace(train=X, train_labels=y, test=Xt, test_labels=yt)


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


@pytest.mark.parametrize("kind,temperature,params", [("linear", None, 8 * 3 + 3), ("gcn", 0.1, None)])
def test_heads_are_perfect_on_separated_classes_under_both_protocols(kind, temperature, params):
    out = classify.evaluate_trained(_features(), kind, temperature=temperature, seeds=(0, 1, 2),
                                    cfg={"gcn_k": 10})
    assert out["test"] == [1.0, 1.0, 1.0] and out["test_mean"] == 1.0 and out["test_std"] == 0.0
    assert out["authors_protocol"] == 1.0 and out["val_mean"] == 1.0
    if params:
        assert out["parameters"] == params


def test_classifier_results_table_and_baselines():
    feats = {"enc moco_queue": _features(0), "enc supervised": _features(1)}
    res = classify.classifier_results(feats, temperatures=(0.1, 0.2), seeds=(0, 1), cfg={"gcn_k": 10})
    assert set(res["enc moco_queue"]) == {"linear", "gcn T=0.1", "gcn T=0.2", "baselines"}
    # k = 200 is more than the 90 training images: capped at the bank size; similarity votes still win
    assert res["enc supervised"]["baselines"] == {"kNN k=10": 1.0, "kNN k=200": 1.0, "label spreading": 1.0}
    table = classify.accuracy_table(res)
    assert table.loc["enc moco_queue", "linear (honest)"] == 1.0
    assert table.loc["enc moco_queue", "gcn parameters"] > 0


def test_bad_features_name_the_fix():
    f = _features()
    f.train = f.train.copy()
    f.train[3, 0] = np.nan
    with pytest.raises(ValueError, match="enc moco_queue: the train features contain NaN.*02_train"):
        classify.classifier_results({"enc moco_queue": f}, temperatures=(0.1,))
    g = _features()
    g.test_labels = g.test_labels[:-1]
    with pytest.raises(ValueError, match="30 test features but 29 labels.*03_embeddings"):
        classify.classifier_results({"x": g}, temperatures=(0.1,))


def _entry(linear, gcn01, gcn02, val01=0.5, val02=0.4):
    def one(acc, val, params):
        return {"test_mean": acc, "test_std": 0.01, "val_mean": val, "parameters": params}
    return {"linear": one(linear, 0.5, 5130), "gcn T=0.1": one(gcn01, val01, 652), "gcn T=0.2": one(gcn02, val02, 652)}


def test_claim4_picks_the_temperature_on_validation_and_compares_gains():
    res = {"r moco_queue": _entry(0.80, 0.83, 0.99, val01=0.6, val02=0.5),  # T=0.2 is better on test only
           "r simclr": _entry(0.80, 0.78, 0.70),
           "r supervised": _entry(0.90, 0.91, 0.90)}
    claims = classify.check_claim4(res, ["r"], ["moco_queue", "simclr", "supervised"]).set_index("contrastive")
    assert claims.loc["moco_queue", "gcn"] == "gcn T=0.1"
    assert claims.loc["moco_queue", "gain CL"] == pytest.approx(0.03)
    assert claims.loc["moco_queue", "gain SL"] == pytest.approx(0.01)
    assert claims.loc["moco_queue", "holds"] and not claims.loc["simclr", "holds"]
    assert claims.loc["moco_queue", "parameter ratio"] == pytest.approx(5130 / 652)
    assert "within the seeds' spread" not in claims.loc["moco_queue", "numbers"]
    res["r moco_queue"]["gcn T=0.1"]["test_mean"] = 0.805  # a gain of 0.5 points, std 1 point
    claims = classify.check_claim4(res, ["r"], ["moco_queue", "supervised"])
    assert "within the seeds' spread, 1.0%" in claims.loc[0, "numbers"]
    # a CL gain that is positive but smaller than the SL gain does not hold
    res["r supervised"] = _entry(0.80, 0.90, 0.85)
    claims = classify.check_claim4(res, ["r"], ["moco_queue", "supervised"])
    assert bool(claims.loc[0, "gcn >= linear"]) and not bool(claims.loc[0, "holds"])


def test_classifier_accuracy_figure_draws_every_head():
    import matplotlib

    matplotlib.use("Agg")
    from clorg import plots

    feats = {"enc moco_queue": _features(0)}
    res = classify.classifier_results(feats, temperatures=(0.1,), seeds=(0,), cfg={"gcn_k": 10})
    fig = plots.classifier_accuracies(classify.accuracy_table(res))
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert sorted(labels) == sorted(["linear (honest)", "authors' protocol (best test step)", "gcn T=0.1 (honest)",
                                     "kNN k=10", "kNN k=200", "label spreading"])
