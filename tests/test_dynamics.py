"""The training dynamics on a real tiny contrastive run: every saved epoch replayed and measured exactly as the
other chapters measure a single checkpoint, as records; series, trends and the paper's trend on hand-made
records; the followed encoder; the figure; the missing-snapshot error."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from scipy.spatial.distance import cdist  # noqa: E402
from sklearn.metrics import calinski_harabasz_score  # noqa: E402

from clorg.analysis import records as R  # noqa: E402
from clorg.analysis.dynamics import (checkpoint_epochs, dynamics_records, followed_encoder,  # noqa: E402
                                     runs_in, series, trend)
from clorg.analysis.heads import KNNClassifier  # noqa: E402
from clorg.core import paper  # noqa: E402
from clorg.core.config import RunSpec, load_profile  # noqa: E402
from clorg.data import choose_profile_dataset  # noqa: E402
from clorg.features import run_features  # noqa: E402
from clorg.train import RunResult, run  # noqa: E402
from clorg.train.runs import SnapshotNotFound  # noqa: E402

# 8x8 digits, 30 images per class, two MoCo epochs with a snapshot after each: a real run in seconds
TINY = {"data.dataset": "digits", "data.train_per_class": 30, "data.test_per_class": 10,
        "train.contrastive_batch_size": 64, "train.moco_queue_size": 256, "train.contrastive_epochs": 2,
        "train.checkpoint_every": 1}
TEMPERATURES = (1.0, 0.1)
KNN_K = 10
RUN = {"encoder": "resnet18", "method": "moco_queue", "schedule": "cosine"}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A trained tiny run and its records, shared by the tests of this module (training is the slow part)."""
    root = tmp_path_factory.mktemp("dynamics")
    threads = torch.get_num_threads()
    # one thread: on a few hundred images every op is tiny, and a second thread only adds contention
    torch.set_num_threads(1)
    try:
        with pytest.MonkeyPatch.context() as mp:  # as conftest's isolated_env, for a module-scoped fixture
            mp.setenv("CLORG_OFFLINE", "1")
            mp.setenv("CLORG_CACHE", str(root / "cache"))
            mp.delenv("CLORG_DATA", raising=False)
            cfg = load_profile("smoke", TINY)
            data = choose_profile_dataset(cfg)
            result = run(cfg, RunSpec(**RUN), data=data, runs_root=root / "runs", progress=False)
            records = dynamics_records(result, data, TEMPERATURES, KNN_K)
            yield result, data, records
    finally:
        torch.set_num_threads(threads)


def dense_rld(X, y, T):
    """RLD written out densely (SPEC 2.1): s = -d / mean_{i<j} d, E = exp(s / T) off the diagonal,
    W = E^2 / (r r^T), then Newman's modularity of the classes on W."""
    D = cdist(X, X)
    S = -D / D[np.triu_indices(len(X), 1)].mean()
    np.fill_diagonal(S, -np.inf)
    E = np.exp(S / T)
    r = E.sum(axis=1)
    W = E**2 / np.outer(r, r)
    k, two_m = W.sum(axis=1), W.sum()
    same = y[:, None] == y[None, :]
    return float(((W - np.outer(k, k) / two_m) * same).sum() / two_m)


def brute_force_chi(X, y, ks):
    """CHI(k) by sorting each row's cosine similarities (self excluded; ties to the lower index)."""
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    S = Xn @ Xn.T
    np.fill_diagonal(S, -np.inf)
    order = np.argsort(-S, axis=1, kind="stable")
    return [float((y[order[:, :k]] == y[:, None]).mean()) for k in ks]


