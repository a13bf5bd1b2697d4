"""The paper's claims as checks on tidy records (clorg.book.claims): each claim holding and failing, on
the paper's parameters and on a profile's others, the verdict over comparisons, and the regime."""

from __future__ import annotations

import pytest

from clorg.analysis import records as R
from clorg.book import claims
from clorg.book.claims import REGIME_CHI1, claim1, claim2, claim3, claim4, claim5, claim6, regime, verdict
from clorg.core import paper
from factories import head_records, tidy

CL, SL = "moco_queue", "supervised"


def _chi(cl: dict, sl: dict, encoder="vit", random: dict | None = None):
    out = tidy(encoder, CL, R.CHI, cl, epoch=1200) + tidy(encoder, SL, R.CHI, sl, epoch=600)
    return out + (tidy(encoder, CL, R.CHI, random, epoch=0) if random else [])


def _paper_chi(cl=paper.CHI_VIT["contrastive"], sl=paper.CHI_VIT["supervised"]):
    return _chi(dict(zip(paper.CHI_KS, cl)), dict(zip(paper.CHI_KS, sl)))


# ================================================ claim 1 ================================================


def test_claim1_holds_on_the_papers_numbers():
    rows = claim1(_paper_chi(), )
    assert len(rows) == 1
    r = rows[0]
    assert (r["claim"], r["encoder"], r["contrastive"], r["holds"]) == (1, "vit", CL, True)
    assert r["drop_cl"] == pytest.approx(0.346) and r["drop_sl"] == pytest.approx(0.002)
    assert r["margin"] == pytest.approx(min(0.346 - 0.2, 0.05 - 0.002))
    assert r["numbers"] == "CHI(1) − CHI(1000): CL 0.346, SL 0.002" and r["noise"] is None
    assert verdict(rows, 1) == "reproduced"


def test_claim1_fails_when_sl_drops_or_cl_does_not():
    sl = list(paper.CHI_VIT["supervised"])
    sl[-1] -= 0.2  # the SL drop of 0.202 breaks it
    rows = claim1(_paper_chi(sl=sl))
    assert rows[0]["holds"] is False and "SL 0.202" in rows[0]["numbers"] and rows[0]["margin"] < 0
    assert verdict(rows, 1) == "not reproduced"
    flat = claim1(_paper_chi(cl=[0.8] * 5))
    assert flat[0]["holds"] is False and "CL 0.000" in flat[0]["numbers"]


def test_claim1_uses_the_profiles_ks_and_ignores_the_random_init():
    rows = claim1(_chi({1: 0.9, 50: 0.6}, {1: 0.99, 50: 0.98}, random={1: 0.5, 50: 0.1}))
    assert len(rows) == 1 and rows[0]["holds"] is True
    assert rows[0]["numbers"] == "CHI(1) − CHI(50): CL 0.300, SL 0.010"


def test_claims_need_a_supervised_run_of_the_same_encoder():
    geo = tidy("vit", CL, R.CHI, {1: 0.9, 10: 0.5}) + tidy("resnet18", SL, R.CHI, {1: 0.99, 10: 0.98})
    geo += tidy("vit", CL, R.CH, 10.0) + tidy("resnet18", SL, R.CH, 900.0)
    assert claim1(geo) == [] and claim2(geo) == []
    assert verdict(claim1(geo), 1) == "not comparable"


# ================================================ claim 2 ================================================


def test_claim2_compares_ch_of_sl_and_cl():
    geo = tidy("vit", CL, R.CH, 100.0) + tidy("vit", SL, R.CH, 900.0) + tidy("vit", CL, R.CH, 5000.0, epoch=0)
    r = claim2(geo)[0]
    assert r["holds"] is True and r["margin"] == pytest.approx(8.0) and r["numbers"] == "CH: SL 900.0, CL 100.0"
    bad = claim2(tidy("vit", CL, R.CH, 1000.0) + tidy("vit", SL, R.CH, 900.0))[0]
    assert bad["holds"] is False and bad["margin"] == pytest.approx(-0.1)
    assert verdict([bad], 2) == "not reproduced"


# ================================================ claim 3 ================================================


def _rld(cl: dict, sl: dict, encoder="vit"):
    return tidy(encoder, CL, R.RLD, cl, epoch=1200) + tidy(encoder, SL, R.RLD, sl, epoch=600)


