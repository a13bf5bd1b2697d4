"""Tidy records (clorg.analysis.records): building one, selecting by field (floats to rounding), one value,
the distinct parameters, the long table, and the errors that keep readers honest."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clorg.analysis import records as R

IDENT = {"encoder": "resnet18", "method": "moco_queue", "schedule": "cosine", "epoch": 20}


def sample():
    sl = {**IDENT, "method": "supervised"}
    return [R.record(IDENT, R.CH, 62.5),
            R.record(IDENT, R.RLD, 0.24, parameter=0.1),
            R.record(IDENT, R.RLD, 0.02, parameter=1.0),
            R.record(IDENT, R.CHI, 0.9, parameter=1),
            R.record(IDENT, R.CHI, 0.5, parameter=100),
            R.record(sl, R.CH, 250.0),
            R.record(sl, R.RLD, 0.5, parameter=0.1),
            R.record(sl, R.head_metric("gcn", R.TEST), 0.8, parameter=0.1, seed=0),
            R.record(sl, R.head_metric("gcn", R.TEST), 0.82, parameter=0.1, seed=1),
            R.record(sl, R.head_metric("gcn", R.TEST), 0.7, parameter=0.2, seed=0)]


# -------------------------------------------------- record -------------------------------------------------

def test_a_record_has_exactly_the_fields():
    r = R.record({**IDENT, "provenance": {"run": "x"}, "extra": 1}, R.RLD, np.float32(0.25), parameter=0.1, seed=3)
    assert list(r) == list(R.FIELDS) == ["encoder", "method", "schedule", "epoch", "metric", "parameter", "value",
                                         "seed"]
    assert r == {**IDENT, "metric": "RLD", "parameter": 0.1, "value": 0.25, "seed": 3}
    assert type(r["value"]) is float  # numpy scalars become plain floats (JSON)
    assert R.record(IDENT, R.CH, 7)["value"] == 7.0 and type(R.record(IDENT, R.CH, 7)["value"]) is float
    assert R.record(IDENT, R.CH, None)["value"] is None
    # missing identity fields are None, not an error (e.g. a run-level record)
    assert R.record({"encoder": "vit"}, R.LR, 0.1) == {"encoder": "vit", "method": None, "schedule": None,
                                                       "epoch": None, "metric": "learning_rate", "parameter": None,
                                                       "value": 0.1, "seed": None}


def test_head_metric_names():
    assert R.head_metric("gcn", R.TEST) == "gcn_test_accuracy"
    assert R.head_metric("linear", R.AUTHORS) == "linear_authors_accuracy"
    assert R.head_metric("label_spreading", R.VALIDATION) == "label_spreading_val_accuracy"
    assert R.head_metric("linear", R.PARAMETERS) == "linear_parameters"
    with pytest.raises(ValueError, match=r"unknown head 'knn'; valid: \['linear', 'gcn', 'label_spreading'\]"):
        R.head_metric("knn", R.TEST)


# -------------------------------------------------- select -------------------------------------------------

def test_select_by_fields():
    recs = sample()
    assert R.select(recs) == recs
    assert [r["value"] for r in R.select(recs, metric=R.RLD)] == [0.24, 0.02, 0.5]
    assert [r["value"] for r in R.select(recs, metric=R.RLD, method="supervised")] == [0.5]
    assert [r["value"] for r in R.select(recs, metric=R.CH, parameter=None)] == [62.5, 250.0]
    assert R.select(recs, metric="nothing") == []
    assert [r["seed"] for r in R.select(recs, metric="gcn_test_accuracy", parameter=0.1)] == [0, 1]


def test_floats_are_compared_to_rounding():
    recs = [R.record(IDENT, R.RLD, 0.3, parameter=0.1 + 0.2), R.record(IDENT, R.RLD, 0.4, parameter=0.2)]
    assert 0.1 + 0.2 != 0.3
    assert [r["value"] for r in R.select(recs, parameter=0.3)] == [0.3]  # 0.30000000000000004 matches 0.3
    assert R.value(recs, parameter=0.3) == 0.3
    assert R.select(recs, parameter=0.3 + 1e-6) == []  # rounding, not a tolerance on the science
    # an integer-valued float parameter matches the int it was stored as, and the other way round
    ks = [R.record(IDENT, R.CHI, 0.9, parameter=10)]
    assert R.select(ks, parameter=10.0) == ks and R.select(ks, parameter=10) == ks
    assert R.select([R.record(IDENT, R.MAP_PURITY, 1.0, parameter=25.0)], parameter=25) != []
    # a float never matches None or a string parameter
    graphs = [R.record(IDENT, "gcn_test_accuracy", 0.5, parameter="dense"), R.record(IDENT, R.CH, 1.0)]
    assert R.select(graphs, parameter=1.0) == []
    assert R.select(graphs, parameter="dense") == graphs[:1]


def test_unknown_field_raises():
    with pytest.raises(KeyError, match=r"records have no field 'temperature'; fields: \('encoder'"):
        R.select(sample(), temperature=0.1)
    with pytest.raises(KeyError, match="no field 'name'"):
        R.value(sample(), name="CL R18")
    with pytest.raises(KeyError, match="no field"):
        R.parameters(sample(), metric=R.RLD, T=0.1)
    with pytest.raises(KeyError, match="no field"):
        R.select([], temperature=0.1)  # checked even when there is nothing to select from
    with pytest.raises(KeyError, match="no field 'T'"):
        R.select(sample(), metric="nothing", T=0.1)  # ... or when an earlier field already rules every record out


# -------------------------------------------------- value --------------------------------------------------

def test_value_is_the_one_match():
    recs = sample()
    assert R.value(recs, metric=R.CH, method="moco_queue") == 62.5
    assert R.value(recs, metric=R.RLD, method="moco_queue", parameter=1.0) == 0.02
    assert R.value(recs, metric=R.RLD, method="moco_queue", parameter=5.0) is None  # none: None
    assert R.value(recs, metric="gcn_test_accuracy", parameter=0.1, seed=1) == 0.82


def test_value_raises_when_several_match():
    with pytest.raises(ValueError, match=r"2 records match \{'metric': 'CH'\}; add fields to pick one"):
        R.value(sample(), metric=R.CH)
    with pytest.raises(ValueError, match="3 records match"):
        R.value(sample(), metric=R.RLD)


# ------------------------------------------------ parameters -----------------------------------------------

def test_parameters_in_order_of_first_appearance():
    recs = sample()
    assert R.parameters(recs, metric=R.RLD) == [0.1, 1.0]
    assert R.parameters(recs, metric=R.RLD, method="supervised") == [0.1]
    assert R.parameters(recs, metric=R.CHI) == [1, 100]
    assert R.parameters(recs, metric=R.CH) == [None]
    assert R.parameters(recs, metric="gcn_test_accuracy") == [0.1, 0.2]  # distinct: two seeds share 0.1
    assert R.parameters(recs, metric="nothing") == []
    assert R.parameters(list(reversed(recs)), metric=R.RLD, method="moco_queue") == [1.0, 0.1]


# -------------------------------------------------- frame --------------------------------------------------

def test_frame_is_the_long_table():
    recs = sample()
    table = R.frame(recs)
    assert isinstance(table, pd.DataFrame) and list(table.columns) == list(R.FIELDS) and len(table) == len(recs)
    row = table.loc[1].to_dict()
    assert {k: row[k] for k in R.FIELDS if k != "seed"} == {k: recs[1][k] for k in R.FIELDS if k != "seed"}
    assert pd.isna(row["seed"]) and table.loc[8, "seed"] == 1  # None is pandas' missing value
    assert table.groupby("method").size().to_dict() == {"moco_queue": 5, "supervised": 5}
    empty = R.frame([])
    assert list(empty.columns) == list(R.FIELDS) and len(empty) == 0
    # fields beyond FIELDS are left out of the table
    assert list(R.frame([{**recs[0], "note": "x"}]).columns) == list(R.FIELDS)