def test_every_snapshot_is_measured_as_the_other_chapters_do(tiny):
    result, data, records = tiny
    assert checkpoint_epochs(result) == [0, 1, 2]
    assert all(list(r) == list(R.FIELDS) for r in records)
    assert runs_in(records) == [RUN]
    assert sorted({r["metric"] for r in records}) == sorted([R.CH, R.RLD, R.CHI, R.KNN, R.LR])
    # CHI at 1 and at claim 1's k_max: 0.2 of the 30 images of a class
    for metric, parameters in ((R.CH, [None]), (R.RLD, [1.0, 0.1]), (R.CHI, [1, 6]), (R.KNN, [KNN_K])):
        assert R.parameters(records, metric=metric) == parameters
        for p in parameters:
            assert [e for e, _ in series(records, metric, p, **RUN)] == [0, 1, 2]
    for epoch in (0, 1, 2):
        f = run_features(result, data, epoch=epoch)
        assert f.provenance["epoch"] == epoch
        at = dict(epoch=epoch, **RUN)
        X, y = np.asarray(f.train, dtype=np.float64), np.asarray(f.train_labels)
        assert R.value(records, metric=R.CH, **at) == pytest.approx(calinski_harabasz_score(X, y), rel=1e-9)
        rld = {T: dense_rld(X, y, T) for T in TEMPERATURES}
        assert R.value(records, metric=R.RLD, parameter=1.0, **at) == pytest.approx(rld[1.0], rel=1e-6, abs=1e-12)
        assert R.value(records, metric=R.RLD, parameter=0.1, **at) == pytest.approx(rld[0.1], rel=1e-6, abs=1e-12)
        assert 0 < rld[0.1] < 0.9 and rld[1.0] < rld[0.1]  # locality: a small T sees purer neighbourhoods
        assert [R.value(records, metric=R.CHI, parameter=k, **at) for k in (1, 6)] == \
            [pytest.approx(v, abs=1e-12) for v in brute_force_chi(X, y, [1, 6])]
        knn = KNNClassifier(k=KNN_K).fit(f.train, f.train_labels).score(f.test, f.test_labels)
        assert R.value(records, metric=R.KNN, parameter=KNN_K, **at) == knn
    assert R.value(records, metric=R.KNN, parameter=KNN_K, epoch=2, **RUN) > 0.2  # 10 classes: above chance
    # training moved the encoder: the measured geometry differs from the random initialisation
    assert R.value(records, metric=R.CH, epoch=2, **RUN) != R.value(records, metric=R.CH, epoch=0, **RUN)


def test_learning_rate_of_every_epoch(tiny):
    result, _, records = tiny
    lr = series(records, R.LR, **RUN)
    assert [e for e, _ in lr] == [0, 1]  # the rate at the start of each trained epoch
    base = result.config["lr_per_256"] * result.config["batch_size"] / 256
    assert result.config["warmup_epochs"] == 0
    # cosine over two epochs: the full rate at the first step, half of it at the start of the second epoch
    assert lr[0][1] == pytest.approx(base) and lr[1][1] == pytest.approx(base / 2)
    assert all(r["parameter"] is None and r["seed"] is None for r in R.select(records, metric=R.LR))


def test_a_subset_of_epochs_and_an_unsaved_one(tiny):
    result, data, records = tiny
    only = dynamics_records(result, data, TEMPERATURES, KNN_K, epochs=[1])
    measured = [r for r in only if r["metric"] != R.LR]
    assert {r["epoch"] for r in measured} == {1}
    # the same features (read back from the run folder), the same numbers
    assert measured == [r for r in records if r["epoch"] == 1 and r["metric"] != R.LR]
    assert R.select(only, metric=R.LR) == R.select(records, metric=R.LR)
    with pytest.raises(SnapshotNotFound, match=r"no encoder snapshot for epoch 7 .* saved epochs: \[0, 1, 2\]"):
        dynamics_records(result, data, TEMPERATURES, KNN_K, epochs=[0, 7])
    # one encoder asked for directly: the epochs it has, and that a run of 2 epochs never saves a 7th
    with pytest.raises(SnapshotNotFound, match=r"no encoder snapshot for epoch 7 in .*saved epochs: \[0, 1, 2\]\. "
                                               r"A run saves its encoder at epoch 0, every 1 epochs .* its last, 2"):
        result.load_encoder(epoch=7)


def test_a_snapshot_a_retrain_would_save_is_asked_for_with_the_command_others_with_the_epochs_saved(tmp_path):
    folder = tmp_path / "runs" / "quick" / "resnet18-simclr-0123456789ab"
    (folder / "checkpoints").mkdir(parents=True)
    (folder / "checkpoints" / "encoder_e0000.pt").write_bytes(b"")
    result = RunResult(folder, {"encoder": "resnet18", "method": "simclr", "schedule": "cosine", "epochs": 20,
                                "checkpoint_every": 5}, {}, [], reused=True)
    with pytest.raises(SnapshotNotFound, match=r"epoch 10 in .*saved epochs: \[0\]\. Retrain the run to save it: "
                                               r"`python -m clorg.train --config quick --encoder resnet18 --method "
                                               r"simclr --schedule cosine --force`"):
        result.load_encoder(epoch=10)
    with pytest.raises(SnapshotNotFound, match=r"epoch\(s\) \[7, 20\] .*at epoch 0, every 5 epochs "
                                               r"\(train.checkpoint_every\) and at its last, 20: ask for one of those"):
        raise result.snapshots_missing([20, 7])