def test_claim3_holds_when_cl_rld_falls_with_t_and_sl_keeps_it():
    r = claim3(_rld({1.0: 0.01, 0.5: 0.02, 0.2: 0.3, 0.1: 0.5}, {1.0: 0.4, 0.5: 0.5, 0.2: 0.7, 0.1: 0.8}))[0]
    assert r["holds"] is True
    assert r["numbers"].startswith("RLD(0.1)/RLD(1): CL 50.00, SL 2.00")
    assert "RLD(1): CL 0.0100, SL 0.4000" in r["numbers"] and r["deciding"] == "RLD(0.1)/RLD(1): CL 50.00, SL 2.00"


@pytest.mark.parametrize("cl, sl", [
    ({1.0: 0.2, 0.1: 0.5}, {1.0: 0.4, 0.1: 0.8}),    # CL's ratio 2.5 < 3
    ({1.0: 0.01, 0.1: 0.5}, {1.0: 0.01, 0.1: 0.6}),  # SL's ratio 60 above CL's 50
    ({1.0: 0.1, 0.1: 0.5}, {1.0: 0.05, 0.1: 0.06}),  # SL's RLD(1) below CL's
])
def test_claim3_fails_on_each_of_its_three_conditions(cl, sl):
    r = claim3(_rld(cl, sl))[0]
    assert r["holds"] is False and r["margin"] < 0


def test_claim3_uses_the_profiles_temperatures():
    # T = 0.2 and 2 instead of 0.1 and 1: no KeyError, and the numbers say which
    r = claim3(_rld({2.0: 0.01, 0.2: 0.5}, {2.0: 0.4, 0.2: 0.8}))[0]
    assert r["holds"] is True and "RLD(0.2)/RLD(2)" in r["numbers"] and "RLD(2): CL 0.0100" in r["numbers"]
    assert "RLD(0.1)" not in r["numbers"]


# ================================================ claim 4 ================================================


def _heads(encoder, method, linear, gcn: dict, gcn_val: dict | None = None, epoch=10):
    """Linear head with test accuracies ``linear`` (per seed), GCN with ``gcn[T]`` (per seed) and
    validation ``gcn_val[T]`` (default: equal to its mean test accuracy)."""
    out = head_records(encoder, method, "linear", linear, authors=0.9, parameters=5130, epoch=epoch)
    for t, accs in gcn.items():
        accs = accs if isinstance(accs, list) else [accs]
        val = (gcn_val or {}).get(t, sum(accs) / len(accs))
        out += head_records(encoder, method, "gcn", accs, val=val, parameter=t, authors=0.9, parameters=652,
                            epoch=epoch)
    return out


def _claim4_records(cl_linear, cl_gcn, sl_gain=0.0, encoder="vit", temps=(0.1, 0.2)):
    """CL heads: linear ``cl_linear`` and GCN ``cl_gcn`` (per seed) at the first temperature (the best on
    validation), a worse GCN at the others; SL: a GCN ``sl_gain`` above its linear head."""
    first, *rest = temps
    cl = _heads(encoder, CL, cl_linear, {first: cl_gcn, **{t: [0.5] * len(cl_gcn) for t in rest}})
    sl = _heads(encoder, SL, [0.9] * len(cl_gcn), {t: [0.9 + sl_gain] * len(cl_gcn) for t in temps})
    return cl + sl


def test_claim4_a_clear_gain_is_reproduced():
    # +3 points with a seed spread of 0.5 points on a test set of 2,000 images
    rows = claim4(_claim4_records([0.80, 0.80], [0.825, 0.835]), test_images=2000)
    r = rows[0]
    assert r["holds"] is True and r["gain_cl"] == pytest.approx(0.03) and r["gain_sl"] == pytest.approx(0.0)
    se = (0.83 * 0.17 / 2000) ** 0.5  # the test set's binomial standard error beats the 0.5-point spread
    assert r["noise"] == pytest.approx(se) and r["margin"] == pytest.approx(0.03)
    assert r["parameter_ratio"] == pytest.approx(5130 / 652)
    assert "gain +3.0%" in r["numbers"] and "GCN (T=0.1)" in r["numbers"] and "7.9x" in r["numbers"]
    assert r["deciding"].startswith("GCN − linear on CL +3.0%")
    assert verdict(rows, 4) == "reproduced"


