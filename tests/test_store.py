"""The results store (clorg.book.store): what is read, what is recomputed and when, what is refused. (A truncated
.json, a corrupt .npz, a result of older code, a full disk and two processes computing one result are faults
of the catalogue: tests/test_faults.py.)"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from factories import counter

from clorg.book import store
from clorg.book.store import (FORMAT, ResultsMismatch, Source, UnreadableResult, cached, fingerprint, plain,
                              status)
from clorg.core import paths

SOURCE = Source(reads=("metrics",), code=())
TOY = Source(reads=("toy",), code=("clorg.analysis.toy",))


class _Data:
    def __init__(self, sha="a" * 64, name="cifar10", skipped=()):
        self.sha, self.name, self.skipped = sha, name, list(skipped)

    def summary(self):
        return {"name": self.name, "source": "x", "sha256": self.sha, "train_images": 10, "test_images": 4,
                "skipped": self.skipped, "notes": []}


def _cfg(profile="quick", **metrics):
    return {"profile": {"name": profile, "description": "d"}, "metrics": {"chi_ks": [1, 10], **metrics},
            "toy": {"seeds": 2}, "tsne": {"sample_size": 500}}


def _cached(cfg, data, name, compute, source=SOURCE, root=None, **kw):
    return cached(cfg, data, name, compute, source, producer=kw.pop("producer", "notebooks/04_metrics.ipynb"),
                  command=f"python -m clorg.book --profile {cfg['profile']['name']} --only 04_metrics", root=root,
                  **kw)


@pytest.fixture(autouse=True)
def scratch(results_root):
    """Every test of the store writes under the test's folder (see conftest's results_root)."""
    return results_root


# ============================================ plain values ============================================


def test_a_computation_removes_what_a_killed_one_left_mid_write(scratch):
    """A build killed (kill -9) while writing a result or its parts leaves their temporary files: the next
    computation of that result, holding its lock, removes them; another result's are not its own."""
    folder = scratch / "smoke"
    folder.mkdir(parents=True)
    for name in (".x.json.abc12345.tmp", ".x.parts.json.def45678.tmp", ".y.json.ghi78901.tmp"):
        (folder / name).write_bytes(b"half")
    assert _cached(_cfg("smoke"), None, "x", lambda: {"v": 1}) == {"v": 1}
    assert sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp")) == [".y.json.ghi78901.tmp"]


def test_numpy_values_are_stored_as_plain_json(scratch):
    value = {"a": np.float32(0.5), "b": np.arange(3), "c": {1: np.int64(2)}, "d": (1, 2)}
    assert plain(value) == {"a": 0.5, "b": [0, 1, 2], "c": {"1": 2}, "d": [1, 2]}
    assert _cached(_cfg("smoke"), None, "x", lambda: value) == {"a": 0.5, "b": [0, 1, 2], "c": {"1": 2}, "d": [1, 2]}
    path = scratch / "smoke" / "x.json"
    assert path.is_file() and json.loads(path.read_text())["result"]["c"] == {"1": 2}
    assert status(_cfg("smoke"), None, "missing", SOURCE, producer="nb").kind == "missing"


# ============================================ cached results ==========================================


def test_cached_computes_once_then_reads(scratch, capsys):
    calls = []

    def compute():
        calls.append(1)
        return {"ch": np.float64(2.5), "table": {"a": np.arange(2)}}

    first = _cached(_cfg(), _Data(), "geometry", compute)
    # why a preferred dataset was skipped is no part of the data's identity
    second = _cached(_cfg(), _Data(skipped=[("fashion-mnist", "missing here")]), "geometry", compute)
    assert first == second == {"ch": 2.5, "table": {"a": [0, 1]}} and len(calls) == 1
    path = scratch / "quick" / "geometry.json"
    assert f"read {path}" in capsys.readouterr().out
    entry = json.loads(path.read_text())
    assert entry["meta"]["fingerprint"] == fingerprint(_cfg(), _Data(), SOURCE)
    assert {"saved_at", "commit", "hardware", "compute_seconds"} <= set(entry["meta"])
    assert status(_cfg(), _Data(), "geometry", SOURCE, producer="nb").kind == "current"
    _cached(_cfg(), _Data(), "geometry", compute, recompute=True)
    assert len(calls) == 2