def test_a_run_without_snapshots_says_how_to_make_them(tmp_path):
    folder = tmp_path / "runs" / "quick" / "resnet18-simclr-0123456789ab"
    (folder / "checkpoints").mkdir(parents=True)
    (folder / "checkpoints" / "last.pt").write_bytes(b"")  # a resume file is not an encoder snapshot
    result = RunResult(folder, {"encoder": "resnet18", "method": "simclr", "schedule": "paper-compressed",
                                "epochs": 20}, {}, [], reused=True)
    with pytest.raises(SnapshotNotFound) as err:  # a FileNotFoundError of clorg's: a notebook shows its message alone
        checkpoint_epochs(result)
    message = str(err.value)
    assert str(folder) in message
    assert ("python -m clorg.train --config quick --encoder resnet18 --method simclr --schedule paper-compressed "
            "--force") in message


# ------------------------------------------ hand-made records -------------------------------------------

def _run_records(run, ch, rld01, rld1=(0.01, 0.03, 0.02), epochs=(0, 5, 10)):
    out = []
    for e, c, r01, r1 in zip(epochs, ch, rld01, rld1):
        ident = {**run, "epoch": e}
        out += [R.record(ident, R.CH, c), R.record(ident, R.RLD, r01, parameter=0.1),
                R.record(ident, R.RLD, r1, parameter=1.0)]
    return out


PAPER_LIKE = {"encoder": "vit", "method": "moco_queue", "schedule": "cosine"}
OURS_LIKE = {"encoder": "resnet18", "method": "moco_queue", "schedule": "paper-compressed"}
HAND_MADE = list(reversed(_run_records(PAPER_LIKE, [550.0, 520.0, 8.0], [0.13, 0.8, 0.75]))) + \
    _run_records(OURS_LIKE, [62.0, 265.0, 253.0], [0.07, 0.2, 0.24])


def test_series_and_trend_of_one_run():
    assert series(HAND_MADE, R.CH, **PAPER_LIKE) == [(0, 550.0), (5, 520.0), (10, 8.0)]  # sorted by epoch
    assert series(HAND_MADE, R.RLD, 1.0, **OURS_LIKE) == [(0, 0.01), (5, 0.03), (10, 0.02)]
    assert series(HAND_MADE, R.RLD, 0.5, **OURS_LIKE) == []
    t = trend(series(HAND_MADE, R.CH, **OURS_LIKE))
    assert t == {"first": (0, 62.0), "last": (10, 253.0), "peak": (5, 265.0), "low": (0, 62.0)}
    with pytest.raises(ValueError, match="empty"):
        trend([])
    assert runs_in(HAND_MADE) == [PAPER_LIKE, OURS_LIKE]


def test_followed_encoder_prefers_the_vit():
    assert followed_encoder(["resnet18", "vit"]) == "vit"
    assert followed_encoder(["vit"]) == "vit"
    assert followed_encoder(["resnet18", "resnet50"]) == "resnet18"


def test_the_heads_along_the_run_are_the_chapter_06_fits_of_each_snapshot(tiny, capsys):
    """Our heads along the run (dynamics.heads, the default protocol): with the profile's heads section, each
    snapshot also gets one honest linear and one GCN fit, the same records as classify.snapshot_head_records
    gives on that snapshot's features."""
    from clorg.analysis.classify import snapshot_head_records

    result, data, records = tiny
    heads = load_profile("smoke", TINY)["heads"]
    with_heads = dynamics_records(result, data, TEMPERATURES, KNN_K, heads=heads, epochs=[2])
    found = [r for r in with_heads if r["metric"] not in (R.CH, R.RLD, R.CHI, R.KNN, R.LR)]
    assert found == snapshot_head_records(run_features(result, data, epoch=2), heads, ("ours",))
    metrics_ = {r["metric"] for r in found}
    assert {R.head_metric("linear", R.TEST), R.head_metric("gcn", R.TEST), R.head_metric("gcn", R.STEPS)} <= metrics_
    assert not any(r["seed"] is None for r in found)  # the honest fit only: the authors' is asked for by name
    gcn = R.select(found, metric=R.head_metric("gcn", R.TEST))
    assert [r["parameter"] for r in gcn] == [0.1] and all(r["epoch"] == 2 for r in found)
    assert 0.1 < gcn[0]["value"] <= 1.0
    from clorg.book import plots

    fig = plots.heads_along_run(with_heads)
    assert [line.get_label() for line in fig.axes[0].lines] == ["linear head", "GCN", "kNN (k = 10)"]
    assert list(fig.axes[0].lines[1].get_ydata()) == [100 * gcn[0]["value"]]
    plt.close(fig)
    # dynamics.heads off: no figure, and the page says why in text
    assert plots.heads_along_run(records) is None
    assert "dynamics.heads and dynamics.feateval are off" in capsys.readouterr().out


