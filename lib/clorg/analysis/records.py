"""Results as tidy records: one number per record, with the fields that say what it is.

    {"encoder": "resnet18", "method": "moco_queue", "schedule": "cosine", "epoch": 20,
     "metric": "RLD", "parameter": 0.1, "value": 0.24, "seed": None}

Every chapter stores its numbers this way and every reader selects them by field (:func:`select`,
:func:`value`), so no code builds a name like "RLD T=0.1" to take it apart later; labels are made only
where something is shown (the figures and the report). ``parameter`` is the metric's knob (T for RLD
and the GCN, k for CHI and kNN, the graph for the GCN comparison) or None; ``seed`` is the seed of a
trained head, or None.

The metric vocabulary, written once:
"""

from __future__ import annotations

import math

import pandas as pd

FIELDS = ("encoder", "method", "schedule", "epoch", "metric", "parameter", "value", "seed")

CH = "CH"                  # Calinski-Harabasz score
RLD = "RLD"                # parameter: temperature T
CHI = "CHI"                # parameter: k
KNN = "knn_accuracy"       # parameter: k; majority vote of the k most similar training images (cosine)
LR = "learning_rate"       # the learning rate at the start of the epoch (dynamics)
SET_LOSS = "contrastive_loss_whole_set"  # the authors' Losseval: InfoNCE over all training images at once (dynamics)
MAP_PURITY = "map_purity"  # CHI of a 2-D t-SNE map; parameter: perplexity
MAP_PURITY_WIDE = "map_purity_wide"  # the same at a large k (global separation); parameter: perplexity
# classifier heads: per head ("linear", "gcn", "label_spreading") and quantity
HEADS = ("linear", "gcn", "label_spreading")
TEST = "test_accuracy"           # honest protocol: validation-selected, test scored once (per seed)
VALIDATION = "val_accuracy"      # accuracy on the validation split (per seed)
AUTHORS = "authors_accuracy"     # the authors' protocol: best test accuracy over the training steps
PARAMETERS = "parameters"        # trainable parameters of the head
STEPS = "steps"                  # optimizer steps a fit took (per seed; seed None: the authors'-protocol fit)
CAP_HIT = "step_cap_hit"         # 1 when a fit stopped at its safety cap on steps rather than on patience


def head_metric(head: str, quantity: str) -> str:
    """The metric name of a head's quantity, e.g. ``head_metric("gcn", TEST)`` -> "gcn_test_accuracy"."""
    if head not in HEADS:
        raise ValueError(f"unknown head {head!r}; valid: {list(HEADS)}")
    return f"{head}_{quantity}"


def record(identity: dict, metric: str, value, parameter=None, seed=None) -> dict:
    """One record: ``identity`` gives encoder, method, schedule and epoch (a Features' ``identity``)."""
    out = {k: identity.get(k) for k in ("encoder", "method", "schedule", "epoch")}
    value = float(value) if value is not None else None
    return {**out, "metric": metric, "parameter": parameter, "value": value, "seed": seed}


def _matches(rec: dict, where: dict) -> bool:
    for k, v in where.items():
        got = rec.get(k)
        if isinstance(v, float) and isinstance(got, (int, float)) and got is not None:
            if not math.isclose(got, v, rel_tol=1e-12, abs_tol=1e-12):
                return False
        elif got != v:
            return False
    return True


def select(records: list[dict], **where) -> list[dict]:
    """The records whose fields equal ``where`` (floats compared to rounding)."""
    for k in where:  # up front: a misspelt field is an error even when no record is left to test it on
        if k not in FIELDS:
            raise KeyError(f"records have no field {k!r}; fields: {FIELDS}")
    return [r for r in records if _matches(r, where)]


def value(records: list[dict], **where) -> float | None:
    """The one value matching ``where``; None when there is none; an error when several match."""
    found = select(records, **where)
    if len(found) > 1:
        raise ValueError(f"{len(found)} records match {where}; add fields to pick one")
    return found[0]["value"] if found else None


def parameters(records: list[dict], **where) -> list:
    """The distinct parameters of the matching records, in order of first appearance."""
    out = []
    for r in select(records, **where):
        if r["parameter"] not in out:
            out.append(r["parameter"])
    return out


def frame(records: list[dict]) -> pd.DataFrame:
    """The records as a long table with the columns of :data:`FIELDS`."""
    return pd.DataFrame(records, columns=list(FIELDS))
