"""k-nearest-neighbour classification by cosine similarity: the standard quick probe of an encoder.

The training features are the memory bank and the test features the queries; a query takes the
majority class of its k most similar training features (a tie goes to the smaller class index).
"""

from __future__ import annotations

import torch


def knn_predict(bank: torch.Tensor, bank_labels: torch.Tensor, queries: torch.Tensor, k: int = 10,
                block: int = 1024) -> torch.Tensor:
    """Predicted labels of ``queries``; ``bank`` and ``queries`` are L2-normalised rows."""
    if not 1 <= k <= len(bank):
        raise ValueError(f"k must be in [1, {len(bank)}] (the memory bank's size), got {k}")
    num_classes = int(bank_labels.max()) + 1
    out = []
    for start in range(0, len(queries), block):
        sims = queries[start:start + block] @ bank.T
        nearest = sims.topk(k, dim=1).indices
        votes = torch.nn.functional.one_hot(bank_labels[nearest], num_classes).sum(dim=1)
        out.append(votes.argmax(dim=1))  # argmax returns the first maximum: the smaller class wins a tie
    return torch.cat(out)


def knn_accuracy(bank, bank_labels, queries, query_labels, k: int = 10) -> float:
    pred = knn_predict(bank, bank_labels, queries, k)
    return float((pred == query_labels.to(pred.device)).float().mean())


def knn_table(features: dict, ks=(10, 200)):
    """kNN test accuracy for each named feature set (objects with train, train_labels, test, test_labels)."""
    import pandas as pd

    rows = []
    for name, f in features.items():
        bank, queries = torch.as_tensor(f.train), torch.as_tensor(f.test)
        bank_y, query_y = torch.as_tensor(f.train_labels), torch.as_tensor(f.test_labels)
        rows.append({"features": name, **{f"kNN k={k}": knn_accuracy(bank, bank_y, queries, query_y, k) for k in ks}})
    return pd.DataFrame(rows).set_index("features")