def test_the_authors_feateval_fits_their_protocol_with_the_random_init_settings_at_every_snapshot(tiny, monkeypatch):
    """dynamics.feateval: at each snapshot, the authors' Feateval as their notebook runs it: a linear head and a
    GCN at each of heads.temperatures, on every training label, the best test accuracy over the steps, no cap,
    label smoothing and masks of the random init at every epoch (theirs: 0 and 5-50 %, trained features too),
    beside our honest fit where both are asked for."""
    from clorg.analysis import classify
    from clorg.analysis.heads import LinearHead

    result, data, _ = tiny
    heads = load_profile("smoke", TINY)["heads"]
    assert heads["label_smoothing"] != heads["random_init_label_smoothing"]  # else the settings test nothing
    made = []  # (class name, settings) of every head made
    for name in ("LinearHead", "GCNHead"):
        cls = getattr(classify, name)
        monkeypatch.setattr(classify, name,
                            lambda *a, _cls=cls, **kw: made.append((_cls.__name__, kw)) or _cls(*a, **kw))
    both = dynamics_records(result, data, TEMPERATURES, KNN_K, heads=heads, protocols=("ours", "feateval"),
                            epochs=[2])
    theirs = [r for r in both if r["seed"] is None]
    assert {(r["metric"], r["parameter"]) for r in theirs if r["metric"].endswith(R.AUTHORS)} == {
        (R.head_metric("linear", R.AUTHORS), None), (R.head_metric("gcn", R.AUTHORS), 0.1),
        (R.head_metric("gcn", R.AUTHORS), 0.2)}
    assert not R.select(theirs, metric=R.head_metric("gcn", R.TEST))  # their protocol has no honest number
    assert all(r["value"] == 0.0 for r in theirs if r["metric"].endswith(R.CAP_HIT))
    assert R.select(both, metric=R.head_metric("gcn", R.TEST))  # ours beside it
    unbounded = [(name, kw) for name, kw in made if kw["max_steps"] is None]  # the authors' fits
    assert sorted((name, kw.get("temperature")) for name, kw in unbounded) == [
        ("GCNHead", 0.1), ("GCNHead", 0.2), ("LinearHead", None)]
    assert {kw["label_smoothing"] for _, kw in unbounded} == {heads["random_init_label_smoothing"]}
    assert {tuple(kw["mask_range"]) for name, kw in unbounded if name == "GCNHead"} == {
        tuple(heads["random_init_mask_range"])}
    # ours: chapter 06's settings for trained features after epoch 0
    (ours,) = [kw for name, kw in made if name == "LinearHead" and kw["max_steps"] is not None]
    assert ours["label_smoothing"] == heads["label_smoothing"]
    # the linear number is the authors' fit itself: every label, best test accuracy over the steps
    f = run_features(result, data, epoch=2)
    direct = LinearHead(num_classes=10, seed=0, device="cpu", max_steps=None, lr=heads["lr"],
                        patience=heads["linear_patience"], label_smoothing=heads["random_init_label_smoothing"]).fit(
        f.train, f.train_labels, X_test=f.test, y_test=f.test_labels)
    assert R.value(theirs, metric=R.head_metric("linear", R.AUTHORS)) == direct.best_test_accuracy_
    from clorg.book import plots

    fig = plots.heads_along_run(both)
    ax = fig.axes[0]
    assert [line.get_label() for line in ax.lines] == [
        "linear head", "GCN", "linear head, authors' protocol", "GCN T = 0.1, authors' protocol",
        "GCN T = 0.2, authors' protocol", "kNN (k = 10)"]
    assert [line.get_linestyle() for line in ax.lines] == ["-", "-", "--", "--", "--", "-"]
    # theirs at our temperature in our colour, the other temperature in another
    assert ax.lines[3].get_color() == ax.lines[1].get_color() != ax.lines[4].get_color()
    assert ax.get_title().endswith("honest fits at the step cap: linear 0 of 1, GCN 0 of 1")  # theirs have no cap
    plt.close(fig)
    fig = plots.heads_along_run(theirs)  # dynamics.feateval alone: no honest fit to count
    assert "step cap" not in fig.axes[0].get_title()
    assert [line.get_label() for line in fig.axes[0].lines] == [
        "linear head, authors' protocol", "GCN T = 0.1, authors' protocol", "GCN T = 0.2, authors' protocol",
        "kNN (k = 10)"]
    plt.close(fig)
    with pytest.raises(ValueError, match="unknown head protocol"):
        classify.snapshot_head_records(f, heads, ("authors",))


