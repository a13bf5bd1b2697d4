"""The reproduction report (clorg.book.report, with clorg.book.paper_numbers and clorg.book.summary): verdicts from stored results, never from a recomputation."""

from __future__ import annotations

import json
import re

import pytest

import numpy as np

from clorg.analysis import records as R
from clorg.analysis.classify import prediction_record
from clorg.book import chapters, claims, paper_numbers, report, store, summary, tables, verdicts
from clorg.core import paper
from clorg.core.config import load_profile
from factories import FakeData, head_records, tidy

CL, SL = "moco_queue", "supervised"
VERDICTS = set(report.VERDICTS)


def _Data(name="cifar10", train=50_000, test=10_000):
    return FakeData(name=name, train=train, test=test)


def _cfg(**train):
    cfg = load_profile("smoke")
    cfg["train"].update({"encoders": ["vit"], "width_scale": 1.0, "methods": [CL, SL], **train})
    return cfg


def _geometry(cl_chi, sl_chi, cl_ch=100.0, sl_ch=900.0, encoder="vit"):
    """Geometry records of a contrastive and a supervised run and the random init, at the paper's ks."""
    def run(method, epoch, chi, ch, rld1, rld01):
        rld = {1.0: rld1, 0.5: rld1, 0.2: rld01, 0.1: rld01}
        return (tidy(encoder, method, R.CH, ch, epoch=epoch) + tidy(encoder, method, R.RLD, rld, epoch=epoch)
                + tidy(encoder, method, R.CHI, dict(zip(paper.CHI_KS, chi)), epoch=epoch))
    records = run(CL, 1200, cl_chi, cl_ch, 0.01, 0.5) + run(SL, 600, sl_chi, sl_ch, 0.4, 0.8)
    records += (tidy(encoder, CL, R.CH, 592.5 * 1.05, epoch=0)
                + tidy(encoder, CL, R.RLD, {1.0: 0.0137, 0.5: 0.0137, 0.2: 0.1255, 0.1: 0.1255}, epoch=0)
                + tidy(encoder, CL, R.CHI, dict(zip(paper.CHI_KS, [0.3] * 5)), epoch=0))
    return {"records": records, "chi_ks": list(paper.CHI_KS), "chi_note": None, "class_size": paper.CLASS_SIZE}


def _store(cfg, data, name, payload):
    """Store ``payload`` as the chapters store ``name``: the report then finds it current."""
    chapter = chapters.chapter_of(name)
    data = data if chapter.uses_data else None
    return store.cached(cfg, data, name, lambda: payload, chapters._source(cfg, data, chapter),
                        producer=chapters.producer(name), command=chapters.command(name, cfg),
                        arrays=name in chapter.arrays)


@pytest.fixture
def stored(results_root):
    return results_root


def _claim(judged, cid):
    return next(c for c in judged if c["claim"] == cid)


def test_missing_results_say_which_command_produces_them(stored):
    cfg, data = _cfg(), _Data()
    collected = report.collect(cfg, data)
    assert set(collected) == set(report.REPORTED)
    assert all(isinstance(st, store.Status) and st.kind == "missing" and not st.usable for st in collected.values())
    judged = report.verdicts(collected, cfg)
    assert [c["claim"] for c in judged] == ["1", "2", "3", "4", "5", "6", "D"]
    assert [c["verdict"] for c in judged] == ["missing"] * 7
    assert _claim(judged, "1")["reason"] == "run `python -m clorg.book --profile smoke --only 04_metrics`"
    assert "--only 06_classifiers" in _claim(judged, "4")["reason"] and "--only 05_tsne" in _claim(judged, "5")["reason"]
    assert "--only 08_near_duplicates" in _claim(judged, "6")["reason"]
    assert "--only 07_dynamics" in _claim(judged, "D")["reason"]
    gaps = report.missing(collected, cfg)
    assert len(gaps) == len(report.REPORTED) and "notebooks/06_classifiers.ipynb" in set(gaps["produced by"])
    assert set(gaps["command"]) == {f"python -m clorg.book --profile smoke --only {chapters.chapter_of(n).stem}"
                                    for n in report.REPORTED}
    nums = paper_numbers.table(collected, cfg, data)
    assert set(nums["verdict"]) == {"missing"}
    assert nums["reason"].str.startswith("run `python -m clorg.book --profile smoke --only ").all()


