"""The training-dynamics chapter on a real tiny contrastive run: every saved epoch replayed and measured
exactly as the other chapters measure a single checkpoint; the figure; the missing-snapshot error."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from clorg import classify, embed, metrics, paper, plots  # noqa: E402
from clorg.config import load_profile  # noqa: E402
from clorg.data import choose_profile_dataset  # noqa: E402
from clorg.dynamics import checkpoint_epochs, dynamics, dynamics_table, trend  # noqa: E402
from clorg.train import RunResult, run  # noqa: E402

# 8x8 digits, 30 images per class, two MoCo epochs with a snapshot after each: a real run in seconds
TINY = {"data.dataset": "digits", "data.train_per_class": 30, "data.test_per_class": 10,
        "train.contrastive_batch_size": 64, "train.moco_queue_size": 256, "train.contrastive_epochs": 2,
        "train.checkpoint_every": 1}
TEMPERATURES = (1.0, 0.1)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A trained tiny run and its records, shared by the tests of this module (training is the slow part)."""
    root = tmp_path_factory.mktemp("dynamics")
    threads = torch.get_num_threads()
    # one thread: on a few hundred nodes every op is tiny, and a second thread only adds contention
    # (a GCN fit here took 3x longer with 2 threads on a busy 2-core machine)
    torch.set_num_threads(1)
    try:
        with pytest.MonkeyPatch.context() as mp:  # as conftest's isolated_env, for a module-scoped fixture
            mp.setenv("CLORG_OFFLINE", "1")
            mp.setenv("CLORG_CACHE", str(root / "cache"))
            mp.delenv("CLORG_DATA", raising=False)
            cfg = load_profile("smoke", TINY)
            data = choose_profile_dataset(cfg)
            result = run(cfg, "resnet18", "moco_queue", data=data, runs_root=root / "runs", progress=False)
            records = dynamics(result, data, temperatures=TEMPERATURES, gcn_temperature=0.1, seeds=(0,))
            yield result, data, records
    finally:
        torch.set_num_threads(threads)


def test_every_snapshot_is_measured_as_the_other_chapters_do(tiny):
    result, data, records = tiny
    assert checkpoint_epochs(result) == [0, 1, 2]
    assert [r["epoch"] for r in records] == [0, 1, 2]
    for record in records:
        f = embed.run_features(result, data, epoch=record["epoch"])
        assert f.provenance["epoch"] == record["epoch"]
        assert record["CH"] == pytest.approx(metrics.calinski_harabasz(f.train, f.train_labels), rel=1e-12)
        rld = metrics.rld_sweep(f.train, f.train_labels, TEMPERATURES)
        assert record["RLD T=1"] == pytest.approx(rld[1.0], rel=1e-9)
        assert record["RLD T=0.1"] == pytest.approx(rld[0.1], rel=1e-9)
        assert 0 < rld[0.1] < 0.9 and rld[1.0] < rld[0.1]  # locality: a small T sees purer neighbourhoods
        for key in ("linear (honest)", "linear (authors' protocol)", "GCN T=0.1 (honest)", "GCN T=0.1 (authors' protocol)"):
            assert 0 <= record[key] <= 1
    # the heads as the classifier chapter runs them (checked at the last epoch: each fit takes seconds)
    f = embed.run_features(result, data, epoch=2)
    linear = classify.evaluate_trained(f, "linear", seeds=(0,))
    gcn = classify.evaluate_trained(f, "gcn", temperature=0.1, seeds=(0,))
    assert records[2]["linear (honest)"] == linear["test_mean"] > 0.2  # 10 classes: above chance
    assert records[2]["linear (authors' protocol)"] == linear["authors_protocol"]
    assert records[2]["GCN T=0.1 (honest)"] == gcn["test_mean"] > 0.2
    assert records[2]["GCN T=0.1 (authors' protocol)"] == gcn["authors_protocol"]
    # training moved the encoder: the measured geometry differs from the random initialisation
    assert records[-1]["CH"] != records[0]["CH"]


def test_table_and_trend(tiny):
    _, _, records = tiny
    table = dynamics_table(list(reversed(records)))
    assert list(table.index) == [0, 1, 2] and table.index.name == "epoch"
    assert list(table.columns) == ["CH", "RLD T=1", "RLD T=0.1", "linear (honest)", "linear (authors' protocol)",
                                   "GCN T=0.1 (honest)", "GCN T=0.1 (authors' protocol)"]
    t = trend(table, "CH")
    assert t["first"] == (0, records[0]["CH"]) and t["last"] == (2, records[2]["CH"])
    assert t["peak"][1] == max(r["CH"] for r in records) and t["low"][1] == min(r["CH"] for r in records)