def test_claim4_a_gain_within_the_seeds_spread_is_inconclusive():
    # the example: +0.2 points, seeds 0.6 points apart from their mean
    rows = claim4(_claim4_records([0.80, 0.80], [0.796, 0.808]), test_images=10_000)
    r = rows[0]
    assert r["holds"] is True and r["gain_cl"] == pytest.approx(0.002)
    assert r["noise"] == pytest.approx(0.006) and abs(r["margin"]) <= r["noise"]
    assert verdict(rows, 4) == "inconclusive"
    # the same within the noise on the other side
    down = claim4(_claim4_records([0.80, 0.80], [0.792, 0.804]), test_images=10_000)
    assert down[0]["holds"] is False and verdict(down, 4) == "inconclusive"


def test_claim4_fails_when_linear_wins_or_sl_gains_more():
    lose = claim4(_claim4_records([0.85, 0.85], [0.80, 0.80]), test_images=10_000)
    assert lose[0]["holds"] is False and verdict(lose, 4) == "not reproduced"
    sl_more = claim4(_claim4_records([0.80, 0.80], [0.83, 0.83], sl_gain=0.06), test_images=10_000)
    assert sl_more[0]["holds"] is False and verdict(sl_more, 4) == "not reproduced"
    assert "SL gain +6.0%" in sl_more[0]["numbers"]


def test_claim4_picks_the_temperature_on_validation_and_takes_the_profiles_temperatures():
    # T = 0.5 and 2 instead of the paper's 0.1 and 0.2; the best validation is at T = 2
    records = _claim4_records([0.80, 0.80], [0.85, 0.85], temps=(2.0, 0.5))
    r = claim4(records, test_images=10_000)[0]
    assert "GCN (T=2)" in r["numbers"] and r["holds"] is True


def test_claim4_ignores_the_random_init():
    records = _claim4_records([0.80, 0.80], [0.83, 0.83])
    records += _heads("vit", CL, [0.40, 0.40], {0.1: [0.9, 0.9], 0.2: [0.9, 0.9]}, epoch=0)
    r = claim4(records, test_images=10_000)[0]
    assert r["gain_cl"] == pytest.approx(0.03)


def test_claim4_needs_most_comparisons_the_others_all():
    enc = ("resnet18", "resnet101", "vit")
    # two of three encoders gain clearly, one loses clearly
    records = []
    for e, (lin, gcn) in zip(enc, [(0.80, 0.85), (0.80, 0.85), (0.85, 0.80)]):
        records += _claim4_records([lin, lin], [gcn, gcn], encoder=e)
    rows = claim4(records, test_images=10_000)
    assert [r["holds"] for r in rows] == [True, True, False]
    assert verdict(rows, 4) == "reproduced"
    # the same two of three for claim 2 (every encoder) is not
    geo = []
    for e, cl in zip(enc, (100.0, 100.0, 1000.0)):
        geo += tidy(e, CL, R.CH, cl) + tidy(e, SL, R.CH, 900.0)
    rows2 = claim2(geo)
    assert [r["holds"] for r in rows2] == [True, True, False] and verdict(rows2, 2) == "not reproduced"
    # one of two is not "most"
    assert verdict(rows[1:], 4) == "not reproduced"


# ================================================ claim 5 ================================================


def _purity(cl_wide, sl_wide, cl_local=(0.9, 0.8), sl_local=(0.95, 0.94), perplexities=(0.5, 50.0, 498.0)):
    def series(values):
        lo, hi = values
        return {p: lo + (hi - lo) * i / (len(perplexities) - 1) for i, p in enumerate(perplexities)}
    out = []
    for m, wide, local in ((CL, cl_wide, cl_local), (SL, sl_wide, sl_local)):
        out += tidy("vit", m, R.MAP_PURITY_WIDE, series(wide)) + tidy("vit", m, R.MAP_PURITY, series(local))
    return out


def test_claim5_holds_when_cl_loses_separation_and_sl_keeps_it():
    r = claim5(_purity((0.9, 0.5), (0.95, 0.94)))[0]
    assert r["holds"] is True and r["margin"] == pytest.approx(min(0.4 - 0.1, 0.05 - 0.01))
    assert r["deciding"] == "global map purity, perplexity 0.5 → 498: CL 0.900 → 0.500, SL 0.950 → 0.940"
    assert "(local: CL 0.900 → 0.800, SL 0.950 → 0.940)" in r["numbers"]