def test_comparable_chi_is_judged_within_the_tolerance(stored):
    cfg, data = _cfg(contrastive_epochs=1200, supervised_epochs=600), _Data()
    cl = [v + 0.01 for v in paper.CHI_VIT["contrastive"]]
    sl = list(paper.CHI_VIT["supervised"])
    sl[-1] -= 0.2  # far from the authors' 0.988 at k = 1000
    _store(cfg, data, "geometry", _geometry(cl, sl))
    collected = report.collect(cfg, data)
    assert collected["geometry"].kind == "current"
    nums = paper_numbers.table(collected, cfg, data).set_index("what")
    assert set(nums["verdict"]) <= VERDICTS
    assert nums.loc["CHI(k), ViT contrastive, k=1", "verdict"] == "reproduced"
    assert nums.loc["CHI(k), ViT supervised, k=1000", "verdict"] == "not reproduced"
    assert nums.loc["random-init ViT CH", "verdict"] == "reproduced"  # 5 % off, 10 % tolerance
    assert nums.loc["random-init ViT RLD T=0.1", "ours"] == "0.1255"
    assert nums.loc["random-init ViT RLD T=0.2", "verdict"] == "not reproduced"  # 0.1255 vs 0.0745
    judged = report.verdicts(collected, cfg)
    one = _claim(judged, "1")
    # D(SL) = 1 - 0.788/0.990 = 0.204 breaks it; k_max = 0.2 * 5,000
    assert one["verdict"] == "not reproduced" and "D(SL) 0.204 ✗" in one["deciding"]
    assert one["comparisons"][0]["beside"][1]["value"] == 1000
    assert _claim(judged, "2")["verdict"] == "reproduced"  # 900 >= 2 * 100
    # (a) 0.5 - 0.1255 >= 0.30, (b) 0.01 <= 0.05, (c) 0.4 >= 0.05 and >= 0.03
    assert _claim(judged, "3")["verdict"] == "reproduced"
    assert _claim(judged, "4")["verdict"] == "missing"


def test_another_encoder_or_a_subset_is_not_comparable(stored):
    cfg = _cfg(encoders=["resnet18"], width_scale=0.125)
    data = _Data(train=10_000)
    _store(cfg, data, "geometry", _geometry([0.5] * 5, [0.5] * 5, encoder="resnet18"))
    collected = report.collect(cfg, data)
    nums = paper_numbers.table(collected, cfg, data)
    chi = nums[nums["section"] == "CHI"]
    assert set(chi["verdict"]) == {"not comparable"}
    assert "this profile trains no vit" in chi["reason"].iloc[0] and "10,000 training images" in chi["reason"].iloc[0]
    assert set(nums[nums["section"] == "random init"]["verdict"]) <= {"not comparable", "missing"}
    # the claims compare the profile's own runs: still judged, with the supervised ResNet-18 at the authors'
    # epoch 120, which this 600-epoch run did not measure: its number is absent, not taken from epoch 600
    two = _claim(report.verdicts(collected, cfg), "2")
    assert two["verdict"] == "inconclusive" and two["comparisons"][0]["absent"] == ["CH(SL)"]
    assert "CH(SL) not computed" in two["deciding"]
    cfg = _cfg(width_scale=0.5)
    assert paper_numbers._setting(cfg, _Data(), "vit") == "our vit is at width x0.5"
    assert paper_numbers._setting(_cfg(), _Data(), "vit") is None


TEST_LABELS = np.arange(400) % 10


def _predictions(method, head, parameter, right_share):
    """Two seeds of a head right on the first ``right_share`` of the test images."""
    ident = {"encoder": "vit", "method": method, "schedule": "cosine", "epoch": 10}
    n = len(TEST_LABELS)
    predicted = np.where(np.arange(n) < right_share * n, TEST_LABELS, (TEST_LABELS + 1) % 10)
    return [prediction_record(ident, head, parameter, seed, predicted) for seed in (0, 1)]


