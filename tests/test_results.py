"""The results store and the kNN table."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import torch

from clorg.knn import knn_accuracy, knn_table
from clorg.results import load_json, save_json


def test_save_and_load_json_with_numpy_values(tmp_path):
    path = save_json("smoke", "x", {"a": np.float32(0.5), "b": np.arange(3), "c": {1: np.int64(2)}}, root=tmp_path)
    assert path == tmp_path / "smoke" / "x.json"
    assert load_json("smoke", "x", root=tmp_path) == {"a": 0.5, "b": [0, 1, 2], "c": {"1": 2}}
    assert load_json("smoke", "missing", root=tmp_path) is None


def test_knn_table_and_tie_rule():
    bank = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    labels = torch.tensor([0, 0, 1, 1])
    queries = torch.tensor([[0.9, 0.1], [0.1, 0.9]])
    assert knn_accuracy(bank, labels, queries, torch.tensor([0, 1]), k=2) == 1.0
    # k = 4 sees two of each class: the tie goes to the smaller class index
    assert knn_accuracy(bank, labels, queries, torch.tensor([0, 0]), k=4) == 1.0
    f = SimpleNamespace(train=bank.numpy(), train_labels=labels.numpy(), test=queries.numpy(),
                        test_labels=np.array([0, 1]))
    table = knn_table({"toy": f}, ks=(1, 2))
    assert table.loc["toy", "kNN k=1"] == 1.0 and list(table.columns) == ["kNN k=1", "kNN k=2"]


# ============================================ cached results ==========================================

import json  # noqa: E402

import pytest  # noqa: E402

from clorg.results import ResultsMismatch, cached, cached_arrays, fingerprint  # noqa: E402


class _Data:
    def __init__(self, sha="a" * 64, name="cifar10", skipped=()):
        self.sha, self.name, self.skipped = sha, name, list(skipped)

    def summary(self):
        return {"name": self.name, "source": "x", "sha256": self.sha, "train_images": 10, "test_images": 4,
                "skipped": self.skipped, "notes": []}


def _cfg(profile="quick", **metrics):
    return {"profile": {"name": profile, "description": "d"}, "metrics": {"chi_ks": [1, 10], **metrics}}


def test_cached_computes_once_then_reads(tmp_path, capsys):
    calls = []

    def compute():
        calls.append(1)
        return {"ch": np.float64(2.5), "table": {"a": np.arange(2)}}

    first = cached(_cfg(), _Data(), "geometry", compute, producer="nb04", root=tmp_path)
    second = cached(_cfg(), _Data(skipped=[("fashion-mnist", "missing here")]), "geometry", compute,
                    producer="nb04", root=tmp_path)
    assert first == second == {"ch": 2.5, "table": {"a": [0, 1]}} and len(calls) == 1
    assert "read results/quick/geometry.json" in capsys.readouterr().out
    entry = json.loads((tmp_path / "quick" / "geometry.json").read_text())
    assert entry["meta"]["fingerprint"] == fingerprint(_cfg(), _Data())
    assert {"saved_at", "commit", "hardware", "compute_seconds"} <= set(entry["meta"])
    cached(_cfg(), _Data(), "geometry", compute, producer="nb04", recompute=True, root=tmp_path)
    assert len(calls) == 2


def test_cached_recomputes_after_a_configuration_change(tmp_path, capsys):
    cached(_cfg(), _Data(), "g", lambda: {"v": 1}, producer="nb04", root=tmp_path)
    assert cached(_cfg(chi_ks=[1, 5]), _Data(), "g", lambda: {"v": 2}, producer="nb04", root=tmp_path) == {"v": 2}
    assert "another configuration" in capsys.readouterr().out
    assert cached(_cfg(chi_ks=[1, 5]), _Data(), "g", lambda: {"v": 3}, producer="nb04", root=tmp_path) == {"v": 2}


def test_results_of_another_dataset_or_profile_are_an_error(tmp_path):
    cached(_cfg(), _Data(), "g", lambda: {"v": 1}, producer="notebooks/04_metrics.ipynb", root=tmp_path)
    with pytest.raises(ResultsMismatch, match=r"dataset .*notebooks/04_metrics.ipynb"):
        cached(_cfg(), _Data(sha="b" * 64), "g", lambda: {"v": 2}, producer="notebooks/04_metrics.ipynb",
               root=tmp_path)
    # a folder copied from another profile
    (tmp_path / "smoke").mkdir()
    (tmp_path / "smoke" / "g.json").write_text((tmp_path / "quick" / "g.json").read_text())
    with pytest.raises(ResultsMismatch, match="profile 'quick'.*this notebook runs profile 'smoke'"):
        cached(_cfg("smoke"), _Data(), "g", lambda: {"v": 2}, producer="nb04", root=tmp_path)
    (tmp_path / "smoke" / "h.json").write_text("{not json")
    with pytest.raises(ResultsMismatch, match="not a results file"):
        cached(_cfg("smoke"), _Data(), "h", lambda: {"v": 2}, producer="nb04", root=tmp_path)


def test_cached_arrays_round_trip_and_checks(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return {"Y": np.arange(6, dtype=np.float32).reshape(3, 2)}

    a = cached_arrays(_cfg(), _Data(), "tsne", compute, producer="nb05", root=tmp_path)
    b = cached_arrays(_cfg(), _Data(), "tsne", compute, producer="nb05", root=tmp_path)
    assert len(calls) == 1 and np.array_equal(a["Y"], b["Y"]) and b["Y"].dtype == np.float32
    with pytest.raises(ResultsMismatch, match="dataset"):
        cached_arrays(_cfg(), _Data(sha="c" * 64), "tsne", compute, producer="nb05", root=tmp_path)
    (tmp_path / "quick" / "tsne.npz").write_bytes(b"garbage")
    with pytest.raises(ResultsMismatch, match="cannot be read"):
        cached_arrays(_cfg(), _Data(), "tsne", compute, producer="nb05", root=tmp_path)


def test_a_failed_computation_leaves_the_stored_result(tmp_path):
    cached(_cfg(), _Data(), "g", lambda: {"v": 1}, producer="nb04", root=tmp_path)

    def broken():
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        cached(_cfg(), _Data(), "g", broken, producer="nb04", recompute=True, root=tmp_path)
    assert cached(_cfg(), _Data(), "g", lambda: {"v": 2}, producer="nb04", root=tmp_path) == {"v": 1}
    assert [p.name for p in (tmp_path / "quick").iterdir()] == ["g.json"]


def test_a_result_without_data_is_stored_and_read(tmp_path):
    assert cached(_cfg(), None, "toy", lambda: {"v": 1}, producer="nb01", root=tmp_path) == {"v": 1}
    assert cached(_cfg(), None, "toy", lambda: {"v": 2}, producer="nb01", root=tmp_path) == {"v": 1}
    assert fingerprint(_cfg(), None)["data"] is None


def test_results_of_an_older_format_are_recomputed(tmp_path, monkeypatch, capsys):
    from clorg import results

    cached(_cfg(), _Data(), "g", lambda: {"v": 1}, producer="nb04", root=tmp_path)
    cached_arrays(_cfg(), _Data(), "a", lambda: {"Y": np.zeros(2)}, producer="nb05", root=tmp_path)
    monkeypatch.setattr(results, "FORMAT", results.FORMAT + 1)
    assert cached(_cfg(), _Data(), "g", lambda: {"v": 2}, producer="nb04", root=tmp_path) == {"v": 2}
    assert cached_arrays(_cfg(), _Data(), "a", lambda: {"Y": np.ones(2)}, producer="nb05",
                         root=tmp_path)["Y"].tolist() == [1.0, 1.0]
    assert "older code" in capsys.readouterr().out