@pytest.mark.parametrize("cl, sl", [((0.9, 0.85), (0.95, 0.94)), ((0.9, 0.5), (0.95, 0.6))])
def test_claim5_fails_when_cl_keeps_separation_or_sl_loses_it(cl, sl):
    r = claim5(_purity(cl, sl))[0]
    assert r["holds"] is False and verdict([r], 5) == "not reproduced"


# ================================================ claim 6 ================================================


def test_claim6_holds_with_a_near_duplicate_pair_sl_separates():
    comp = {"encoder": "resnet101", "method": CL, "cl_cosines": [0.995, 0.992, 0.98], "sl_cosines": [0.3, -0.07, 0.5]}
    r = claim6([comp], 0.99)[0]
    assert (r["encoder"], r["contrastive"], r["holds"]) == ("resnet101", CL, True)
    assert (r["above"], r["hits"]) == (2, 1) and r["margin"] == pytest.approx(0.07)
    assert r["max_cl"] == pytest.approx(0.995) and r["sl_at_max"] == pytest.approx(0.3)
    assert "2 of the 3 most similar cross-class pairs have CL cos > 0.99, 1 of them SL cos <= 0" in r["numbers"]
    assert verdict([r], 6) == "reproduced"


def test_claim6_fails_without_such_a_pair_and_reads_the_profiles_threshold():
    none_above = {"encoder": "vit", "method": CL, "cl_cosines": [0.97, 0.95], "sl_cosines": [-0.2, -0.5]}
    r = claim6([none_above], 0.99)[0]
    assert r["holds"] is False and r["margin"] == pytest.approx(0.97 - 0.99)
    assert verdict([r], 6) == "not reproduced"
    # the same pairs against a threshold of 0.95
    r = claim6([none_above], 0.95)[0]
    assert r["holds"] is True and "CL cos > 0.95" in r["numbers"]
    # SL does not separate the near duplicates
    r = claim6([{"encoder": "vit", "method": CL, "cl_cosines": [0.999], "sl_cosines": [0.4]}], 0.99)[0]
    assert r["holds"] is False and r["margin"] == pytest.approx(-0.4)
    # every searched pair is above the threshold: their count is a lower bound
    r = claim6([{"encoder": "vit", "method": CL, "cl_cosines": [0.999, 0.995], "sl_cosines": [0.1, -0.1]}], 0.99)[0]
    assert "at least 2 of the 2" in r["numbers"]


# ================================================ verdict ================================================


def _row(holds, margin=0.1, noise=None):
    return {"claim": 0, "encoder": "e", "contrastive": CL, "holds": holds, "margin": margin, "noise": noise,
            "numbers": "", "deciding": ""}


def test_verdict_over_comparisons():
    assert verdict([_row(True), _row(True)], 1) == "reproduced"
    assert verdict([_row(True), _row(False, -0.1)], 1) == "not reproduced"
    assert verdict([], 2) == "not comparable"
    assert verdict([_row(None)], 3) == "not comparable"
    assert verdict([_row(True), _row(None)], 3) == "reproduced"  # what cannot be checked does not count
    # a failure within its noise may flip the verdict: inconclusive
    assert verdict([_row(True), _row(False, -0.001, 0.01)], 4) == "inconclusive"
    # a failure within its noise that cannot change the outcome of "most" does not
    assert verdict([_row(True), _row(True), _row(True), _row(False, -0.001, 0.01)], 4) == "reproduced"
    # a clear failure decides even beside an unresolved comparison
    assert verdict([_row(False, -0.5, 0.01), _row(True, 0.001, 0.01)], 1) == "not reproduced"


def test_every_claim_on_one_set_of_records():
    """All hold: each claim is reproduced; one clear failure: that claim alone is not."""
    geo = _paper_chi() + tidy("vit", CL, R.CH, 100.0) + tidy("vit", SL, R.CH, 900.0)
    geo += _rld({1.0: 0.01, 0.1: 0.5}, {1.0: 0.4, 0.1: 0.8})
    heads = _claim4_records([0.80, 0.80], [0.83, 0.83])
    purity = _purity((0.9, 0.5), (0.95, 0.94))
    comps = [{"encoder": "vit", "method": CL, "cl_cosines": [0.995], "sl_cosines": [-0.1]}]
    found = {1: claim1(geo), 2: claim2(geo), 3: claim3(geo), 4: claim4(heads, 10_000), 5: claim5(purity),
             6: claim6(comps, 0.99)}
    assert {n: verdict(rows, n) for n, rows in found.items()} == {n: "reproduced" for n in range(1, 7)}
    assert set(claims.STATEMENTS) == set(found)
    broken = [r for r in geo if not (r["metric"] == R.CH and r["method"] == CL)] + tidy("vit", CL, R.CH, 5000.0)
    assert verdict(claim2(broken), 2) == "not reproduced" and verdict(claim1(broken), 1) == "reproduced"


