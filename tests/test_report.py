"""The reproduction report (clorg.book.report): verdicts from stored results, never from a recomputation."""

from __future__ import annotations

import json

import pytest

from clorg.analysis import records as R
from clorg.book import chapters, report, store
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
    return {"records": records, "chi_ks": list(paper.CHI_KS), "chi_note": None}


def _store(cfg, data, name, payload):
    """Store ``payload`` as the chapters store ``name``: the report then finds it current."""
    chapter = chapters.chapter_of(name)
    data = data if chapter.uses_data else None
    return store.cached(cfg, data, name, lambda: payload, chapters._source(cfg, data, chapter),
                        producer=chapters.producer(name), command=chapters.command(name, cfg["profile"]["name"]),
                        arrays=name in chapter.arrays)


@pytest.fixture
def stored(results_root):
    return results_root


def test_missing_results_say_which_command_produces_them(stored):
    cfg, data = _cfg(), _Data()
    collected = report.collect(cfg, data)
    assert set(collected) == set(report.REPORTED)
    assert all(isinstance(st, store.Status) and st.kind == "missing" and not st.usable for st in collected.values())
    claims = report.claim_table(collected, cfg, data)
    assert list(claims["verdict"]) == ["missing"] * 6
    assert claims.loc[0, "reason"] == "run `python -m clorg.book --profile smoke --only 04_metrics`"
    by_claim = claims.set_index("claim")
    assert "--only 06_classifiers" in by_claim.loc[4, "reason"] and "--only 05_tsne" in by_claim.loc[5, "reason"]
    assert "--only 08_near_duplicates" in by_claim.loc[6, "reason"]
    gaps = report.missing(collected, "smoke")
    assert len(gaps) == len(report.REPORTED) and "notebooks/06_classifiers.ipynb" in set(gaps["produced by"])
    assert set(gaps["command"]) == {f"python -m clorg.book --profile smoke --only {chapters.chapter_of(n).stem}"
                                    for n in report.REPORTED}
    nums = report.numbers(collected, cfg, data)
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
    nums = report.numbers(collected, cfg, data).set_index("what")
    assert set(nums["verdict"]) <= VERDICTS
    assert nums.loc["CHI(k), ViT contrastive, k=1", "verdict"] == "reproduced"
    assert nums.loc["CHI(k), ViT supervised, k=1000", "verdict"] == "not reproduced"
    assert nums.loc["random-init ViT CH", "verdict"] == "reproduced"  # 5 % off, 10 % tolerance
    assert nums.loc["random-init ViT RLD T=0.1", "ours"] == 0.1255
    assert nums.loc["random-init ViT RLD T=0.2", "verdict"] == "not reproduced"  # 0.1255 vs 0.0745
    claims = report.claim_table(collected, cfg, data).set_index("claim")
    assert claims.loc[1, "verdict"] == "not reproduced"  # the SL drop of 0.202 breaks it
    assert "SL 0.202" in claims.loc[1, "ours"] and claims.loc[1, "ours"].startswith("vit moco_queue: ")
    assert claims.loc[2, "verdict"] == "reproduced" and claims.loc[3, "verdict"] == "reproduced"
    assert claims.loc[4, "verdict"] == "missing"


def test_another_encoder_or_a_subset_is_not_comparable(stored):
    cfg = _cfg(encoders=["resnet18"], width_scale=0.125)
    data = _Data(train=10_000)
    _store(cfg, data, "geometry", _geometry([0.5] * 5, [0.5] * 5, encoder="resnet18"))
    collected = report.collect(cfg, data)
    nums = report.numbers(collected, cfg, data)
    chi = nums[nums["section"] == "CHI"]
    assert set(chi["verdict"]) == {"not comparable"}
    assert "this profile trains no vit" in chi["reason"].iloc[0] and "10,000 training images" in chi["reason"].iloc[0]
    assert set(nums[nums["section"] == "random init"]["verdict"]) <= {"not comparable", "missing"}
    # the claims compare the profile's own runs: still judged
    assert report.claim_table(collected, cfg, data).set_index("claim").loc[2, "verdict"] == "reproduced"
    cfg = _cfg(width_scale=0.5)
    assert report._setting(cfg, _Data(), "vit") == "our vit is at width x0.5"
    assert report._setting(_cfg(), _Data(), "vit") is None