def test_the_whole_set_loss_of_each_snapshot(tiny):
    """The authors' Losseval along the run: one record per snapshot, the loss of that snapshot's encoder
    on views drawn with the run's seed (the same views at every snapshot)."""
    from clorg.analysis.set_loss import view_outputs, whole_set_loss

    result, data, _ = tiny
    with_loss = dynamics_records(result, data, TEMPERATURES, KNN_K, set_loss=True)
    loss = series(with_loss, R.SET_LOSS, **RUN)
    assert [e for e, _ in loss] == [0, 1, 2]
    q, k = view_outputs(result.load_encoder(epoch=2), data.train.images, result.config["seed"], "cpu")
    assert loss[2][1] == pytest.approx(whole_set_loss(q, k), rel=1e-6)
    # each snapshot its own encoder; near 2 x 2T log(n) = 4.56 for 300 images, where no view is told apart
    assert loss[0][1] != loss[1][1] != loss[2][1] and all(3.0 < v < 6.0 for _, v in loss)
    from clorg.book import plots, tables

    fig = plots.set_loss_along_run(with_loss)
    assert [p for p in fig.axes[0].lines[0].get_xdata()] == [0, 1, 2]
    plt.close(fig)
    assert "whole-set loss: last" in tables.dynamics_table(with_loss).index


def test_toward_regime_on_hand_made_records():
    def rec(metric, epoch, value, parameter=None):
        return {**RUN, "epoch": epoch, "metric": metric, "parameter": parameter, "value": value, "seed": None}

    records = []
    for epoch, (knn, c1, ck, rld, ch) in {0: (0.3, 0.5, 0.4, 0.10, 100.0), 5: (0.5, 0.8, 0.5, 0.30, 50.0),
                                          10: (0.6, 0.9, 0.55, 0.45, 25.0)}.items():
        records += [rec(R.KNN, epoch, knn, 10), rec(R.CHI, epoch, c1, 1), rec(R.CHI, epoch, ck, 200),
                    rec(R.RLD, epoch, rld, 0.1), rec(R.RLD, epoch, rld / 10, 1.0), rec(R.CH, epoch, ch)]
    from clorg.analysis.dynamics import toward_regime

    path = toward_regime(records, RUN, ch_supervised=500.0)
    assert [p["epoch"] for p in path] == [0, 5, 10] and [p["knn"] for p in path] == [0.3, 0.5, 0.6]
    # claim 1's relative drop D = 1 - CHI(200) / CHI(1), the statistic its criterion bounds (not CHI(1) - CHI(200))
    assert [p["chi_drop"] for p in path] == pytest.approx([1 - 0.4 / 0.5, 1 - 0.5 / 0.8, 1 - 0.55 / 0.9])
    assert [p["rld_gain"] for p in path] == pytest.approx([0.0, 0.2, 0.35])
    assert [p["ch_ratio"] for p in path] == pytest.approx([5.0, 10.0, 20.0])
    assert all(p["ch_ratio"] is None for p in toward_regime(records, RUN))  # no supervised CH stored

    from clorg.book import plots

    fig = plots.toward_regime({"resnet18 moco_queue, cosine": path})
    drop, gain, ratio = fig.axes
    assert list(drop.lines[0].get_xdata()) == [30.0, 50.0, 60.0]  # kNN accuracy in percent
    # the authors' ViT: D = 1 - CHI(1,000) 0.527 / CHI(1) 0.873 (SPEC 7's 0.396), and RLD(0.1) 0.13 -> 0.75; their
    # supervised CH: not saved
    assert drop.lines[1].get_ydata()[0] == pytest.approx(0.396, abs=5e-4)  # SPEC 7's D(CL) of the authors
    assert gain.lines[1].get_ydata()[0] == pytest.approx(0.75 - 0.13)
    assert any(t.get_text() == "the authors: not saved" for t in ratio.texts) and ratio.get_yscale() == "log"
    # claim 3's line comes from their dynamics run on a CIFAR-10 variant, and the figure's legend says so
    assert drop.lines[1].get_label() == "the authors' ViT" and "CIFAR-10 variant" in gain.lines[1].get_label()
    assert {"the authors' ViT", gain.lines[1].get_label()} <= {t.get_text() for t in fig.legends[0].get_texts()}
    plt.close(fig)


