"""The reproduction report (clorg.report): verdicts from stored results, never from a recomputation."""

from __future__ import annotations

import pytest

from clorg import paper, report, results
from clorg.config import load_profile


class _Data:
    def __init__(self, name="cifar10", train=50_000):
        self.name, self.train = name, train

    def summary(self):
        return {"name": self.name, "source": "x", "sha256": "f" * 64, "train_images": self.train,
                "test_images": 10_000, "skipped": [], "notes": []}


def _cfg(**train):
    cfg = load_profile("smoke")
    cfg["train"].update({"encoders": ["vit"], "width_scale": 1.0, "methods": ["moco_queue", "supervised"], **train})
    return cfg


def _geometry(cl_chi, sl_chi, cl_ch=100.0, sl_ch=900.0):
    def row(chi, ch, rld1, rld01):
        return {"CH": ch, "RLD T=1": rld1, "RLD T=0.5": rld1, "RLD T=0.2": rld01, "RLD T=0.1": rld01,
                **{f"CHI k={k}": v for k, v in zip(paper.CHI_KS, chi)}}
    table = {"vit moco_queue": row(cl_chi, cl_ch, 0.01, 0.5), "vit supervised": row(sl_chi, sl_ch, 0.4, 0.8),
             "vit random init": row([0.3] * 5, 592.5 * 1.05, 0.0137, 0.1255)}
    return {"table": table, "chi_ks": list(paper.CHI_KS), "chi_note": None}


def _store(cfg, data, tmp_path, name, payload):
    results.cached(cfg, data, name, lambda: payload, producer="test", root=tmp_path)


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("CLORG_RESULTS", str(tmp_path))
    return tmp_path


def test_missing_results_say_which_command_produces_them(store):
    cfg, data = _cfg(), _Data()
    collected = report.collect(cfg, data)
    assert all(v is None for v in collected.values())
    claims = report.claims(collected, cfg)
    assert list(claims["verdict"]) == ["missing"] * 6
    assert "--profile smoke --only 04_metrics" in claims.loc[0, "reason"]
    gaps = report.missing(collected, "smoke")
    assert len(gaps) == len(report.REPORTED) and "notebooks/06_classifiers.ipynb" in set(gaps["produced by"])


def test_comparable_chi_is_judged_within_the_tolerance(store):
    cfg, data = _cfg(contrastive_epochs=1200, supervised_epochs=600), _Data()
    cl = [v + 0.01 for v in paper.CHI_VIT["contrastive"]]
    sl = list(paper.CHI_VIT["supervised"])
    sl[-1] -= 0.2  # far from the authors' 0.988 at k = 1000
    _store(cfg, data, store, "geometry", _geometry(cl, sl))
    collected = report.collect(cfg, data)
    nums = report.numbers(collected, cfg, data).set_index("what")
    assert nums.loc["CHI(k), ViT contrastive, k=1", "verdict"] == "reproduced"
    assert nums.loc["CHI(k), ViT supervised, k=1000", "verdict"] == "not reproduced"
    assert nums.loc["random-init ViT CH", "verdict"] == "reproduced"  # 5 % off, 10 % tolerance
    assert nums.loc["random-init ViT RLD T=0.1", "ours"] == 0.1255
    claims = report.claims(collected, cfg).set_index("claim")
    assert claims.loc[1, "verdict"] == "not reproduced"  # the SL drop of 0.202 breaks it
    assert "SL 0.202" in claims.loc[1, "ours"]
    assert claims.loc[2, "verdict"] == "reproduced" and claims.loc[3, "verdict"] == "reproduced"


def test_another_encoder_or_a_subset_is_not_comparable(store):
    cfg = _cfg(encoders=["resnet18"], width_scale=0.125)
    data = _Data(train=10_000)
    _store(cfg, data, store, "geometry", {**_geometry([0.5] * 5, [0.5] * 5), "table": {}})
    nums = report.numbers(report.collect(cfg, data), cfg, data)
    chi = nums[nums["section"] == "CHI"]
    assert set(chi["verdict"]) == {"not comparable"}
    assert "this profile trains no vit" in chi["reason"].iloc[0] and "10,000 training images" in chi["reason"].iloc[0]