def test_a_change_of_a_section_the_chapter_reads_recomputes_another_does_not(capsys):
    calls, make = counter()
    _cached(_cfg(), _Data(), "g", make({"v": 1}))
    # the t-SNE section is not read by this result: still current
    other = _cfg()
    other["tsne"]["sample_size"] = 25_000
    assert status(other, _Data(), "g", SOURCE, producer="nb").kind == "current"
    assert _cached(other, _Data(), "g", make({"v": 9})) == {"v": 1} and len(calls) == 1
    # the metrics section is: recomputed, once
    st = status(_cfg(chi_ks=[1, 5]), _Data(), "g", SOURCE, producer="nb")
    assert st.kind == "config" and "metrics" in st.detail and not st.usable
    assert _cached(_cfg(chi_ks=[1, 5]), _Data(), "g", make({"v": 2})) == {"v": 2}
    assert "another setting of the profile sections ['metrics']" in capsys.readouterr().out
    assert _cached(_cfg(chi_ks=[1, 5]), _Data(), "g", make({"v": 3})) == {"v": 2} and len(calls) == 2


def test_results_of_another_dataset_or_profile_are_an_error_naming_the_file(scratch):
    _cached(_cfg(), _Data(), "g", lambda: {"v": 1})
    path = scratch / "quick" / "g.json"
    with pytest.raises(ResultsMismatch, match=r"dataset .*notebooks/04_metrics.ipynb") as err:
        _cached(_cfg(), _Data(sha="b" * 64), "g", lambda: {"v": 2})
    assert str(path) in str(err.value)
    # the usual cause, a build that fell back to another dataset, is named first, with the folder it read
    assert f"check $CLORG_DATA (now {paths.data_root()})" in str(err.value)
    with pytest.raises(ResultsMismatch, match="dataset"):
        _cached(_cfg(), _Data(name="fashion-mnist"), "g", lambda: {"v": 2})
    # a folder copied from another profile
    (scratch / "smoke").mkdir()
    (scratch / "smoke" / "g.json").write_text(path.read_text())
    with pytest.raises(ResultsMismatch, match="profile 'quick'.*this chapter runs profile 'smoke'") as err:
        _cached(_cfg("smoke"), _Data(), "g", lambda: {"v": 2})
    assert str(scratch / "smoke" / "g.json") in str(err.value)
    with pytest.raises(ResultsMismatch, match="profile"):  # status() checks the same, for every reader
        status(_cfg("smoke"), _Data(), "g", SOURCE, producer="nb")
    # the stored file is left as it was
    assert json.loads(path.read_text())["result"] == {"v": 1}


def test_cached_arrays_round_trip_and_checks(scratch):
    calls = []

    def compute():
        calls.append(1)
        return {"Y": np.arange(6, dtype=np.float32).reshape(3, 2)}

    a = _cached(_cfg(), _Data(), "tsne", compute, arrays=True)
    b = _cached(_cfg(), _Data(), "tsne", compute, arrays=True)
    assert len(calls) == 1 and np.array_equal(a["Y"], b["Y"]) and b["Y"].dtype == np.float32
    assert (scratch / "quick" / "tsne.npz").is_file()
    with pytest.raises(ResultsMismatch, match="dataset"):
        _cached(_cfg(), _Data(sha="c" * 64), "tsne", compute, arrays=True)


def test_a_failed_computation_leaves_the_stored_result(scratch):
    _cached(_cfg(), _Data(), "g", lambda: {"v": 1})

    def broken():
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        _cached(_cfg(), _Data(), "g", broken, recompute=True)
    assert _cached(_cfg(), _Data(), "g", lambda: {"v": 2}) == {"v": 1}
    # the lock file beside it stays; no temporary file does
    assert [p.name for p in (scratch / "quick").iterdir() if not p.name.endswith(".lock")] == ["g.json"]


def test_a_result_without_data_is_stored_and_read():
    assert _cached(_cfg(), None, "toy", lambda: {"v": 1}) == {"v": 1}
    assert _cached(_cfg(), None, "toy", lambda: {"v": 2}) == {"v": 1}
    assert fingerprint(_cfg(), None, SOURCE)["data"] is None


