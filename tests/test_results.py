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