# ------------------------------------------------- figure -------------------------------------------------

def test_the_figure_draws_ours_and_the_authors(tiny):
    from clorg.book import plots

    _, _, records = tiny
    both = records + [dict(r, method="simclr") for r in records]
    fig = plots.training_dynamics(both)
    axes = fig.get_axes()  # the 4 x 3 grid row by row: CH, RLD, kNN accuracy, learning rate (two runs, the authors')
    assert len(axes) == 4 * 3
    ch, rld, acc, lr = axes[0], axes[3], axes[6], axes[9]  # the first run's column
    assert list(ch.lines[0].get_xdata()) == [0, 1, 2] and ch.get_yscale() == "log"
    assert ch.get_title() == "resnet18 moco_queue\ncosine schedule"
    assert axes[1].get_title() == "resnet18 simclr\ncosine schedule"
    assert [line.get_label() for line in rld.lines] == ["T = 1", "T = 0.1"]
    assert len(acc.lines) == 1 and list(acc.lines[0].get_xdata()) == [0, 1, 2]
    assert list(lr.lines[0].get_xdata()) == [0, 1] and lr.get_yscale() == "log"  # the rate, per epoch
    authors_ch, authors_rld, authors_lr = axes[2], axes[5], axes[11]
    assert list(authors_ch.lines[0].get_xdata()) == [e for e, _ in paper.DYNAMICS_CH] == [0, 300, 1200]
    assert list(authors_rld.lines[0].get_ydata()) == [0.13, 0.84, 0.75]
    assert authors_rld.get_xlim()[1] > 1200 and ch.get_xlim()[1] < 10  # their epochs, not squeezed onto ours
    rate = authors_lr.lines[0].get_ydata()  # their learning rate rises to ~4e-3 by epoch 1200
    assert rate[0] < 1e-7 and 3.9e-3 < rate[-1] < 4.1e-3
    # the same temperature has the same colour in our row and in the authors'
    assert authors_rld.lines[0].get_color() == rld.lines[1].get_color()
    plt.close(fig)
    single = plots.training_dynamics(records, with_reference=False)
    assert len(single.axes) == 4
    plt.close(single)


def test_heads_along_the_run_cross_out_fits_stopped_at_the_step_cap():
    """A fit that stopped at the honest protocol's step cap, not on patience, is not the authors' kind of
    fit: the figure crosses it out and its title counts such fits per head."""
    def rec(metric, epoch, value, parameter=None):
        return {**RUN, "epoch": epoch, "metric": metric, "parameter": parameter, "value": value, "seed": 0}

    records = []
    for epoch, capped in ((0, 0.0), (5, 1.0), (10, 0.0)):
        records += [rec(R.head_metric("linear", R.TEST), epoch, 0.4 + epoch / 100),
                    rec(R.head_metric("linear", R.CAP_HIT), epoch, capped),
                    rec(R.head_metric("gcn", R.TEST), epoch, 0.3, 0.1), rec(R.head_metric("gcn", R.CAP_HIT), epoch, 0.0, 0.1),
                    rec(R.KNN, epoch, 0.5, 10)]
    from clorg.book import plots

    fig = plots.heads_along_run(records)
    ax = fig.axes[0]
    assert ax.get_title().endswith("fits at the step cap: linear 1 of 3, GCN 0 of 3")
    (cross,) = [line for line in ax.lines if line.get_marker() == "x"]
    assert (list(cross.get_xdata()), list(cross.get_ydata())) == ([5], [45.0])
    plt.close(fig)
