"""clorg.book.compare on hand-written results folders: what it must find and what it must not."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from clorg.book.compare import Uncomparable, compare, report

ROOT = Path(__file__).resolve().parents[1]


def _write(folder: Path, records: list[dict], *, meta: dict, extra: dict | None = None, tsne=None) -> Path:
    """One profile's results folder (named by ``meta``'s variant) with a classifiers.json and a t-SNE npz."""
    out = folder / f"quick+{meta['variant']}"
    out.mkdir(parents=True)
    body = {"meta": meta, "result": {"records": records, "runs": [{"commit": meta["commit"], "train_seconds": 3.0,
                                                                  "final_loss": 1.25}], **(extra or {})}}
    (out / "classifiers.json").write_text(json.dumps(body))
    np.savez(out / "tsne.npz", coords=np.arange(6.0).reshape(3, 2) if tsne is None else tsne,
             __meta__=np.array(json.dumps(meta)))
    return folder


RECORDS = [{"metric": "linear_test_accuracy", "seed": 0, "value": 0.5},
           {"metric": "linear_test_accuracy", "seed": 1, "value": 0.52},
           {"metric": "gcn_test_accuracy", "seed": 0, "value": float("nan")}]


def test_provenance_differs_and_records_reordered_still_the_same(tmp_path):
    before = _write(tmp_path / "a", RECORDS, meta={"variant": "x1", "commit": "aaa", "saved_at": "monday"})
    after = _write(tmp_path / "b", RECORDS[::-1], meta={"variant": "x2", "commit": "bbb", "saved_at": "tuesday"})
    found = compare(before, after)
    # 3 records + final_loss + the coordinates array: the commits, times and meta blocks are not compared
    assert found.compared == 5
    assert found.same and "every value compared is the same" in report(found)


def test_a_changed_record_a_changed_array_and_a_renamed_key_are_reported(tmp_path):
    changed = [dict(r) for r in RECORDS]
    changed[1]["value"] = 0.53
    before = _write(tmp_path / "a", RECORDS, meta={"variant": "x", "commit": "a"}, extra={"mean z": 1.0})
    after = _write(tmp_path / "b", changed, meta={"variant": "x", "commit": "a"}, extra={"mean_z": 1.0},
                   tsne=np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 5.5]]))
    found = compare(before, after)
    assert [(where, x, y) for where, x, y in found.changed if "records" in where] == [
        ("classifiers.json/result/records[metric=linear_test_accuracy,seed=1]", 0.52, 0.53)]
    assert [where for where, _, _ in found.changed if "records" not in where] == ["tsne.npz:coords"]
    assert found.only_before == ["classifiers.json/result/mean z"]
    assert found.only_after == ["classifiers.json/result/mean_z"]
    text = report(found)
    assert "differ: 2" in text and "| 0.52 | 0.53 |" in text and "- classifiers.json/result/mean_z" in text


def test_records_that_measure_alike_are_each_compared(tmp_path):
    twice = [{"metric": "loss", "value": 1.0}, {"metric": "loss", "value": 2.0}]
    before = _write(tmp_path / "a", twice, meta={"variant": "x", "commit": "a"})
    after = _write(tmp_path / "b", [twice[0], {"metric": "loss", "value": 2.5}], meta={"variant": "x", "commit": "a"})
    assert compare(before, after).changed == [("classifiers.json/result/records[metric=loss]#2", 2.0, 2.5)]


def test_an_int_that_became_a_float_is_a_difference(tmp_path):
    before = _write(tmp_path / "a", [{"metric": "steps", "value": 81}], meta={"variant": "x", "commit": "a"})
    after = _write(tmp_path / "b", [{"metric": "steps", "value": 81.0}], meta={"variant": "x", "commit": "a"})
    assert [w for w, _, _ in compare(before, after).changed] == ["classifiers.json/result/records[metric=steps]"]


def test_checkpoints_by_their_bytes(tmp_path):
    results = _write(tmp_path / "r", RECORDS, meta={"variant": "x", "commit": "a"})
    runs = []
    for name, last in (("a", b"\x00\x01"), ("b", b"\x00\x02")):
        folder = tmp_path / f"runs-{name}" / "quick" / "resnet18-moco_queue-0123" / "checkpoints"
        folder.mkdir(parents=True)
        (folder / "encoder_e0000.pt").write_bytes(b"same")
        (folder / "last.pt").write_bytes(last)
        runs.append(tmp_path / f"runs-{name}")
    (runs[1] / "quick" / "resnet18-moco_queue-0123" / "checkpoints" / "encoder_e0005.pt").write_bytes(b"new")
    found = compare(results, results, tuple(runs))
    assert found.checkpoints_compared == 2
    assert found.checkpoints == [("quick/resnet18-moco_queue-0123/checkpoints/encoder_e0005.pt", "after only"),
                                 ("quick/resnet18-moco_queue-0123/checkpoints/last.pt", "other bytes")]


def test_the_command_exits_by_what_it_found(tmp_path):
    same = _write(tmp_path / "a", RECORDS, meta={"variant": "x", "commit": "a"})
    other = _write(tmp_path / "b", RECORDS[:1], meta={"variant": "x", "commit": "a"})
    run = lambda *args: subprocess.run([sys.executable, "ci/compare_results.py", *map(str, args)], cwd=ROOT,
                                       capture_output=True, text=True)
    assert run(same, same).returncode == 0
    differs = run(same, other)
    assert differs.returncode == 1 and "before only: 2" in differs.stdout
    missing = run(same, tmp_path / "nosuch")
    assert missing.returncode == 2 and "is not a folder" in missing.stderr


def test_a_missing_folder_is_named(tmp_path):
    with pytest.raises(Uncomparable, match="nosuch is not a folder"):
        compare(tmp_path, tmp_path / "nosuch")


def test_nothing_to_compare_is_no_pass(tmp_path):
    """Two empty folders (a mistyped path, a build that wrote elsewhere) must not read as "the same"."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with pytest.raises(Uncomparable, match="holds no stored result"):
        compare(tmp_path / "a", tmp_path / "b")


