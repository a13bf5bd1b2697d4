"""The numbers each claim reads, taken from hand-made stored results (clorg.book.evidence): which epoch of
which run, the random initialisation, k_max, the primary encoder, the GCN temperature chosen on
validation, and the interval from stored predictions."""

from __future__ import annotations

import numpy as np
import pytest

from clorg.analysis import records as R
from clorg.analysis.classify import prediction_record
from clorg.book import evidence as E
from factories import head_records, tidy

CL, SL = "moco_queue", "supervised"


def _geometry(sl_epochs=(40,), encoder="resnet18"):
    recs = tidy(encoder, CL, R.CHI, {1: 0.8, 200: 0.5}, epoch=40) + tidy(encoder, CL, R.CH, 100.0, epoch=40)
    for e in sl_epochs:  # SL's CHI(200) tells the epochs apart: 0.9 at epoch 120, 0.95 elsewhere
        recs += tidy(encoder, SL, R.CHI, {1: 0.99, 200: 0.9 if e == 120 else 0.95}, epoch=e)
        recs += tidy(encoder, SL, R.CH, float(e), epoch=e)
    recs += tidy(encoder, CL, R.CHI, {1: 0.4, 200: 0.2}, epoch=0) + tidy(encoder, CL, R.CH, 7.0, epoch=0)
    return {"records": recs, "class_size": 1000}


def test_claim1_reads_k_max_from_the_class_size_and_each_run_at_its_epoch():
    (n,) = E.claim1(_geometry())
    assert n["k_max"] == 200  # 0.2 of 1,000
    assert (n["chi1_cl"], n["chik_cl"], n["chi1_sl"], n["chik_sl"]) == (0.8, 0.5, 0.99, 0.95)
    assert (n["chi1_ri"], n["chik_ri"]) == (0.4, 0.2) and n["epochs"] == {"CL": 40, "SL": 40}
    assert n["runs"] == [("resnet18", CL), ("resnet18", SL)]


def test_supervised_resnet18_is_read_at_the_authors_epoch_120():
    (n,) = E.claim2(_geometry(sl_epochs=(120, 600)))
    assert n["ch_sl"] == 120.0 and n["epochs"]["SL"] == 120 and n["ch_ri"] == 7.0
    assert E.claim1(_geometry(sl_epochs=(120, 600)))[0]["chik_sl"] == 0.9
    # a run of 600 epochs without a snapshot at 120 has no number: never another epoch in its place
    assert E.claim2(_geometry(sl_epochs=(600,)))[0]["ch_sl"] is None
    # the ViT's supervised run is analysed at 600
    assert E.claim2(_geometry(sl_epochs=(120, 600), encoder="vit"))[0]["ch_sl"] == 600.0


def test_an_encoder_without_its_supervised_run_stays_with_its_sl_numbers_absent():
    """A claim holds for every encoder (SPEC 7): an encoder whose supervised records are missing is compared
    with nothing rather than left out, so the claim is inconclusive, not judged on the other encoders alone;
    records without any supervised run compare nothing (the report says "not comparable")."""
    from clorg.book.claims import INCONCLUSIVE, judge_claim2

    geo = {"records": tidy("vit", CL, R.CH, 1.0, epoch=40) + tidy("resnet18", SL, R.CH, 2.0, epoch=40),
           "class_size": 100}
    (n,) = E.claim2(geo)
    assert (n["encoder"], n["ch_cl"], n["ch_sl"]) == ("vit", 1.0, None)
    assert judge_claim2(n)["verdict"] == INCONCLUSIVE
    assert E.claim2({**geo, "records": tidy("vit", CL, R.CH, 1.0, epoch=40)}) == []
    assert E.claim1({**geo, "records": []}) == []