def _classifiers(cl_linear=0.80, cl_gcn=0.83):
    res, preds = [], []
    for method, lin, gcn in ((CL, cl_linear, cl_gcn), (SL, 0.90, 0.90)):
        res += head_records("vit", method, "linear", [lin, lin], authors=0.8643 if method == CL else 0.9, parameters=5130)
        preds += _predictions(method, "linear", None, lin)
        for t, val, authors in ((0.1, 0.6, 0.90), (0.2, 0.5, 0.81)):
            res += head_records("vit", method, "gcn", [gcn, gcn], val=val, parameter=t, authors=authors, parameters=652)
            preds += _predictions(method, "gcn", t, gcn)
    res += head_records("vit", CL, "linear", 0.4, authors=0.43, parameters=5130, epoch=0)
    res += head_records("vit", CL, "gcn", 0.3, parameter=0.1, authors=0.352, parameters=652, epoch=0)
    res += head_records("vit", CL, "gcn", 0.3, parameter=0.2, authors=0.2, parameters=652, epoch=0)
    return {"records": res, "predictions": preds, "test_labels": TEST_LABELS.tolist()}


def test_heads_and_claim4_read_the_stored_classifiers(stored):
    cfg, data = _cfg(), _Data()
    _store(cfg, data, "classifiers", _classifiers())
    collected = report.collect(cfg, data)
    nums = paper_numbers.table(collected, cfg, data).set_index("what")
    assert nums.loc["linear on contrastive ViT (authors' protocol), %", "verdict"] == "reproduced"
    assert nums.loc["linear on contrastive ViT (authors' protocol), %", "ours"] == "86.43"
    assert nums.loc["gcn T=0.1 on contrastive ViT (authors' protocol), %", "verdict"] == "not reproduced"
    assert nums.loc["random-init ViT GCN T=0.2 test, % (authors' protocol)", "verdict"] == "not reproduced"
    assert nums.loc["random-init ViT GCN T=0.1 test, % (authors' protocol)", "verdict"] == "reproduced"
    four = _claim(report.verdicts(collected, cfg), "4")
    # the GCN is right on 12 more images of 400 (rows 320-331), for both seeds: G = +3 points, interval above 0
    assert four["verdict"] == "reproduced" and four["one_training_seed"] is False
    (j,) = four["comparisons"]
    assert j["beside"][0]["value"] == pytest.approx(0.03) and j["conditions"][0]["value"] > 0
    assert "G, lower end of the 95 % interval +" in four["deciding"]
    assert four["authors"]["verdict"] == "not reproduced"  # their saved run: 85.74 - 86.43
    assert "our contrastive run has 2 epochs, theirs 1200" in \
        nums.loc["linear on contrastive ViT (authors' protocol), %", "reason"]


def test_an_interval_containing_zero_is_inconclusive(stored):
    cfg, data = _cfg(), _Data()
    _store(cfg, data, "classifiers", _classifiers(cl_linear=0.80, cl_gcn=0.8025))  # one image in 400
    four = _claim(report.verdicts(report.collect(cfg, data), cfg), "4")
    (j,) = four["comparisons"]
    assert four["verdict"] == "inconclusive" and j["conditions"][0]["value"] <= 0 <= j["conditions"][1]["value"]


def test_results_of_other_data_are_refused_not_reported(stored):
    cfg = _cfg()
    _store(cfg, _Data(), "geometry", _geometry([0.5] * 5, [0.5] * 5))
    with pytest.raises(store.ResultsMismatch, match="dataset"):
        report.collect(cfg, _Data(name="fashion-mnist"))


def _dynamics():
    def run(method, points):
        out = []
        for epoch, ch, rld01 in points:
            out += tidy("vit", method, R.CH, ch, epoch=epoch)
            out += tidy("vit", method, R.RLD, {1.0: 0.01, 0.5: 0.02, 0.1: rld01}, epoch=epoch)
        return out
    # CH 300 <= 0.5 * 600 and RLD(0.1) +0.57: the criterion holds
    paper_trend = run(CL, [(0, 550.0, 0.13), (10, 600.0, 0.5), (20, 300.0, 0.7)])
    # CH 240 below its maximum 250 but not half of it, RLD(0.1) +0.17: direction only
    falls_a_little = run("simclr", [(0, 60.0, 0.07), (10, 250.0, 0.2), (20, 240.0, 0.24)])
    return {"encoder": "vit", "records": paper_trend + falls_a_little}


