"""The ci/ drivers of a GPU profile: which chapters the executor skips on a machine without a GPU, what
their pages say, and how ci/train_profile.py launches runs (no papermill, no training: fakes only)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "ci"))

import execute_notebooks as ex  # noqa: E402
import train_profile as tp  # noqa: E402
from clorg.chapters import NEEDS_NO_RUNS, PRODUCES  # noqa: E402
from clorg.config import load_profile  # noqa: E402


@pytest.fixture
def stored(tmp_path, monkeypatch):
    """An empty results/gpu10/ under a fake project root, and a helper that stores results in it."""
    monkeypatch.setattr(ex, "ROOT", tmp_path)
    folder = tmp_path / "results" / "gpu10"
    folder.mkdir(parents=True)

    def store(*files):
        for f in files:
            (folder / f).write_text("{}")
    return folder, store


# ============================================ execute_notebooks ============================================

def test_gpu_profile_without_gpu_skips_chapters_whose_results_are_missing(stored):
    folder, store = stored
    gpu10 = load_profile("gpu10")
    reason = ex.skip_reason("05_tsne", gpu10, folder, cuda=False)
    assert "needs a GPU" in reason
    assert "results/gpu10/tsne.json/.npz" in reason and "results/gpu10/tsne_claims.json/.npz" in reason
    store("tsne.npz")  # one of its two results: still skipped, and only the other is named
    reason = ex.skip_reason("05_tsne", gpu10, folder, cuda=False)
    assert "tsne_claims" in reason and "tsne.json" not in reason
    store("tsne_claims.json")  # all stored: the chapter executes and reads them, no GPU needed
    assert ex.skip_reason("05_tsne", gpu10, folder, cuda=False) is None


def test_chapters_that_store_nothing_always_execute(stored):
    folder, _ = stored
    gpu10 = load_profile("gpu10")
    for stem in ("00_data", "09_report"):
        assert stem not in PRODUCES
        assert ex.skip_reason(stem, gpu10, folder, cuda=False) is None
    # the toy figure stores a result but reads no run: computed on any machine
    assert "toy" in PRODUCES["01_toy_clusters"] and not (folder / "toy.json").exists()
    assert ex.skip_reason("01_toy_clusters", gpu10, folder, cuda=False) is None


def test_nothing_is_skipped_with_a_gpu_on_cpu_profiles_or_with_allow_cpu(stored):
    folder, _ = stored  # empty: every result missing
    gpu10, smoke = load_profile("gpu10"), load_profile("smoke")
    for stem in PRODUCES:
        assert ex.skip_reason(stem, gpu10, folder, cuda=True) is None
        assert ex.skip_reason(stem, smoke, folder, cuda=False) is None
        assert ex.skip_reason(stem, gpu10, folder, cuda=False, allow_cpu=True) is None
        assert (ex.skip_reason(stem, gpu10, folder, cuda=False) is None) == (stem in NEEDS_NO_RUNS)


def test_skipped_page_says_why_what_is_missing_and_how_to_produce_it(stored):
    folder, store = stored
    store("tsne.npz")
    note = ex.skipped_note("05_tsne", load_profile("gpu10"), folder, "gpu10", [])
    assert note.startswith(":::{warning}\n**This chapter was not executed in this build**")
    assert "needs a GPU" in note and "`results/gpu10/tsne_claims.json` (or `.npz`)" in note
    assert "results/gpu10/tsne.json" not in note  # stored: not reported missing
    assert "`make gpu10`" in note and "`python ci/train_profile.py --profile gpu10`" in note
    assert "`python ci/execute_notebooks.py --profile gpu10 --only 05_tsne`" in note
    # overrides travel into every command; a profile given as a file has no make target
    note = ex.skipped_note("02_train", load_profile("paper"), folder, "paper", ["train.contrastive_epochs=5"])
    assert 'make paper OVERRIDES="--override train.contrastive_epochs=5"' in note
    assert "--only 02_train --override train.contrastive_epochs=5" in note
    everything, chapter = ex.produce_commands("configs/mine.yaml", "mine", "04_metrics", [])
    assert "make" not in everything
    assert everything.startswith("python ci/train_profile.py --profile configs/mine.yaml && ")
    assert chapter == "python ci/execute_notebooks.py --profile configs/mine.yaml --only 04_metrics"


def test_results_outside_the_project_are_named_in_full(tmp_path):
    elsewhere = tmp_path / "elsewhere" / "gpu10"
    assert str(elsewhere) in ex.skip_reason("04_metrics", load_profile("gpu10"), elsewhere, cuda=False)


def test_note_goes_below_the_title_cell():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Metrics\n\ntext"),
                                         nbformat.v4.new_code_cell("profile = 'quick'")])
    ex.with_note(nb, ":::{warning}\nnot executed\n:::")
    assert [c.cell_type for c in nb.cells] == ["markdown", "markdown", "code"]
    assert nb.cells[0].source.startswith("# Metrics")  # still the page title
    assert "not executed" in nb.cells[1].source
    untitled = ex.with_note(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1")]), "note")
    assert untitled.cells[0].source == "note"


# ============================================== train_profile ==============================================

def test_plan_is_every_encoder_with_every_method():
    cfg = load_profile("gpu10")
    runs = tp.plan(cfg)
    assert runs == [(e, m) for e in cfg["train"]["encoders"] for m in cfg["train"]["methods"]]
    assert runs[0][0] == cfg["train"]["encoders"][0]  # encoder by encoder


def test_gpu_profiles_are_refused_without_a_gpu_unless_allowed():
    gpu10, quick = load_profile("gpu10"), load_profile("quick")
    message = tp.gpu_refusal(gpu10, gpus=0, allow_cpu=False)
    assert "needs a GPU" in message and "--allow-cpu" in message and "make gpu10" in message
    assert tp.gpu_refusal(gpu10, gpus=0, allow_cpu=True) is None
    assert tp.gpu_refusal(gpu10, gpus=1, allow_cpu=False) is None
    assert tp.gpu_refusal(quick, gpus=0, allow_cpu=False) is None


def test_one_process_per_run_or_torchrun_over_several_gpus():
    one = tp.train_command("gpu10", "vit", "moco_queue", ["data.train_per_class=20"], gpus=1)
    assert one == [sys.executable, "-m", "clorg.train", "--config", "gpu10", "--encoder", "vit",
                   "--method", "moco_queue", "--override", "data.train_per_class=20"]
    assert tp.train_command("gpu10", "vit", "moco_queue", [], gpus=0)[:3] == [sys.executable, "-m", "clorg.train"]
    four = tp.train_command("paper", "resnet18", "supervised", [], gpus=4, force=True)
    start, _, rest = tp.shown(four).partition(" --standalone")
    assert start in ("torchrun", "python -m torch.distributed.run")  # the script next to python, else the module
    assert rest == " --nproc_per_node=4 -m clorg.train --config paper --encoder resnet18 --method supervised --force"
    assert tp.batch_problem(load_profile("gpu10"), 4) is None
    assert "does not split over 3 GPUs" in tp.batch_problem(load_profile("gpu10"), 3)


def test_main_refuses_a_gpu_profile_on_the_cpu_with_exit_2(monkeypatch, capsys):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail("no run may start"))
    assert tp.main(["--profile", "gpu10"]) == tp.REFUSED == 2
    assert "needs a GPU" in capsys.readouterr().err


def test_main_trains_each_run_prints_times_and_stops_at_the_first_failure(monkeypatch, capsys):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    started = []

    def fake_run(cmd, cwd, env):
        started.append(cmd)
        assert cwd == tp.ROOT and str(tp.ROOT / "lib") in env["PYTHONPATH"]
        return subprocess.CompletedProcess(cmd, 3 if "supervised" in cmd else 0)

    monkeypatch.setattr(subprocess, "run", fake_run)
    args = ["--profile", "gpu10", "--allow-cpu", "--override", "data.train_per_class=20"]
    assert tp.main(args) == 3  # resnet18/moco_queue, then resnet18/supervised fails: the ViT never starts
    assert [(c[c.index("--encoder") + 1], c[c.index("--method") + 1]) for c in started] == \
        [("resnet18", "moco_queue"), ("resnet18", "supervised")]
    assert all(c[-2:] == ["--override", "data.train_per_class=20"] for c in started)
    out = capsys.readouterr()
    assert "wall time per run" in out.out and "total" in out.out and "FAILED" in out.out
    assert "Run this again to resume" in out.err