def test_results_of_an_older_format_are_recomputed(monkeypatch, capsys):
    _cached(_cfg(), _Data(), "g", lambda: {"v": 1})
    _cached(_cfg(), _Data(), "a", lambda: {"Y": np.zeros(2)}, arrays=True)
    monkeypatch.setattr(store, "FORMAT", FORMAT + 1)
    st = status(_cfg(), _Data(), "g", SOURCE, producer="nb")
    assert st.kind == "format" and not st.usable
    assert _cached(_cfg(), _Data(), "g", lambda: {"v": 2}) == {"v": 2}
    assert _cached(_cfg(), _Data(), "a", lambda: {"Y": np.ones(2)}, arrays=True)["Y"].tolist() == [1.0, 1.0]
    assert "older code" in capsys.readouterr().out
    # and a machine that cannot recompute refuses it, with the command
    monkeypatch.setattr(store, "FORMAT", FORMAT + 2)
    with pytest.raises(UnreadableResult, match="--only 04_metrics"):
        _cached(_cfg(), _Data(), "g", lambda: {"v": 3}, can_compute=False)


# ============================================ code versions ===========================================

def test_a_result_stored_before_code_versions_counts_as_older_code(scratch):
    _cached(_cfg(), None, "toy", lambda: {"v": 1}, source=TOY)
    path = scratch / "quick" / "toy.json"
    entry = json.loads(path.read_text())
    del entry["meta"]["fingerprint"]["code"]
    path.write_text(json.dumps(entry))
    st = status(_cfg(), None, "toy", TOY, producer="nb")
    assert st.kind == "code" and st.changed == ("(not recorded)",)


# ================================================ runs ================================================


def _run(folder: str, finished_at: str, code_version=None):
    return SimpleNamespace(folder=Path("/runs/quick") / folder,
                           record={"finished_at": finished_at, "code": code_version or {"sha256": "x"}})


def test_runs_retrained_since_recompute(capsys):
    calls, make = counter()
    sl = _run("vit-supervised-def", "2024-01-01")
    before = Source(("metrics",), (), [_run("vit-moco_queue-abc", "2024-01-01"), sl])
    after = Source(("metrics",), (), [_run("vit-moco_queue-abc", "2024-02-01"), sl])
    _cached(_cfg(), _Data(), "g", make({"v": 1}), source=before)
    assert _cached(_cfg(), _Data(), "g", make({"v": 9}), source=before) == {"v": 1} and len(calls) == 1
    st = status(_cfg(), _Data(), "g", after, producer="nb")
    assert st.kind == "runs" and st.usable and st.changed == ("vit-moco_queue-abc",)
    assert "retrained since: vit-moco_queue-abc" in st.detail
    assert _cached(_cfg(), _Data(), "g", make({"v": 2}), source=after) == {"v": 2} and len(calls) == 2
    assert "retrained since" in capsys.readouterr().out
    # a run added to (or gone from) the chapter counts too
    more = Source(("metrics",), (), after.runs + [_run("vit-simclr-123", "2024-03-01")])
    assert status(_cfg(), _Data(), "g", more, producer="nb").changed == ("vit-simclr-123",)
    # runs trained elsewhere (not on this machine): nothing to compare, the result is read
    assert status(_cfg(), _Data(), "g", Source(("metrics",), (), None), producer="nb").kind == "current"


def test_the_runs_state_is_recorded_in_the_fingerprint():
    runs = [_run("vit-moco_queue-abc", "2024-01-01", {"sha256": "c1", "files": {}})]
    fp = fingerprint(_cfg(), _Data(), Source(("metrics",), (), runs))
    assert fp["runs"] == {"vit-moco_queue-abc": {"finished_at": "2024-01-01", "code": {"sha256": "c1", "files": {}}}}
    assert fingerprint(_cfg(), _Data(), SOURCE)["runs"] is None


# ========================================== unreadable files ==========================================

@pytest.mark.parametrize("content", ["{not json", "[1, 2]", '{"meta": {}, "result": 1}'])
def test_other_unreadable_json_is_recomputed(scratch, content):
    path = scratch / "quick" / "g.json"
    path.parent.mkdir(parents=True)
    path.write_text(content)
    assert status(_cfg(), _Data(), "g", SOURCE, producer="nb").kind == "unreadable"
    assert _cached(_cfg(), _Data(), "g", lambda: {"v": 2}) == {"v": 2}