def _near_duplicates(cl=(0.995, 0.97), sl=(-0.1, 0.3), median=0.0):
    ident = {"encoder": "vit", "schedule": "cosine", "epoch": 2}
    return {"comparisons": [{**ident, "method": CL, "reference": {**ident, "method": SL}, "pairs": [],
                             "cl_cosines": list(cl), "sl_cosines": list(sl),
                             "baseline": {"sl_median": median, "sl_mean": median, "cl_mean": 0.2, "pairs": 10,
                                          "sl_share_nonpositive": 0.5}}]}


def test_dynamics_and_near_duplicates_verdicts(stored):
    cfg, data = _cfg(), _Data()
    _store(cfg, data, "dynamics", _dynamics())
    _store(cfg, data, "near_duplicates", _near_duplicates())
    collected = report.collect(cfg, data)
    dyn = paper_numbers.table(collected, cfg, data).set_index("what")
    assert dyn.loc["trend over training, vit moco_queue (cosine schedule)", "verdict"] == "reproduced"
    assert dyn.loc["trend over training, vit simclr (cosine schedule)", "verdict"] == "direction only"
    assert "max 250" in dyn.loc["trend over training, vit simclr (cosine schedule)", "ours"]
    judged = report.verdicts(collected, cfg)
    six = _claim(judged, "6")
    assert six["verdict"] == "reproduced" and "cos_CL of the top pair 0.995 ✓" in six["deciding"]
    assert "its cos_SL −0.100 ✓ (needs ≤ median cos_SL of 10,000 random cross-class pairs = 0.000)" in six["deciding"]
    # the followed run decides claim D (the first contrastive run); its regime is unknown without geometry
    d = _claim(judged, "D")
    assert d["verdict"] == "reproduced" and d["in_regime"] is None and d["authors"]["verdict"] == "reproduced"


def test_styled_overview_colours_each_verdict(stored):
    cfg, data = _cfg(), _Data()
    table = verdicts.overview(report.verdicts(report.collect(cfg, data), cfg))
    assert list(table["verdict"]) == ["missing"] * 7  # nothing stored but what the fixture wrote
    html = verdicts.styled(table).to_html()
    # the colour of the verdict present, and no other verdict's (whatever names pandas gives its CSS rules)
    assert f"background-color: {verdicts.VERDICT_COLOURS['missing']}" in html
    assert not any(colour in html for v, colour in verdicts.VERDICT_COLOURS.items()
                   if colour != verdicts.VERDICT_COLOURS["missing"])
    assert set(verdicts.VERDICT_COLOURS) == VERDICTS


# ============================================ a full build ============================================


def _embeddings(cl_knn=0.85, sl_knn=0.9):
    records = tidy("vit", CL, R.KNN, {10: cl_knn, 200: cl_knn - 0.05}, epoch=1200)
    records += tidy("vit", SL, R.KNN, {10: sl_knn, 200: sl_knn - 0.05}, epoch=600)
    return {"records": records, "provenance": [], "queries": [0, 1], "neighbours": []}


def _purity():
    # chance 0.1: CL 0.9 -> 0.45 (<= 0.9 - 0.5 * 0.8 = 0.5), SL 0.95 -> 0.94 (>= 0.855)
    out = []
    for m, wide, local in ((CL, (0.9, 0.5), (0.9, 0.45)), (SL, (0.95, 0.94), (0.95, 0.94))):
        out += tidy("vit", m, R.MAP_PURITY_WIDE, {0.5: wide[0], 498.0: wide[1]})
        out += tidy("vit", m, R.MAP_PURITY, {0.5: local[0], 498.0: local[1]})
    return {"records": out, "classes": 10}


def _training():
    hw = {"cpu": "cpu", "cores": 2, "memory_gib": 4.0, "gpu": None}
    return {"runs": [{"encoder": "vit", "method": m, "schedule": "cosine", "epochs": 2, "batch_size": 128,
                      "kind": "contrastive" if m == CL else "supervised", "epochs_done": done,
                      "stopped_early": None if done == 2 else "deadline", "parameters": 1000, "train_seconds": 120.0,
                      "images_per_s": 50.0, "final_loss": 1.23456, "device": "cpu", "processes": 1, "hardware": hw,
                      "commit": "abc", "run": f"vit-{m}-123", "log": []} for m, done in ((CL, 2), (SL, 1))]}