def test_a_subset_of_epochs_and_an_unsaved_one(tiny):
    result, data, records = tiny
    (only,) = dynamics(result, data, temperatures=TEMPERATURES, epochs=[1])
    assert only == records[1]  # the same features (read back from the run folder), the same seeded heads
    with pytest.raises(ValueError, match=r"no encoder snapshot for epoch\(s\) \[7\] .* saved epochs: \[0, 1, 2\]"):
        dynamics(result, data, epochs=[0, 7])


def test_a_run_without_snapshots_says_how_to_make_them(tmp_path):
    folder = tmp_path / "runs" / "quick" / "resnet18-simclr-0123456789ab"
    (folder / "checkpoints").mkdir(parents=True)
    (folder / "checkpoints" / "last.pt").write_bytes(b"")  # a resume file is not an encoder snapshot
    result = RunResult(folder, {"encoder": "resnet18", "method": "simclr", "epochs": 20}, {}, [], reused=True)
    with pytest.raises(FileNotFoundError) as err:
        checkpoint_epochs(result)
    message = str(err.value)
    assert str(folder) in message
    assert "python -m clorg.train --config quick --encoder resnet18 --method simclr --force" in message


def test_the_figure_draws_ours_and_the_authors(tiny):
    result, _, records = tiny
    table = dynamics_table(records)
    fig = plots.training_dynamics({"moco_queue": table, "simclr": table}, reference=paper.DYNAMICS_VIT_CONTRASTIVE)
    axes = fig.axes
    assert len(axes) == 9  # two runs and the authors' row, three panels each
    ch, rld, acc = axes[0], axes[1], axes[2]
    assert list(ch.lines[0].get_xdata()) == [0, 1, 2] and ch.get_yscale() == "log"
    assert [line.get_label() for line in rld.lines] == ["T = 1", "T = 0.1"]
    styles = {line.get_label(): line.get_linestyle() for line in acc.lines}
    assert styles == {"linear, honest": "-", "linear, authors' protocol": "--",
                      "GCN T=0.1, honest": "-", "GCN T=0.1, authors' protocol": "--"}
    authors_ch, authors_rld = axes[6], axes[7]
    assert list(authors_ch.lines[0].get_xdata()) == [0, 300, 1200]
    assert list(authors_rld.lines[0].get_ydata()) == [0.13, 0.84, 0.75]
    assert authors_rld.get_xlim()[1] > 1200 and ch.get_xlim()[1] < 10  # their epochs, not squeezed onto ours
    # the same temperature has the same colour in our row and in the authors'
    assert authors_rld.lines[0].get_color() == rld.lines[1].get_color()
    plt.close(fig)
    single = plots.training_dynamics(table)
    assert len(single.axes) == 3
    plt.close(single)


def test_follows_paper_and_the_comparison_lines():
    import pandas as pd

    from clorg.dynamics import compare_with_paper, follows_paper

    def table(ch, rld01):
        return pd.DataFrame({"epoch": [0, 5, 10], "CH": ch, "RLD T=0.1": rld01, "RLD T=1": [0.01, 0.03, 0.02],
                             "linear (honest)": [0.3, 0.4, 0.5], "GCN T=0.1 (honest)": [0.3, 0.45, 0.4]}
                            ).set_index("epoch")
    paper_like = table([550.0, 520.0, 8.0], [0.13, 0.8, 0.75])
    ours_like = table([62.0, 265.0, 253.0], [0.07, 0.2, 0.24])
    assert follows_paper(paper_like) == {"CH falls": True, "RLD(0.1) rises": True, "holds": True}
    assert follows_paper(ours_like) == {"CH falls": False, "RLD(0.1) rises": True, "holds": False}
    lines = compare_with_paper(ours_like, "r18 moco", paper.DYNAMICS_VIT_CONTRASTIVE, "GCN T=0.1")
    assert lines[0] == "ours, r18 moco, 10 epochs:"
    assert "CH 62.0 (epoch 0) -> 253.0 (epoch 10), peak 265.0 at epoch 5: does NOT fall (4.08x; paper 0.014x)" in lines[1]
    assert lines[3] == "  RLD(T=1) at most 0.0300 (epoch 5): NOT below the paper's 0.02"
    assert "GCN T=0.1 test accuracy (honest) 30.0% -> 40.0%, peak 45.0% at epoch 5" in lines[5]
    assert lines[-1].endswith("NOT reproduced on this run")