def test_an_unreadable_file_is_named_and_exits_2(tmp_path):
    good = _write(tmp_path / "a", RECORDS, meta={"variant": "x", "commit": "a"})
    bad = _write(tmp_path / "b", RECORDS, meta={"variant": "x", "commit": "a"})
    (bad / "quick+x" / "classifiers.json").write_text('{"meta": {}, "result": {"records": [')  # cut short
    done = subprocess.run([sys.executable, "ci/compare_results.py", str(good), str(bad)], cwd=ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 2 and "classifiers.json cannot be read (JSONDecodeError" in done.stderr


def test_a_claim_condition_that_flips_is_a_changed_value(tmp_path):
    """A dict with a value beyond a record's fields (a claim's condition): its other fields are values too."""
    condition = {"metric": "D", "value": 0.21, "threshold": 0.2, "holds": True}
    before = _write(tmp_path / "a", [condition], meta={"variant": "x", "commit": "a"})
    after = _write(tmp_path / "b", [{**condition, "value": 0.19, "holds": False}], meta={"variant": "x", "commit": "a"})
    found = compare(before, after)
    assert found.changed == [("classifiers.json/result/records[metric=D]", 0.21, 0.19),
                             ("classifiers.json/result/records[metric=D]/holds", True, False)]
    assert not found.only_before and not found.only_after


def test_builds_on_different_data_are_not_compared(tmp_path):
    """Numbers computed on another dataset (or another copy of it) differ for a reason that is not the code."""
    def meta(sha):
        return {"variant": "x", "commit": "a", "fingerprint": {"profile": {}, "data": {"name": "cifar10", "sha256": sha}}}
    same = compare(_write(tmp_path / "a", RECORDS, meta=meta("1" * 64)), _write(tmp_path / "b", RECORDS, meta=meta("1" * 64)))
    assert same.same and "before: " in report(same) and "(data: cifar10 (sha256 111111111111))" in report(same)
    with pytest.raises(Uncomparable, match=r"different data: before cifar10 \(sha256 111111111111\), "
                                           r"after cifar10 \(sha256 222222222222\)"):
        compare(tmp_path / "a", _write(tmp_path / "c", RECORDS, meta=meta("2" * 64)))


def test_two_summaries_that_differ_in_their_date_and_time_alone_are_the_same(tmp_path):
    """summary.json's ``written`` and ``build_seconds`` say when and how fast, not what: two builds whose
    verdicts agree compare the same; a verdict that differs does not."""
    base = {"profile": "smoke", "dataset": "cifar10", "encoders": [], "spec_version": 2,
            "claims": [{"claim": 1, "verdict": "reproduced", "deciding": "D(CL) 0.3"}]}
    for side, written, seconds in (("a", "2026-12-04 09:30 UTC", 100.0), ("b", "2026-12-06 10:00 UTC", 120.5)):
        (tmp_path / side).mkdir()
        (tmp_path / side / "summary.json").write_text(json.dumps({**base, "written": written, "build_seconds": seconds}))
    assert compare(tmp_path / "a", tmp_path / "b").same
    (tmp_path / "b" / "summary.json").write_text(json.dumps(
        {**base, "claims": [{"claim": 1, "verdict": "not reproduced", "deciding": "D(CL) 0.1"}]}))
    assert not compare(tmp_path / "a", tmp_path / "b").same