@pytest.fixture
def build(stored):
    """Every result a build reports on, hand-made: claims 1-6 hold, the SL encoder out of the regime."""
    cfg, data = _cfg(), _Data()
    cl = [0.873, 0.847, 0.805, 0.667, 0.527]
    sl = [0.93, 0.93, 0.93, 0.93, 0.93]  # CHI(1) of 0.93 is below the supervised regime's 0.95
    _store(cfg, data, "geometry", _geometry(cl, sl))
    _store(cfg, data, "embeddings", _embeddings())
    _store(cfg, data, "classifiers", _classifiers())
    _store(cfg, data, "tsne_purity", _purity())
    _store(cfg, data, "near_duplicates", _near_duplicates())
    _store(cfg, data, "training", _training())
    return cfg, data


def test_verdicts_of_a_build(build):
    cfg, data = build
    collected = report.collect(cfg, data)
    judged = report.verdicts(collected, cfg)
    assert [c["verdict"] for c in judged] == ["reproduced"] * 6 + ["missing"]
    # claims compare CL with SL: the SL encoder is out of the regime, so every claim is
    assert [c["in_regime"] for c in judged[:6]] == [False] * 6
    reg = {r["method"]: r for r in report.regime_rows(collected, cfg)}
    assert reg[CL]["in_regime"] is True and reg[SL]["in_regime"] is False
    assert [c["holds"] for c in reg[SL]["conditions"]] == [False, True]
    # without the kNN probe the regime is unknown, and so is every claim's
    no_knn = {**collected, "embeddings": store.Status("missing")}
    assert {r["in_regime"] for r in report.regime_rows(no_knn, cfg)} == {None, False}
    table = verdicts.overview(judged)
    assert list(table.columns) == ["claim", "statement", "verdict", "in regime", "deciding numbers (ours)",
                                   "the authors' numbers, same test", "note"]
    assert list(table["in regime"])[:6] == ["no"] * 6 and table.loc[4, "the authors' numbers, same test"] == \
        "no number saved (figures only)"
    md = verdicts.detail_markdown(judged[0])
    assert md.startswith("**Claim 1: reproduced (out of regime: not counted).**")
    assert "| D(CL) | ≥ 0.200 | 0.396 ✓ | 0.396 ✓ |" in md  # ours equal the authors' here
    assert "| beside: D(RI) | | 0.000 | not saved |" in md and "nan" not in md.lower()
    # a number beside ours that the authors' judgement lacks (claim 6's share of every searched pair) reads "not saved"
    six = next(c for c in judged if c["claim"] == "6")
    six["comparisons"][0]["beside"].append(claims.quantity("share of the 1,000 pairs", 0.458, ".1%"))
    assert "| beside: share of the 1,000 pairs | | 45.8% | not saved |" in verdicts.detail_markdown(six)


def test_summary_has_exactly_its_schema(build):
    cfg, data = build
    collected = report.collect(cfg, data)
    s = summary.build(collected, cfg, data, seconds=123.456)
    assert list(s) == ["profile", "dataset", "encoders", "claims", "spec_version", "build_seconds", "written"]
    assert list(s) == [*summary.KEYS, "written"]  # the date is not required: summaries before it stay readable
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", s["written"])
    assert (s["profile"], s["dataset"], s["build_seconds"], s["spec_version"]) == ("smoke", "cifar10", 123.5, 2)
    assert all(list(e) == ["encoder", "method", "schedule", "epochs", "knn_accuracy", "chi1_train", "in_regime",
                           "regime_conditions"] for e in s["encoders"])
    assert {e["schedule"] for e in s["encoders"]} == {None}  # the profile's own runs only
    enc = {e["method"]: e for e in s["encoders"]}
    assert {k: enc[CL][k] for k in ("encoder", "epochs", "knn_accuracy", "chi1_train", "in_regime")} == \
        {"encoder": "vit", "epochs": 1200, "knn_accuracy": 0.85, "chi1_train": 0.873, "in_regime": True}
    assert enc[SL]["epochs"] == 600 and enc[SL]["in_regime"] is False  # the epoch its features were measured at
    assert [c["claim"] for c in s["claims"]] == [1, 2, 3, 4, 5, 6, "D"]
    for c in s["claims"]:
        assert list(c) == ["claim", "verdict", "in_regime", "statement", "deciding", "rule", "one_training_seed",
                           "comparisons", "authors", "authors_note", "reason"]
        assert c["verdict"] in VERDICTS
        assert c["in_regime"] in (True, False, None) and type(c["in_regime"]) in (bool, type(None))
        assert isinstance(c["statement"], str) and c["deciding"]
    one = s["claims"][0]
    assert "D(CL) 0.396 ✓ (needs ≥ 0.200)" in one["deciding"]
    assert [x["quantity"] for x in one["comparisons"][0]["conditions"]] == ["D(CL)", "D(SL)", "D(CL) − D(SL)"]
    assert one["authors"]["verdict"] == "reproduced" and s["claims"][4]["authors"] is None
    json.dumps(s, allow_nan=False)  # plain JSON, no NaN
    assert summary.build(collected, cfg, data, None)["build_seconds"] is None