def _classifiers():
    res = []
    for method, (lin, lin_a), gcn in ((CL, (0.80, 0.8643), {0.1: (0.83, 0.90, 0.6), 0.2: (0.82, 0.81, 0.5)}),
                                      (SL, (0.90, 0.9), {0.1: (0.90, 0.9, 0.5), 0.2: (0.90, 0.9, 0.5)})):
        res += head_records("vit", method, "linear", lin, authors=lin_a, parameters=5130)
        for t, (acc, authors, val) in gcn.items():
            res += head_records("vit", method, "gcn", acc, val=val, parameter=t, authors=authors, parameters=652)
    res += head_records("vit", CL, "linear", 0.4, authors=0.43, parameters=5130, epoch=0)
    res += head_records("vit", CL, "gcn", 0.3, parameter=0.1, authors=0.352, parameters=652, epoch=0)
    res += head_records("vit", CL, "gcn", 0.3, parameter=0.2, authors=0.2, parameters=652, epoch=0)
    return {"records": res}


def test_heads_and_claim4_read_the_stored_classifiers(stored):
    cfg, data = _cfg(), _Data()
    _store(cfg, data, "classifiers", _classifiers())
    collected = report.collect(cfg, data)
    nums = report.numbers(collected, cfg, data).set_index("what")
    assert nums.loc["linear on contrastive ViT (authors' protocol), %", "verdict"] == "reproduced"
    assert nums.loc["linear on contrastive ViT (authors' protocol), %", "ours"] == 86.43
    assert nums.loc["gcn T=0.1 on contrastive ViT (authors' protocol), %", "verdict"] == "not reproduced"
    assert nums.loc["random-init ViT GCN T=0.2 test, % (authors' protocol)", "verdict"] == "not reproduced"
    assert nums.loc["random-init ViT GCN T=0.1 test, % (authors' protocol)", "verdict"] == "reproduced"
    claim4 = report.claim_table(collected, cfg, data).set_index("claim").loc[4]
    assert claim4["verdict"] == "reproduced" and "gain +3.0%" in claim4["ours"]
    assert "our contrastive run has 2 epochs, theirs 1200" in \
        nums.loc["linear on contrastive ViT (authors' protocol), %", "reason"]


def test_a_gain_within_the_noise_is_inconclusive_in_the_table(stored):
    cfg, data = _cfg(), _Data()
    res = []
    for method, lin, gcn in ((CL, [0.80, 0.80], [0.796, 0.808]), (SL, [0.9, 0.9], [0.9, 0.9])):
        res += head_records("vit", method, "linear", lin, authors=0.8, parameters=5130)
        res += head_records("vit", method, "gcn", gcn, parameter=0.1, authors=0.8, parameters=652)
    _store(cfg, data, "classifiers", {"records": res})
    row = report.claim_table(report.collect(cfg, data), cfg, data).set_index("claim").loc[4]
    assert row["verdict"] == "inconclusive" and "within the seeds' spread" in row["reason"]


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
    paper_trend = run(CL, [(0, 550.0, 0.13), (10, 600.0, 0.5), (20, 300.0, 0.7)])
    ch_ends_above_epoch0 = run("simclr", [(0, 60.0, 0.07), (10, 250.0, 0.2), (20, 240.0, 0.24)])
    return {"encoder": "vit", "records": paper_trend + ch_ends_above_epoch0}


def _near_duplicates():
    return {"comparisons": [{"encoder": "vit", "method": CL, "schedule": "cosine", "epoch": 2, "pairs": [],
                             "cl_cosines": [0.995, 0.97], "sl_cosines": [-0.1, 0.3], "baseline": {}}]}


def test_dynamics_and_near_duplicates_verdicts(stored):
    cfg, data = _cfg(), _Data()
    _store(cfg, data, "dynamics", _dynamics())
    _store(cfg, data, "near_duplicates", _near_duplicates())
    collected = report.collect(cfg, data)
    dyn = report.numbers(collected, cfg, data).set_index("what")
    assert dyn.loc["trend over training, vit moco_queue (cosine schedule)", "verdict"] == "reproduced"
    assert dyn.loc["trend over training, vit simclr (cosine schedule)", "verdict"] == "not reproduced"
    assert "peak 250 (e10)" in dyn.loc["trend over training, vit simclr (cosine schedule)", "ours"]
    c6 = report.claim_table(collected, cfg, data).set_index("claim").loc[6]
    assert c6["verdict"] == "reproduced" and "vit moco_queue: max CL cos 0.995" in c6["ours"]