def test_a_missing_result_cannot_be_shown_without_computing():
    with pytest.raises(UnreadableResult,
                       match=r"does not exist.*`python -m clorg.book --profile quick --only 04_metrics`"):
        _cached(_cfg(), _Data(), "g", lambda: {"v": 1}, can_compute=False)


# ============================================ resumed results =========================================


def _parted(fail_at: int | None, log: list):
    """A resumable compute of parts a, b, c that raises before part ``fail_at`` (None: never); ``log`` gets
    the parts it computed (not those it found)."""
    def compute(parts):
        out = []
        for i, key in enumerate("abc"):
            if i == fail_at:
                raise KeyboardInterrupt("cut off")  # as a timeout or Ctrl-C would
            done = parts.get(key)
            if done is None:
                log.append(key)
                done = {"v": i}
                parts.save(key, done)
            out.append(done)
        return {"parts": out}
    return compute


def test_an_interrupted_resumable_result_resumes_after_its_last_finished_part(scratch, capsys):
    log = []
    with pytest.raises(KeyboardInterrupt):
        _cached(_cfg(), _Data(), "heads", _parted(2, log), resumable=True)
    saved = scratch / "quick" / "heads.parts.json"
    assert log == ["a", "b"] and saved.is_file()
    assert status(_cfg(), _Data(), "heads", SOURCE, producer="nb").kind == "missing"  # parts are no result
    result = _cached(_cfg(), _Data(), "heads", _parted(None, log), resumable=True)
    assert result == {"parts": [{"v": 0}, {"v": 1}, {"v": 2}]}
    assert log == ["a", "b", "c"]  # a and b were read, not computed again
    assert "resuming after 2 finished part(s)" in capsys.readouterr().out
    assert not saved.exists()  # the whole result is stored: its parts are gone
    parts = json.loads((scratch / "quick" / "heads.json").read_text())["meta"]["parts"]
    assert (parts["count"], parts["resumed"], len(parts["hardware"])) == (3, 2, 1)  # where they were computed
    # FRESH=1 starts from the first part, whatever is saved
    with pytest.raises(KeyboardInterrupt):
        _cached(_cfg(), _Data(), "heads", _parted(1, log), resumable=True, recompute=True)
    _cached(_cfg(), _Data(), "heads", _parted(None, log), resumable=True, recompute=True)
    assert log == ["a", "b", "c", "a", "a", "b", "c"]
    # parts left by an interrupted FRESH=1 beside a result still current are dropped when it is read
    with pytest.raises(KeyboardInterrupt):
        _cached(_cfg(), _Data(), "heads", _parted(1, log), resumable=True, recompute=True)
    assert saved.is_file()
    _cached(_cfg(), _Data(), "heads", _parted(None, log), resumable=True)
    assert not saved.exists() and log[-1] == "a"


def test_parts_of_other_settings_or_unreadable_parts_are_not_reused(scratch, capsys):
    log = []
    with pytest.raises(KeyboardInterrupt):
        _cached(_cfg(), _Data(), "heads", _parted(2, log), resumable=True)
    # another setting of a section the result reads: its parts are another computation's
    _cached(_cfg(chi_ks=[1, 5]), _Data(), "heads", _parted(None, log), resumable=True)
    assert log == ["a", "b", "a", "b", "c"]
    assert "computed under other settings, code, data or runs: not reused" in capsys.readouterr().out
    saved = scratch / "quick" / "heads.parts.json"
    saved.write_text('{"fingerprint": ')  # truncated: said, and started afresh
    _cached(_cfg(), _Data(), "heads", _parted(None, log), resumable=True)
    assert log[-3:] == ["a", "b", "c"] and "cannot be read" in capsys.readouterr().out


# ============================================ added switches ==========================================