def test_summary_of_an_empty_store(stored):
    cfg, data = _cfg(), _Data()
    s = summary.build(report.collect(cfg, data), cfg, data, None)
    assert s["encoders"] == [] and [c["verdict"] for c in s["claims"]] == ["missing"] * 7
    assert all(c["in_regime"] is None and c["deciding"] == "—" for c in s["claims"])


def test_write_and_read_summary(build, stored):
    cfg, data = build
    s = summary.build(report.collect(cfg, data), cfg, data, 10.0)
    path = summary.write(cfg, s)
    assert path == stored / "smoke" / "summary.json" and path.is_file()
    assert summary.read(path) == json.loads(json.dumps(s))  # tuples read back as lists
    assert summary.read(path.with_name("absent.json")) is None


def test_a_summary_that_judged_the_same_is_kept_with_its_date(build, stored):
    """Rendering a committed summary again (another build time, another minute) leaves the file as it was, so a
    checkout stays clean; one that judged otherwise replaces it, date and all."""
    cfg, data = build
    first = {**summary.build(report.collect(cfg, data), cfg, data, 10.0), "written": "2026-12-04 09:30 UTC"}
    path = summary.write(cfg, first)
    before = path.read_bytes()
    again = summary.build(report.collect(cfg, data), cfg, data, 99.0)
    assert again["written"] != first["written"] and summary.write(cfg, again) == path
    assert path.read_bytes() == before
    changed = {**again, "claims": [{**again["claims"][0], "verdict": "not reproduced"}, *again["claims"][1:]]}
    summary.write(cfg, changed)
    assert summary.read(path)["build_seconds"] == 99.0 and summary.read(path)["written"] == again["written"]
    path.write_text("{damaged")
    summary.write(cfg, again)
    assert summary.read(path)["written"] == again["written"]


def test_read_summary_names_a_broken_file(stored):
    path = stored / "smoke" / "summary.json"
    path.parent.mkdir(parents=True)
    path.write_text('{"profile": "smoke", "dataset": "cif')
    with pytest.raises(ValueError, match=rf"{path}: cannot be read.*09_report.ipynb"):
        summary.read(path)
    path.write_text(json.dumps({"profile": "smoke", "dataset": "cifar10", "claims": [], "spec_version": 2}))
    with pytest.raises(ValueError, match=rf"{path}: lacks \['encoders', 'build_seconds'\]"):
        summary.read(path)
    path.write_text(json.dumps({"profile": "smoke", "dataset": "cifar10", "claims": []}))  # before versions
    with pytest.raises(summary.UnusableSummary, match="judged by SPEC section 7 version 1; the criteria are now "
                                                      "version 2") as err:
        summary.read(path)
    assert err.value.older
    for not_an_object in ("[1, 2]", "null", "5"):
        path.write_text(not_an_object)
        with pytest.raises(ValueError, match=str(path)):
            summary.read(path)