def test_styled_table_colours_each_verdict(stored):
    cfg, data = _cfg(), _Data()
    html = report.styled(report.claim_table(report.collect(cfg, data), cfg, data)).to_html()
    style = html.split("</style>")[0]  # pandas writes one CSS rule per style, listing its cells
    rule = next(r for r in style.split("}") if report.VERDICT_COLOURS["missing"] in r)
    assert rule.count("_col4") == 6  # every verdict cell of the 6 claims
    assert report.VERDICT_COLOURS["reproduced"] not in style
    assert set(report.VERDICT_COLOURS) == VERDICTS


# ============================================ a full build ============================================


def _embeddings(cl_knn=0.7, sl_knn=0.9):
    records = tidy("vit", CL, R.KNN, {10: cl_knn, 200: cl_knn - 0.05}, epoch=1200)
    records += tidy("vit", SL, R.KNN, {10: sl_knn, 200: sl_knn - 0.05}, epoch=600)
    return {"records": records, "provenance": [], "queries": [0, 1], "neighbours": []}


def _purity():
    out = []
    for m, wide, local in ((CL, (0.9, 0.5), (0.9, 0.8)), (SL, (0.95, 0.94), (0.95, 0.94))):
        out += tidy("vit", m, R.MAP_PURITY_WIDE, {0.5: wide[0], 498.0: wide[1]})
        out += tidy("vit", m, R.MAP_PURITY, {0.5: local[0], 498.0: local[1]})
    return {"records": out}


def _training():
    hw = {"cpu": "cpu", "cores": 2, "memory_gib": 4.0, "gpu": None}
    return {"runs": [{"encoder": "vit", "method": m, "schedule": "cosine", "epochs": 2, "batch_size": 128,
                      "kind": "contrastive" if m == CL else "supervised", "epochs_done": done,
                      "stopped_early": None if done == 2 else "deadline", "parameters": 1000, "train_seconds": 120.0,
                      "images_per_s": 50.0, "final_loss": 1.23456, "device": "cpu", "processes": 1, "hardware": hw,
                      "commit": "abc", "run": f"vit-{m}-123", "log": []} for m, done in ((CL, 2), (SL, 1))]}


@pytest.fixture
def build(stored):
    """Every result a build reports on, hand-made: all claims hold, the SL encoder out of the regime."""
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


def test_claim_table_of_a_build(build):
    cfg, data = build
    collected = report.collect(cfg, data)
    table = report.claim_table(collected, cfg, data)
    assert list(table.columns) == ["claim", "statement", "paper", "ours", "verdict", "in regime", "reason"]
    assert list(table["claim"]) == [1, 2, 3, 4, 5, 6] and set(table["verdict"]) <= VERDICTS
    assert list(table["verdict"]) == ["reproduced"] * 6
    # claims compare CL with SL: the SL encoder is out of the regime, so every claim is
    assert list(table["in regime"]) == [False] * 6
    reg = {r["method"]: r for r in report.regime_table(collected)}
    assert reg[CL]["in_regime"] is True and reg[SL]["in_regime"] is False
    assert report.regime_table({**collected, "embeddings": store.Status("missing")}) == []


def test_summary_has_exactly_its_schema(build):
    cfg, data = build
    collected = report.collect(cfg, data)
    s = report.summary(collected, cfg, data, build_seconds=123.456)
    assert list(s) == ["profile", "dataset", "encoders", "claims", "build_seconds"]
    assert list(s) == list(report.SUMMARY_KEYS)
    assert (s["profile"], s["dataset"], s["build_seconds"]) == ("smoke", "cifar10", 123.5)
    assert all(list(e) == ["encoder", "method", "epochs", "knn_accuracy", "chi1_train", "in_regime"]
               for e in s["encoders"])
    enc = {e["method"]: e for e in s["encoders"]}
    assert enc[CL] == {"encoder": "vit", "method": CL, "epochs": 1200, "knn_accuracy": 0.7, "chi1_train": 0.873,
                       "in_regime": True}
    assert enc[SL]["epochs"] == 600 and enc[SL]["in_regime"] is False  # the epoch its features were measured at
    assert [c["claim"] for c in s["claims"]] == [1, 2, 3, 4, 5, 6]
    for c in s["claims"]:
        assert list(c) == ["claim", "verdict", "in_regime", "statement", "deciding"]
        assert c["verdict"] in {"reproduced", "inconclusive", "not reproduced", "not comparable", "missing"}
        assert c["in_regime"] in (True, False, None) and type(c["in_regime"]) in (bool, type(None))
        assert isinstance(c["claim"], int) and isinstance(c["statement"], str) and c["deciding"]
    assert "CHI(1) − CHI(1000)" in s["claims"][0]["deciding"]
    json.dumps(s, allow_nan=False)  # plain JSON, no NaN
    assert report.summary(collected, cfg, data, None)["build_seconds"] is None