def test_heads_and_claim4_read_the_stored_classifiers(store):
    cfg, data = _cfg(), _Data()

    def head(acc, authors, params, val=0.5):
        return {"test": [acc], "test_mean": acc, "test_std": 0.0, "val_mean": val, "authors_protocol": authors,
                "parameters": params}
    res = {"vit moco_queue": {"linear": head(0.80, 0.8643, 5130), "gcn T=0.1": head(0.83, 0.90, 652, 0.6),
                              "gcn T=0.2": head(0.82, 0.81, 652, 0.5)},
           "vit supervised": {"linear": head(0.90, 0.9, 5130), "gcn T=0.1": head(0.90, 0.9, 652),
                              "gcn T=0.2": head(0.90, 0.9, 652)},
           "vit random init": {"linear": head(0.4, 0.43, 5130), "gcn T=0.1": head(0.3, 0.352, 652),
                               "gcn T=0.2": head(0.3, 0.2, 652)}}
    _store(cfg, data, store, "classifiers", res)
    collected = report.collect(cfg, data)
    nums = report.numbers(collected, cfg, data).set_index("what")
    assert nums.loc["linear on contrastive ViT (authors' protocol), %", "verdict"] == "reproduced"
    assert nums.loc["gcn T=0.1 on contrastive ViT (authors' protocol), %", "verdict"] == "not reproduced"
    assert nums.loc["random-init ViT GCN T=0.2 test, % (authors' protocol)", "verdict"] == "not reproduced"
    claim4 = report.claims(collected, cfg).set_index("claim").loc[4]
    assert claim4["verdict"] == "reproduced" and "gain +3.0%" in claim4["ours"]
    assert "our contrastive run has 2 epochs, theirs 1200" in \
        nums.loc["linear on contrastive ViT (authors' protocol), %", "reason"]


def test_results_of_other_data_are_refused_not_reported(store):
    cfg = _cfg()
    _store(cfg, _Data(), store, "geometry", _geometry([0.5] * 5, [0.5] * 5))
    with pytest.raises(results.ResultsMismatch, match="dataset"):
        report.collect(cfg, _Data(name="fashion-mnist"))


def test_dynamics_and_near_duplicates_verdicts(store):
    cfg, data = _cfg(), _Data()

    def rec(epoch, ch, rld01):
        return {"epoch": epoch, "CH": ch, "RLD T=1": 0.01, "RLD T=0.5": 0.02, "RLD T=0.1": rld01}
    _store(cfg, data, store, "dynamics", {"encoder": "vit", "runs": {
        "moco_queue": [rec(0, 550.0, 0.13), rec(10, 600.0, 0.5), rec(20, 300.0, 0.7)],   # the paper's trend
        "simclr": [rec(0, 60.0, 0.07), rec(10, 250.0, 0.2), rec(20, 240.0, 0.24)]}})     # CH ends above epoch 0
    claim6 = {"holds": True, "numbers": "max CL cos 0.995 with SL cos -0.1"}
    _store(cfg, data, store, "near_duplicates", {"vit moco_queue": {"claim6": claim6, "pairs": []}})
    collected = report.collect(cfg, data)
    dyn = report.numbers(collected, cfg, data).set_index("what")
    assert dyn.loc["trend over training, vit moco_queue", "verdict"] == "reproduced"
    assert dyn.loc["trend over training, vit simclr", "verdict"] == "not reproduced"
    assert "peak 250 (e10)" in dyn.loc["trend over training, vit simclr", "ours"]
    c6 = report.claims(collected, cfg).set_index("claim").loc[6]
    assert c6["verdict"] == "reproduced" and "vit moco_queue: max CL cos 0.995" in c6["ours"]


def test_styled_table_colours_each_verdict(store):
    cfg, data = _cfg(), _Data()
    html = report.styled(report.claims(report.collect(cfg, data), cfg)).to_html()
    style = html.split("</style>")[0]  # pandas writes one CSS rule per style, listing its cells
    rule = next(r for r in style.split("}") if report.VERDICT_COLOURS["missing"] in r)
    assert rule.count("_col4") == 6  # every verdict cell of the 6 claims
    assert report.VERDICT_COLOURS["reproduced"] not in style