def test_findings_open_with_a_table_of_every_claim(build):
    cfg, data = build
    s = summary.build(report.collect(cfg, data), cfg, data, None)
    s["claims"][3]["verdict"] = "inconclusive"
    md = verdicts.findings_markdown(s, link="[report](09_report.ipynb)")
    assert md.startswith("On the `smoke` profile (cifar10), judged by the pre-registered criteria of SPEC section 7 "
                         "(version 2):\n\n| claim | verdict | in regime | the numbers that decide it |")
    for c in s["claims"]:  # out of regime, the verdict cell itself says it is not counted
        assert f"| {c['claim']}. {c['statement']} | **{verdicts.shown_verdict(c)}** |" in md and c["deciding"] in md
    assert "| **inconclusive (out of regime: not counted)** | no |" in md
    assert "Counted as evidence (in the paper's regime): 0 of 7 claims; a verdict out of regime is not counted" in md
    assert "vit moco_queue: kNN 85.0%, CHI(1) 0.873 (in regime)" in md and "[report](09_report.ipynb)" in md
    empty = verdicts.findings_markdown(s | {"encoders": []})
    assert "Encoders" not in empty and "nan" not in md.lower()
    # a run under another schedule (the paper profile's cosine ViT) is named with it, not as a second main run
    variant = {**s["encoders"][0], "schedule": "cosine"}
    md = verdicts.findings_markdown(s | {"encoders": [s["encoders"][0], variant]})
    assert f"{variant['encoder']} {variant['method']} (cosine): kNN" in md
    assert f"{variant['encoder']} {variant['method']}: kNN" in md  # the main run, as before


def test_a_dynamics_comparison_is_named_with_its_schedule_cosine_included():
    """In the paper profile the main run is paper-literal and cosine the variant: "cosine" must show."""
    assert verdicts.who({"encoder": "vit", "contrastive": "moco_queue", "schedule": "cosine"}) == "vit moco_queue (cosine)"
    assert verdicts.who({"encoder": "vit", "contrastive": "moco_queue", "schedule": None}) == "vit moco_queue"


def test_provenance_and_runs_tables(build):
    cfg, data = build
    collected = report.collect(cfg, data)
    prov = report.provenance(collected).set_index("result")
    assert set(prov.index) == {"geometry", "embeddings", "classifiers", "tsne_purity", "near_duplicates", "training"}
    assert (prov["state"] == "current").all() and prov.loc["geometry", "data sha256"] == "f" * 16
    runs = report.runs(collected)
    assert list(runs["epochs"]) == [2, "1 of 2 (stopped early)"] and list(runs["train time"]) == ["2.0 min", "2.0 min"]
    training = report.result(collected, "training")
    training["runs"][0]["train_seconds"] = 2.4  # a smoke run: seconds, not "0.0 min"
    assert report.runs_table(training)["train time"][0] == "2 s"
    # each loss named: a contrastive and a supervised loss side by side are different quantities
    assert all(loss is None or loss.endswith(("(InfoNCE against the queue)", "(NT-Xent)", "(cross-entropy)"))
               for loss in runs["final loss"])
    assert report.runs({"training": store.Status("missing")}).empty


def test_a_result_of_older_code_is_reported_with_its_state(build, monkeypatch):
    cfg, data = build
    from clorg.core import code

    real = code._sha
    monkeypatch.setattr(code, "_sha", lambda p: "0" * 16 if p.name == "near_duplicates.py" else real(p))
    collected = report.collect(cfg, data)
    assert collected["near_duplicates"].kind == "code" and collected["near_duplicates"].usable
    assert _claim(report.verdicts(collected, cfg), "6")["verdict"] == "reproduced"
    state = report.provenance(collected).set_index("result").loc["near_duplicates", "state"]
    assert "clorg/analysis/near_duplicates.py" in state


