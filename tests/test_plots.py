"""The book's figures: one colour and one place per kind of feature set, whatever order a profile lists its
methods in; ticks at the values measured; claim 4's gain on an axis of its own."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from clorg.analysis import classify  # noqa: E402
from clorg.analysis import records as R  # noqa: E402
from clorg.book import evidence, plots, tables  # noqa: E402
from clorg.core import criteria  # noqa: E402

CL = {"encoder": "resnet18", "method": "moco_queue", "schedule": "cosine", "epoch": 60}
SL = {**CL, "method": "supervised", "epoch": 40}
RI = {**CL, "epoch": 0}


def _chi_records(*sets):
    values = {0: (0.7, 0.5, 0.3), 1: (0.95, 0.94, 0.93), 2: (0.4, 0.3, 0.2)}  # by kind: CL, SL, RI
    kind = {id(CL): 0, id(SL): 1, id(RI): 2}
    return [R.record(s, R.CHI, v, parameter=k) for s in sets for k, v in zip((1, 10, 200), values[kind[id(s)]])]


def test_feature_sets_keep_their_order_and_colour_whatever_the_profile_lists_first():
    """gpu10 lists [supervised, moco_queue], fashion [moco_queue, supervised]: their pages must not swap colours."""
    one = plots.feature_sets([SL, RI, CL])
    other = plots.feature_sets([RI, CL, SL])
    assert one == other
    assert [(name, colour) for name, colour, _ in one] == [("resnet18 moco_queue", "C0"), ("resnet18 supervised", "C1"),
                                                           ("resnet18 random init", "C7")]
    # a second contrastive run takes the next contrastive colour, never the supervised one
    simclr = {**CL, "method": "simclr"}
    assert [c for _, c, _ in plots.feature_sets([SL, simclr, CL])] == ["C0", "C2", "C1"]
    # a training run's row has no epoch: it is a trained run, not a random initialisation
    rows = [{"encoder": "resnet18", "method": "supervised", "schedule": "cosine"},
            {"encoder": "resnet18", "method": "moco_queue", "schedule": "cosine"}]
    assert [r["method"] for _, _, r in plots.feature_sets(rows)] == ["moco_queue", "supervised"]


def test_feature_sets_keep_two_epochs_of_one_run_and_two_encoders_apart():
    """`paper` measures its supervised ResNet-18 at epochs 120 and 600 and trains three encoders: every set keeps
    its own line, name and colour (a random initialisation per encoder in its own grey)."""
    at_600 = {**SL, "epoch": 600}
    vit = {k: {**v, "encoder": "vit"} for k, v in (("CL", CL), ("SL", SL), ("RI", RI))}
    sets = plots.feature_sets([at_600, RI, SL, vit["RI"], CL, vit["SL"], vit["CL"]])
    assert [name for name, _, _ in sets] == [
        "resnet18 moco_queue", "vit moco_queue", "resnet18 supervised (epoch 40)", "resnet18 supervised (epoch 600)",
        "vit supervised", "resnet18 random init", "vit random init"]
    colours = [colour for _, colour, _ in sets]
    assert len(set(colours)) == len(colours)
    records = [R.record(s, R.RLD, v, parameter=t) for s, v in ((SL, 0.5), (at_600, 0.7)) for t in (0.1, 1.0)]
    fig = plots.rld_of_feature_sets(records)
    try:
        lines = {line.get_label(): list(line.get_ydata()) for line in fig.axes[0].lines}
        assert lines == {"resnet18 supervised (epoch 40)": [0.5, 0.5], "resnet18 supervised (epoch 600)": [0.7, 0.7]}
    finally:
        plt.close(fig)


@pytest.mark.parametrize("order", [(CL, SL, RI), (SL, RI, CL)])
def test_chi_figure_colours_by_kind_ticks_every_k_and_marks_claim_1s_k_max(order):
    fig = plots.chi_against_k(_chi_records(*order), {"theirs": (0.9, 0.8, 0.7)}, (1, 100, 210), class_size=1000)
    try:
        ax = fig.axes[0]
        lines = {line.get_label(): line for line in ax.lines}
        assert matplotlib.colors.to_hex(lines["resnet18 moco_queue"].get_color()) == matplotlib.colors.to_hex("C0")
        assert matplotlib.colors.to_hex(lines["resnet18 supervised"].get_color()) == matplotlib.colors.to_hex("C1")
        assert list(lines["resnet18 moco_queue"].get_ydata()) == [0.7, 0.5, 0.3]  # sorted by k
        k_max = criteria.claim1_k_max(1000)
        assert list(lines[f"claim 1's k_max = {k_max:,} (0.2 of a class here)"].get_xdata()) == [k_max, k_max]
        # 200 is labelled, not just decades; the reference's 100 added, its 210 not printed over our 200
        assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "10", "100", "200"]
        assert ax.get_xlabel() == "k, nearest neighbours (log axis)"
        assert lines["theirs"].get_color() == plots.REFERENCE_COLOUR
    finally:
        plt.close(fig)


def _classifiers():
    """Chapter 06's stored shape, made by hand: 20 test images, two head seeds, the GCN at T = 0.1 and 0.2 (0.2
    best on validation). On CL the GCN is right on 4 more images per seed than the linear head, on SL on 1 fewer."""
    labels = np.arange(20) % 4
    records, predictions = [], []
    for ident, extra in ((CL, 4), (SL, -1)):
        for seed in (0, 1):
            lin_right = 12 + seed
            gcn_right = lin_right + extra
            for head, t, right in (("linear", None, lin_right), ("gcn", 0.1, lin_right), ("gcn", 0.2, gcn_right)):
                predicted = np.where(np.arange(20) < right, labels, (labels + 1) % 4)
                predictions.append(classify.prediction_record(ident, head, t, seed, predicted))
                records.append(R.record(ident, R.head_metric(head, R.TEST), right / 20, parameter=t, seed=seed))
                val = {None: 0.5, 0.1: 0.5, 0.2: 0.6}[t]
                records.append(R.record(ident, R.head_metric(head, R.VALIDATION), val, parameter=t, seed=seed))
    return {"records": records, "predictions": predictions, "test_labels": labels.tolist()}


def test_the_gain_table_prints_the_figures_numbers_per_feature_set():
    classifiers = _classifiers()
    table = tables.gain_table(classifiers)
    assert list(table.index) == ["resnet18 moco_queue", "resnet18 supervised"]
    for name, ident, point in (("resnet18 moco_queue", CL, "+20.0"), ("resnet18 supervised", SL, "-5.0")):
        g = evidence.paired_gain(classifiers, **{k: ident[k] for k in ("encoder", "method", "epoch")})
        row = table.loc[name]
        assert row["GCN temperature"] == "0.2" and row["G (points)"] == point
        assert row["95 % interval (points)"] == f"{100 * g['low']:+.1f} to {100 * g['high']:+.1f}"
        assert row["G, authors' protocol (points)"] == tables.ABSENT  # the hand-made records hold no authors' fit
    without = dict(classifiers, predictions=[])  # no stored predictions: no interval, the point still shown
    assert set(tables.gain_table(without)["95 % interval (points)"]) == {tables.ABSENT}


def test_the_gain_figure_draws_each_feature_sets_paired_gain_and_interval_around_zero():
    classifiers = _classifiers()
    fig = plots.classifier_gains(classifiers)
    try:
        ax = fig.axes[0]
        assert [t.get_text() for t in ax.get_xticklabels()] == ["resnet18 moco_queue", "resnet18 supervised"]
        for x, ident in enumerate((CL, SL)):
            g = evidence.paired_gain(classifiers, **{k: ident[k] for k in ("encoder", "method", "epoch")})
            assert g["temperature"] == 0.2 and g["point"] == pytest.approx((4 if ident is CL else -1) / 20)
            assert g["low"] <= g["point"] <= g["high"] and g["low"] < g["high"]
            (bar,) = [c for c in ax.containers if list(c.lines[0].get_xdata()) == [x]]
            assert bar.lines[0].get_ydata()[0] == pytest.approx(100 * g["point"])
            segment = bar.lines[2][0].get_segments()[0]  # the interval, in points
            assert sorted(segment[:, 1]) == pytest.approx([100 * g["low"], 100 * g["high"]])
        assert any(list(line.get_ydata()) == [0, 0] for line in ax.lines)  # the zero line the claim reads against
        assert ax.get_ylabel() == "GCN − linear (points)"
    finally:
        plt.close(fig)


def test_t_sne_columns_follow_the_books_order_and_keep_the_maps_shape():
    rng = np.random.default_rng(0)
    idents = [SL, CL]  # stored in a profile's order: supervised first
    labels = np.stack([np.repeat(np.arange(3), 10), np.repeat([2, 1, 0], 10)])[:, None]  # a sample per map
    maps = {"Y": rng.standard_normal((2, 1, 30, 2)), "perplexities": np.array([5.0]),
            **{k: np.array([i[k] for i in idents]) for k in ("encoder", "method", "schedule", "epoch")},
            "labels": labels, "indices": np.zeros((2, 1, 30), int)}
    fig = plots.tsne_grid(maps, ["a", "b", "c"])
    try:
        assert [ax.get_title().split("\n")[0] for ax in fig.axes[:2]] == ["resnet18 moco_queue", "resnet18 supervised"]
        assert all(ax.get_aspect() == 1.0 for ax in fig.axes[:2])  # distances as the map has them
        first = fig.axes[0].collections[0]
        assert np.allclose(first.get_offsets(), maps["Y"][1, 0])  # the moco map, moved to the first column ...
        tab10 = np.asarray(plt.get_cmap("tab10").colors)
        assert np.allclose(first.get_facecolors()[:, :3], tab10[labels[1, 0]])  # ... with its own sample's classes
    finally:
        plt.close(fig)


def test_a_figure_the_profile_does_not_measure_is_a_line_of_text(capsys):
    assert plots.set_loss_along_run([]) is None and "dynamics.set_loss is off" in capsys.readouterr().out


def test_every_figure_of_a_chapter_names_its_profile_dataset_and_encoder_width(results_root):
    """A figure taken out of the book says which profile it is of: fashion's quarter-width ResNet-18 and gpu10's
    full-width one draw under one label ("resnet18"), so the line above each figure names the width; the toy
    chapter, which reads no dataset, names none; setting up a chapter sets it."""
    import subprocess
    import sys
    from types import SimpleNamespace

    from factories import TINY_BOOK

    from clorg.book import chapters, figure_subject
    from clorg.core.config import load_profile

    def subject_lines(fig):
        return [t.get_text() for t in fig.texts if t.get_text().startswith("profile ")]

    fashion = SimpleNamespace(name="fashion_mnist", train=range(10_000))
    figure_subject.set_for(load_profile("fashion"), fashion)
    line = "profile fashion: fashion_mnist, 10,000 training images; resnet18 at 0.25x width"
    assert subject_lines(plots.chi_against_k(_chi_records(CL, SL, RI))) == [line]
    assert subject_lines(plots.rld_of_feature_sets([R.record(CL, R.RLD, 0.2, parameter=1.0)])) == [line]  # once
    assert subject_lines(plots.toy_rld_curves({"titles": {"a": "A"}, "curve_temperatures": [0.1, 1.0],
                                               "curves": {"a": [0.1, 0.2]}})) == []  # synthetic: no profile
    figure_subject.set_for(load_profile("gpu10"), SimpleNamespace(name="cifar10", train=range(50_000)))
    assert subject_lines(plots.chi_against_k(_chi_records(CL))) == [
        "profile gpu10: cifar10, 50,000 training images; resnet18 at full width"]
    plt.close("all")

    cfg, data = chapters.setup("smoke", TINY_BOOK)
    assert figure_subject.current() == (f"profile {cfg['profile']['variant']}: digits, {len(data.train):,} training "
                                        f"images; {', '.join(cfg['train']['encoders'])} at "
                                        f"{cfg['train']['width_scale']:g}x width")
    chapters.setup("smoke", TINY_BOOK, chapter="01_toy_clusters")  # reads no dataset
    assert figure_subject.current() == ""
    # the headless run and the GPU job set chapters up without drawing: no matplotlib (nor seaborn) for them
    done = subprocess.run([sys.executable, "-c", "import sys, clorg.book.chapters; "
                           "print(sorted(m for m in ('matplotlib', 'seaborn') if m in sys.modules))"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stdout + done.stderr


def test_the_loss_curves_have_one_panel_per_method_and_whole_epoch_ticks(monkeypatch):
    """Two runs of a few epochs (smoke's): a panel per method, one line per run, no tick at epoch 2.5, and the
    subject line above, as every figure of the book has."""
    from clorg.book import figure_subject

    monkeypatch.setattr(figure_subject, "current", lambda: "profile smoke: digits")
    log = [{"epoch": e, "loss": 5.0 - e} for e in range(1, 6)]
    runs = [{"encoder": "resnet18", "method": m, "schedule": "cosine", "epoch": 5, "log": log}
            for m in ("moco_queue", "supervised")]
    fig = plots.loss_curves(runs)
    assert "profile smoke: digits" in [t.get_text() for t in fig.texts]
    panels = [ax for ax in fig.axes if ax.get_xlabel() == "epoch"]
    assert [len(ax.lines) for ax in panels] == [1, 1]
    for ax in panels:
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks
    plt.close(fig)


def test_every_figure_the_book_draws_names_its_subject():
    """Each public function of clorg.book.plots that returns a figure carries the subject line (it is wrapped by
    the decorator that draws it): a helper put between the decorator and its function took the line away."""
    import inspect

    drawers = [(name, f) for name, f in inspect.getmembers(plots, inspect.isfunction)
               if f.__module__ == plots.__name__ and not name.startswith("_")
               and "Figure" in str(inspect.signature(f).return_annotation)]
    assert len(drawers) > 10
    # the toy chapter's figures read no dataset, so name none; rld_of_feature_sets names its own (its caller)
    unnamed = {"toy_grid", "toy_rld_curves", "rld_against_temperature"}
    assert [name for name, f in drawers if not hasattr(f, "__wrapped__")] == sorted(unnamed)


def test_after_a_new_setup_the_figures_name_the_results_still_in_hand(results_root):
    """In Jupyter: the parameters changed and the setup cell run again, but not the cell that computes. The
    figure is drawn from the results still in hand, and its line names their profile, not the one set up last;
    once the chapter computes again, the new one."""
    from factories import TINY_BOOK

    from clorg.book import chapters, figure_subject

    cfg, data = chapters.setup("smoke", TINY_BOOK, chapter="02_train")
    res = chapters.training(cfg, data)
    first = figure_subject.current()
    assert first.startswith(f"profile {cfg['profile']['variant']}: digits")
    other, data2 = chapters.setup("smoke", {**TINY_BOOK, "toy.points_per_class": 31}, chapter="02_train")
    assert other["profile"]["variant"] != cfg["profile"]["variant"]
    fig = plots.loss_curves(res["runs"])
    assert [t.get_text() for t in fig.texts if t.get_text().startswith("profile ")] == [first]
    chapters.training(other, data2)
    assert figure_subject.current().startswith(f"profile {other['profile']['variant']}: digits")
    chapters.toy(cfg)  # a result of the first profile again (any chapter's, through the store)
    assert figure_subject.current() == first
    plt.close("all")