def test_a_switch_added_since_is_left_out_of_the_hash_at_the_value_it_had_before_it_existed():
    """A result stored before dynamics.set_loss existed computed no set loss: with the switch off it is
    current, with it on it is another computation."""
    source = Source(reads=("dynamics",), code=())
    before = {"profile": {"name": "quick"}, "dynamics": {"knn_k": 10}}
    off = {"profile": {"name": "quick"}, "dynamics": {"knn_k": 10, "set_loss": False, "heads": False}}
    on = {"profile": {"name": "quick"}, "dynamics": {"knn_k": 10, "set_loss": True, "heads": False}}
    assert fingerprint(off, None, source)["config_sha256"] == fingerprint(before, None, source)["config_sha256"]
    assert fingerprint(on, None, source)["config_sha256"] != fingerprint(before, None, source)["config_sha256"]


def test_the_gpu_jobs_dynamics_are_of_the_gpu10_profile_as_it_is():
    """gpu10's dynamics come from the GPU job's snapshots, which it did not keep: no machine here can
    recompute them, so a change of gpu10's settings that would orphan them must be seen. The committed
    result's configuration hash is that of gpu10's sections now."""
    from clorg.book import chapters
    from clorg.core.config import load_profile

    stored = json.loads((Path(__file__).resolve().parents[1] / "results" / "gpu10" / "dynamics.json").read_text())
    cfg = load_profile("gpu10")
    wanted = fingerprint(cfg, None, Source(chapters.CHAPTERS["07_dynamics"].sections(cfg), ()))
    assert stored["meta"]["fingerprint"]["config_sha256"] == wanted["config_sha256"], (
        "configs/gpu10.yaml's data, train or dynamics sections no longer match the GPU job's dynamics "
        "(results/gpu10/dynamics.json): they cannot be recomputed without a GPU")


# what the GPU job computed from states it did not keep (its runs' training, the dynamics over its snapshots):
# no machine here recomputes them, so they stay marked as older code until the next GPU job
GPU_ONLY_RESULTS = ("training", "dynamics")


def test_gpu10s_results_computed_on_a_cpu_are_current_with_the_code():
    """A change to a versioned module marks every stored result whose chapter imports it as computed by older
    code. For gpu10's committed results, which the book shows as they are, that change must come with the
    recomputed results, or be plumbing that computes no number (clorg.core.code.NOT_VERSIONED): ec6a797 marked
    all of them, a change to how commands are printed, and nothing saw it."""
    from clorg.book import chapters
    from clorg.core import code

    by_result = {name: c for c in chapters.CHAPTERS.values() for name in c.produces}
    folder = Path(__file__).resolve().parents[1] / "results" / "gpu10"
    checked, stale = [], {}
    for path in sorted(folder.glob("*.json")):
        chapter = by_result.get(path.stem)
        if chapter is None or path.stem in GPU_ONLY_RESULTS:
            continue
        recorded = json.loads(path.read_text())["meta"]["fingerprint"]["code"]
        checked.append(path.stem)
        if changed := code.changed_files(recorded, code.code_version(chapter.code)):
            stale[f"{path.name} ({chapter.stem})"] = changed
    assert {"embeddings", "geometry", "tsne_purity", "classifiers", "near_duplicates"} <= set(checked)
    assert not stale, (
        f"committed gpu10 results are now marked as computed by older code: {stale}. Recompute them from the "
        f"committed weights (python -m clorg.book --profile gpu10 --allow-cpu --only <chapter>), or, where the "
        f"changed module computes no number, add it to clorg.core.code.NOT_VERSIONED")


def test_the_commit_is_dirty_for_changed_code_not_for_changed_outputs(tmp_path, monkeypatch):
    """A chapter that stores two results saves them one after another: the first, not yet committed, must not
    mark the second as computed by uncommitted code. Changed code still does."""
    import subprocess

    from clorg.core import provenance

    monkeypatch.delenv("CLORG_COMMIT", raising=False)

    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    for name in ("results/gpu10/a.json", "weights/gpu10/b.json", "lib/code.py"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("1")
    git("init", "-q")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x")
    head = provenance.git_commit(tmp_path)
    assert len(head) == 40 and not head.endswith("+dirty")
    (tmp_path / "results/gpu10/a.json").write_text("2")
    (tmp_path / "weights/gpu10/b.json").write_text("2")
    assert provenance.git_commit(tmp_path) == head
    (tmp_path / "lib/code.py").write_text("2")
    assert provenance.git_commit(tmp_path) == head + "+dirty"