def test_claim_d_is_decided_by_the_run_under_the_authors_curve_gated_at_its_last_snapshot(stored):
    """Issue 24's default: where the profile follows a run under the authors' rising curve, that run decides
    claim D, and its regime gate reads its own last snapshot (chapter 04 measures only the main runs)."""
    cfg, data = _cfg(variants=[{"encoder": "vit", "method": CL, "schedule": "paper-compressed"}]), _Data()

    def run(schedule, points, chi1, knn):
        out = []
        for epoch, ch, rld01 in points:
            out += tidy("vit", CL, R.CH, ch, epoch=epoch, schedule=schedule)
            out += tidy("vit", CL, R.RLD, {1.0: 0.01, 0.1: rld01}, epoch=epoch, schedule=schedule)
            out += tidy("vit", CL, R.CHI, {1: chi1}, epoch=epoch, schedule=schedule)
            out += tidy("vit", CL, R.KNN, {10: knn}, epoch=epoch, schedule=schedule)
        return out
    # cosine: CH ends at its maximum (not reproduced); the authors' curve: CH 300 <= 0.5 * 600, RLD(0.1) +0.57
    records = (run("cosine", [(0, 100.0, 0.2), (20, 120.0, 0.1)], 0.5, 0.5)
               + run("paper-compressed", [(0, 550.0, 0.13), (10, 600.0, 0.5), (20, 300.0, 0.7)], 0.85, 0.81))
    _store(cfg, data, "dynamics", {"encoder": "vit", "records": records})
    collected = report.collect(cfg, data)
    d = _claim(report.verdicts(collected, cfg), "D")
    assert [c["schedule"] for c in d["comparisons"]] == ["paper-compressed", "cosine"]
    assert d["verdict"] == "reproduced" and d["in_regime"] is True  # CHI(1) 0.85 >= 0.80, kNN 81 % >= 80 %
    assert d["comparisons"][1]["in_regime"] is None  # the main run's regime needs chapter 04's numbers
    assert d["deciding"].startswith("vit moco_queue (paper-compressed): CH(last) 300.0 ✓")  # which run decides
    # the run's gate is shown with its numbers wherever the regime is: the report's table and summary.json
    (row,) = report.regime_rows(collected, cfg)
    assert (row["schedule"], row["epoch"], row["chi1"], row["knn"], row["in_regime"]) == ("paper-compressed", 20, 0.85,
                                                                                          0.81, True)
    assert list(tables.regime_frame([row]).index) == ["vit moco_queue (paper-compressed)"]
    # a cosine variant beside a main run under the authors' curve (the paper profile) keeps its own row
    main = {**row, "schedule": None, "method": CL}
    assert list(tables.regime_frame([main, {**row, "schedule": "cosine"}]).index) == ["vit moco_queue",
                                                                                       "vit moco_queue (cosine)"]


def test_claim_d_names_the_missing_run_under_the_authors_curve_instead_of_falling_back_to_cosine(stored):
    """The profile follows a run under the authors' curve, but its dynamics records are missing: the cosine
    run, present and reproducing, must not decide claim D in its place."""
    cfg = _cfg(variants=[{"encoder": "vit", "method": CL, "schedule": "paper-compressed"}])
    data = _Data()
    records = []
    for epoch, ch, rld01 in [(0, 550.0, 0.1), (10, 600.0, 0.5), (20, 200.0, 0.8)]:  # cosine alone reproduces
        records += tidy("vit", CL, R.CH, ch, epoch=epoch, schedule="cosine")
        records += tidy("vit", CL, R.RLD, {1.0: 0.01, 0.1: rld01}, epoch=epoch, schedule="cosine")
    _store(cfg, data, "dynamics", {"encoder": "vit", "records": records})
    d = _claim(report.verdicts(report.collect(cfg, data), cfg), "D")
    assert [c["schedule"] for c in d["comparisons"]] == ["paper-compressed", "cosine"]
    assert d["comparisons"][1]["verdict"] == "reproduced"  # the other run's verdict is there, but does not decide
    assert d["verdict"] == "inconclusive"
    assert d["deciding"] == "vit moco_queue (paper-compressed): its records are missing"
    # without records of it the regime gate of that run is unknown, not borrowed from the main run
    assert d["comparisons"][0]["in_regime"] is None


def test_a_verdict_whose_regime_is_unknown_is_marked_as_not_counted():
    """Only a verdict in regime counts; one whose gate lacks a number was shown bare in the chapters' lines and
    the claim's heading, as if it counted."""
    claim = {"verdict": "reproduced", "in_regime": None}
    assert verdicts.shown_verdict(claim) == "reproduced (regime unknown: not counted)"
    assert verdicts.shown_verdict({**claim, "in_regime": False}) == "reproduced (out of regime: not counted)"
    assert verdicts.shown_verdict({**claim, "in_regime": True}) == "reproduced"
    assert verdicts.shown_verdict({"verdict": "missing", "in_regime": None}) == "missing"