def test_claim3_reads_the_paper_temperatures():
    recs = (tidy("vit", CL, R.RLD, {1.0: 0.01, 0.1: 0.5}, epoch=40) + tidy("vit", SL, R.RLD, {1.0: 0.3, 0.1: 0.8}, epoch=40)
            + tidy("vit", CL, R.RLD, {1.0: 0.02, 0.1: 0.12}, epoch=0))
    (n,) = E.claim3({"records": recs})
    assert (n["rld_local_cl"], n["rld_global_cl"], n["rld_global_sl"], n["rld_local_ri"], n["rld_global_ri"]) == \
        (0.5, 0.01, 0.3, 0.12, 0.02)
    # a profile without T = 0.1 leaves the number absent (the claim is then inconclusive)
    (m,) = E.claim3({"records": [r for r in recs if r["parameter"] != 0.1]})
    assert m["rld_local_cl"] is None


def _classifiers(labels):
    """CL: the GCN at T = 0.2 has the better validation accuracy (0.9 against 0.7) but the worse test
    accuracy; the interval must be the one of T = 0.2."""
    recs = head_records("vit", CL, "linear", [0.5, 0.5], authors=0.6, parameters=5130, epoch=40)
    recs += head_records("vit", CL, "gcn", [0.9, 0.9], val=0.7, parameter=0.1, authors=0.95, parameters=652, epoch=40)
    recs += head_records("vit", CL, "gcn", [0.75, 0.75], val=0.9, parameter=0.2, authors=0.8, parameters=652, epoch=40)
    recs += head_records("vit", SL, "linear", [0.8, 0.8], authors=0.8, parameters=5130, epoch=40)
    recs += head_records("vit", SL, "gcn", [0.7, 0.7], val=0.8, parameter=0.1, authors=0.7, parameters=652, epoch=40)
    ident = {"encoder": "vit", "method": CL, "schedule": "cosine", "epoch": 40}
    right, wrong = labels, (labels + 1) % 4
    n = len(labels)
    preds = []
    for seed in (0, 1):  # linear right on the first half; GCN T=0.2 right on the first 3/4; GCN T=0.1 everywhere
        preds.append(prediction_record(ident, "linear", None, seed, np.where(np.arange(n) < n // 2, right, wrong)))
        preds.append(prediction_record(ident, "gcn", 0.2, seed, np.where(np.arange(n) < 3 * n // 4, right, wrong)))
        preds.append(prediction_record(ident, "gcn", 0.1, seed, right))
    return {"records": recs, "predictions": preds, "test_labels": labels.tolist()}


def test_claim4_uses_the_temperature_chosen_on_validation_and_the_stored_predictions():
    labels = np.arange(400) % 4
    (n,) = E.claim4(_classifiers(labels))
    assert n["temperature"] == 0.2
    # paired differences: +1 on the images 200-299 (GCN right, linear wrong), 0 elsewhere: gain 0.25
    assert n["gain"] == pytest.approx(0.25) and 0 < n["low"] < 0.25 < n["high"] < 0.35
    assert n["gain_authors_protocol"] == pytest.approx(0.2) and n["parameter_ratio"] == pytest.approx(5130 / 652)
    assert n["gain_sl"] == pytest.approx(-0.1) and (n["seeds"], n["images"]) == (2, 400)
    assert n["gain_sl_low"] is None and n["gain_sl_high"] is None  # no SL predictions stored: no interval
    # with them, G on SL gets its own paired interval: linear right on 80 % of the images, the GCN on 70 %
    res = _classifiers(labels)
    ident = {"encoder": "vit", "method": SL, "schedule": "cosine", "epoch": 40}
    for seed in (0, 1):
        for head, t, share in (("linear", None, 0.8), ("gcn", 0.1, 0.7)):
            res["predictions"].append(prediction_record(ident, head, t, seed, np.where(
                np.arange(400) < share * 400, labels, (labels + 1) % 4)))
    (n,) = E.claim4(res)
    assert n["gain_sl"] == pytest.approx(-0.1) and -0.2 < n["gain_sl_low"] < -0.1 < n["gain_sl_high"] < 0


def test_claim4_without_stored_predictions_has_no_interval():
    res = _classifiers(np.arange(40) % 4)
    (n,) = E.claim4({**res, "predictions": []})
    assert n["low"] is None and n["high"] is None and n["gain"] == pytest.approx(0.25)


def test_claim5_reads_the_smallest_and_largest_perplexity():
    recs = []
    for method, (lo, hi) in ((CL, (0.7, 0.3)), (SL, (0.9, 0.85))):
        recs += tidy("vit", method, R.MAP_PURITY, {5.0: lo, 500.0: 0.5, 4980.0: hi}, epoch=40)
        recs += tidy("vit", method, R.MAP_PURITY_WIDE, {5.0: lo - 0.1, 500.0: 0.4, 4980.0: hi - 0.1}, epoch=40)
    (n,) = E.claim5({"records": recs, "classes": 10})
    assert (n["p_min_cl"], n["p_max_cl"], n["p_min_sl"], n["p_max_sl"], n["chance"]) == (0.7, 0.3, 0.9, 0.85, 0.1)
    assert n["wide_min_cl"] == pytest.approx(0.6) and n["perplexities"] == [5.0, 4980.0]


def test_claim5_with_one_perplexity_has_no_largest_and_is_inconclusive():
    """One map is no smallest and largest perplexity: read as both, (a) held and (b) failed by construction, a
    "not reproduced" no second map decided (SPEC 7 reads two perplexities)."""
    from clorg.book.claims import INCONCLUSIVE, judge_claim5

    recs = []
    for method, purity in ((CL, 0.7), (SL, 0.9)):
        recs += tidy("vit", method, R.MAP_PURITY, {5.0: purity}, epoch=40)
        recs += tidy("vit", method, R.MAP_PURITY_WIDE, {5.0: purity - 0.1}, epoch=40)
    (n,) = E.claim5({"records": recs, "classes": 10})
    assert (n["p_min_cl"], n["p_min_sl"]) == (0.7, 0.9) and n["perplexities"] == [5.0, 5.0]
    assert n["p_max_cl"] is None and n["p_max_sl"] is None and n["wide_max_cl"] is None
    assert judge_claim5(n)["verdict"] == INCONCLUSIVE


def _near(encoder, cl, sl, median):
    return {"encoder": encoder, "method": CL, "schedule": "cosine", "epoch": 40,
            "reference": {"encoder": encoder, "method": SL, "schedule": "cosine", "epoch": 40},
            "cl_cosines": cl, "sl_cosines": sl, "pairs": [{"i": 0, "j": 1}],
            "baseline": {"sl_median": median, "sl_mean": median, "cl_mean": 0.1, "pairs": 10, "sl_share_nonpositive": 0.2}}


def test_claim6_reads_the_single_top_pair_and_puts_resnet101_first():
    res = {"comparisons": [_near("resnet18", [0.97, 0.995, 0.98], [0.5, 0.05, -0.3], 0.1),
                           _near("resnet101", [0.999], [0.2], 0.1)]}
    first, second = E.claim6(res)
    assert first["encoder"] == "resnet101" and (first["cos_cl"], first["cos_sl"]) == (0.999, 0.2)
    assert (second["cos_cl"], second["cos_sl"], second["sl_median"]) == (0.995, 0.05, 0.1)
    # beside: of the 3 searched pairs, SL cosines 0.5, 0.05, -0.3 against the median 0.1: two at or below it
    assert second["searched"] == 3 and second["share_at_or_below_median"] == pytest.approx(2 / 3)


def _followed(schedules):
    recs = []
    for schedule, ch in schedules:
        for e, v, r, c1, knn in zip((0, 5, 10), ch, (0.1, 0.2, 0.45), (0.5, 0.7, 0.85), (0.6, 0.75, 0.82)):
            recs += tidy("resnet18", CL, R.CH, v, epoch=e, schedule=schedule)
            recs += tidy("resnet18", CL, R.RLD, {0.1: r, 1.0: 0.01}, epoch=e, schedule=schedule)
            recs += tidy("resnet18", CL, R.CHI, {1: c1, 200: c1 - 0.3}, epoch=e, schedule=schedule)
            recs += tidy("resnet18", CL, R.KNN, {10: knn}, epoch=e, schedule=schedule)
    return {"records": recs}


def test_dynamics_puts_the_run_under_the_authors_curve_first_and_counts_epoch_zero_in_the_maximum():
    """Claim D is decided by the run closer to the authors (their rising curve) where the profile follows one
    (issue 24's default); that run's regime is its own, the main run's is chapter 04's."""
    res = _followed([("cosine", [400.0, 450.0, 420.0]), ("paper-compressed", [500.0, 300.0, 100.0])])
    first, second = E.dynamics(res, "cosine", ("resnet18", CL, "paper-compressed"))
    assert first["schedule"] == "paper-compressed" and first["runs"] == [("resnet18", CL, "paper-compressed")]
    assert first["ch_max"] == 500.0 and first["epochs"] == {"CL": 10}
    assert second["runs"] == [("resnet18", CL)]
    assert (second["ch_max"], second["ch_last"], second["rld_first"], second["rld_last"]) == (450.0, 420.0, 0.1, 0.45)
    # the control alone (a cosine of another peak) is not the authors' curve: the profile's schedule decides
    first, _ = E.dynamics(_followed([("cosine-authors-peak", [500.0, 300.0, 100.0]), ("cosine", [1.0, 2.0, 3.0])]),
                          "cosine", ("resnet18", CL, "cosine"))
    assert first["schedule"] == "cosine"
    # whatever the records' order: the profile's own authors' curve, else the literal one before the compressed
    assert E.judged_schedule(["paper-compressed", "paper-literal"], "cosine") == "paper-literal"
    assert E.judged_schedule(["paper-compressed", "cosine"], "paper-literal") == "paper-literal"
    assert E.judged_schedule(["cosine-authors-peak"], "cosine") == "cosine"


def test_dynamics_with_a_nan_snapshot_has_no_maximum():
    """max() passes over a NaN after the first value (and returns it when first): the maximum is unknown, and
    claim D inconclusive rather than judged on the other snapshots."""
    from clorg.book.claims import INCONCLUSIVE, judge_dynamics

    for ch in ([400.0, float("nan"), 100.0], [float("nan"), 450.0, 100.0]):
        (n,) = E.dynamics(_followed([("cosine", ch)]), "cosine", ("resnet18", CL, "cosine"))
        assert n["ch_max"] is None and n["ch_last"] == 100.0
        assert judge_dynamics(n)["verdict"] == INCONCLUSIVE
    (n,) = E.dynamics(_followed([("cosine", [400.0, 450.0, 100.0])]), "cosine", ("resnet18", CL, "cosine"))
    assert n["ch_max"] == 450.0


def test_variant_regimes_gate_each_other_schedule_at_its_last_snapshot():
    res = _followed([("cosine", [400.0, 450.0, 420.0]), ("paper-compressed", [500.0, 300.0, 100.0])])
    (row,) = E.variant_regimes(res, "cosine")
    assert (row["schedule"], row["epoch"], row["chi1"], row["knn"], row["kind"]) == (
        "paper-compressed", 10, 0.85, 0.82, "contrastive")
    assert E.variant_regimes(None, "cosine") == []


def test_regime_reads_knn_at_the_epoch_the_claims_read():
    geo = _geometry(sl_epochs=(120, 600))
    knn = (tidy("resnet18", SL, R.KNN, {10: 0.7}, epoch=600) + tidy("resnet18", SL, R.KNN, {10: 0.85}, epoch=120)
           + tidy("resnet18", CL, R.KNN, {10: 0.6, 200: 0.5}, epoch=40))
    rows = {r["method"]: r for r in E.regime(geo, {"records": knn})}
    assert (rows[SL]["epoch"], rows[SL]["chi1"], rows[SL]["knn"], rows[SL]["kind"]) == (120, 0.99, 0.85, "supervised")
    assert (rows[CL]["knn"], rows[CL]["kind"]) == (0.6, "contrastive")
    assert E.regime(None, None) == [] and E.regime(geo, None)[0]["knn"] is None