def test_summary_of_an_empty_store(stored):
    cfg, data = _cfg(), _Data()
    s = report.summary(report.collect(cfg, data), cfg, data, None)
    assert s["encoders"] == [] and [c["verdict"] for c in s["claims"]] == ["missing"] * 6
    assert all(c["in_regime"] is None and c["deciding"] == "—" for c in s["claims"])


def test_write_and_read_summary(build, stored):
    cfg, data = build
    s = report.summary(report.collect(cfg, data), cfg, data, 10.0)
    path = report.write_summary(cfg, s)
    assert path == stored / "smoke" / "summary.json" and path.is_file()
    assert report.read_summary(path) == s
    assert report.read_summary(path.with_name("absent.json")) is None


def test_read_summary_names_a_broken_file(stored):
    path = stored / "smoke" / "summary.json"
    path.parent.mkdir(parents=True)
    path.write_text('{"profile": "smoke", "dataset": "cif')
    with pytest.raises(ValueError, match=rf"{path} cannot be read.*09_report.ipynb"):
        report.read_summary(path)
    path.write_text(json.dumps({"profile": "smoke", "dataset": "cifar10"}))
    with pytest.raises(ValueError, match=rf"{path} lacks \['encoders', 'claims', 'build_seconds'\]"):
        report.read_summary(path)
    for not_an_object in ("[1, 2]", "null", "5"):
        path.write_text(not_an_object)
        with pytest.raises(ValueError, match=str(path)):
            report.read_summary(path)


def test_findings_mention_every_claim_and_its_verdict(build):
    cfg, data = build
    s = report.summary(report.collect(cfg, data), cfg, data, None)
    s["claims"][3]["verdict"] = "inconclusive"
    md = report.findings_markdown(s, link="[report](09_report.ipynb)")
    assert md.startswith("On the `smoke` profile (cifar10):")
    for c in s["claims"]:
        assert f"**Claim {c['claim']}: {c['verdict']}**" in md and c["statement"] in md and c["deciding"] in md
    assert "- **Claim 4: inconclusive**" in md and "(encoders not in the paper's regime)" in md
    assert "vit moco_queue: kNN 70.0%, CHI(1) 0.873" in md and "[report](09_report.ipynb)" in md
    empty = report.findings_markdown(report.summary(report.collect(cfg, data), cfg, data, None) | {"encoders": []})
    assert "Encoders:" not in empty


def test_provenance_and_runs_tables(build):
    cfg, data = build
    collected = report.collect(cfg, data)
    prov = report.provenance(collected).set_index("result")
    assert set(prov.index) == {"geometry", "embeddings", "classifiers", "tsne_purity", "near_duplicates", "training"}
    assert (prov["state"] == "current").all() and prov.loc["geometry", "data sha256"] == "f" * 16
    runs = report.runs(collected)
    assert list(runs["epochs"]) == [2, "1 of 2 (stopped early)"] and list(runs["train time (min)"]) == [2.0, 2.0]
    assert report.runs({"training": store.Status("missing")}).empty


def test_a_result_of_older_code_is_reported_with_its_state(build, monkeypatch):
    cfg, data = build
    from clorg.core import code

    real = code._sha
    monkeypatch.setattr(code, "_sha", lambda p: "0" * 16 if p.name == "near_duplicates.py" else real(p))
    collected = report.collect(cfg, data)
    assert collected["near_duplicates"].kind == "code" and collected["near_duplicates"].usable
    assert report.claim_table(collected, cfg, data).set_index("claim").loc[6, "verdict"] == "reproduced"
    state = report.provenance(collected).set_index("result").loc["near_duplicates", "state"]
    assert "clorg/analysis/near_duplicates.py" in state