# ================================================ regime =================================================


def _regime_records(cl_chi1, sl_chi1, knn_ks=(10, 200)):
    geo = _chi({1: cl_chi1, 10: cl_chi1 - 0.1}, {1: sl_chi1, 10: sl_chi1 - 0.01}, random={1: 0.3, 10: 0.2})
    knn = []
    for m, epoch, base in ((CL, 1200, 0.7), (SL, 600, 0.9)):
        knn += tidy("vit", m, R.KNN, {k: base - i / 100 for i, k in enumerate(knn_ks)}, epoch=epoch)
    knn += tidy("vit", CL, R.KNN, {k: 0.3 for k in knn_ks}, epoch=0)
    return geo, knn


def test_regime_thresholds():
    assert REGIME_CHI1 == {"supervised": 0.95, "contrastive": 0.80}
    geo, knn = _regime_records(0.85, 0.96)
    rows = {r["method"]: r for r in regime(geo, knn)}
    assert set(rows) == {CL, SL}  # the random init is no encoder of the claims
    cl, sl = rows[CL], rows[SL]
    assert cl["in_regime"] is True and sl["in_regime"] is True
    assert (cl["epochs"], cl["knn_accuracy"], cl["chi1_train"]) == (1200, pytest.approx(0.7), pytest.approx(0.85))
    assert cl["authors_chi1"] == paper.CHI_VIT["contrastive"][0]
    assert sl["authors_chi1"] == paper.CHI_VIT["supervised"][0]
    assert (cl["threshold"], sl["threshold"]) == (0.80, 0.95)
    geo, knn = _regime_records(0.79, 0.94)
    assert [r["in_regime"] for r in regime(geo, knn)] == [False, False]
    geo, knn = _regime_records(0.80, 0.95)  # the thresholds themselves are in
    assert [r["in_regime"] for r in regime(geo, knn)] == [True, True]


def test_regime_has_one_row_per_run_at_its_last_epoch_not_an_extra_snapshot():
    """The paper profile measures the supervised ResNet-18 at epoch 120 too (the authors' snapshot): the
    regime row is the run's last epoch, and a schedule variant is its own row."""
    geo, knn = _regime_records(0.85, 0.96)
    geo += tidy("vit", SL, R.CHI, {1: 0.5, 10: 0.4}, epoch=120)
    knn += tidy("vit", SL, R.KNN, {10: 0.5, 200: 0.4}, epoch=120)
    geo += tidy("vit", CL, R.CHI, {1: 0.6, 10: 0.5}, epoch=1200, schedule="paper-literal")
    knn += tidy("vit", CL, R.KNN, {10: 0.55, 200: 0.5}, epoch=1200, schedule="paper-literal")
    rows = regime(geo, knn)
    assert [(r["method"], r["epochs"]) for r in rows] == [(CL, 1200), (SL, 600), (CL, 1200)]
    assert [r["chi1_train"] for r in rows] == pytest.approx([0.85, 0.96, 0.6])
    assert [r["knn_accuracy"] for r in rows] == pytest.approx([0.7, 0.9, 0.55])


def test_regime_reads_knn_at_k10_or_the_profiles_smallest_k():
    geo, knn = _regime_records(0.9, 0.99, knn_ks=(50, 5))
    rows = {r["method"]: r for r in regime(geo, knn)}
    assert rows[CL]["knn_accuracy"] == pytest.approx(0.69)  # k = 5, the second listed
    geo, knn = _regime_records(0.9, 0.99, knn_ks=(200, 10))
    assert {r["method"]: r for r in regime(geo, knn)}[CL]["knn_accuracy"] == pytest.approx(0.69)
    assert regime(geo, []) and regime(geo, [])[0]["knn_accuracy"] is None
