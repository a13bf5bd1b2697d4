"""clorg.train.speed: the timings the GPU job records, checked on the CPU at a tiny size (no timing is
asserted, only what the measurements are made of and how they add up)."""

from __future__ import annotations

import pytest
import torch

from clorg.core.config import RunSpec, load_profile
from clorg.train import loop, resolve, speed

# 16x16 random images, a 1/16-width ResNet-18, batch 16, a queue of 3 batches: a step in milliseconds
SUMMARY = {"name": "random", "sha256": "x", "train_images": 64, "image_shape": [16, 16, 3],
           "classes": [str(i) for i in range(10)]}


def run_cfg(method: str, **train) -> dict:
    over = {"train.width_scale": 0.0625, "train.contrastive_batch_size": 16, "train.supervised_batch_size": 16,
            "train.moco_queue_size": 48, "train.precision": "fp32", **{f"train.{k}": v for k, v in train.items()}}
    return resolve(load_profile("smoke", over), RunSpec("resnet18", method, "cosine"), SUMMARY)


def data(n=64, size=16):
    g = torch.Generator().manual_seed(0)
    return (torch.randint(0, 256, (n, size, size, 3), dtype=torch.uint8, generator=g),
            torch.randint(0, 10, (n,), generator=g))


@pytest.mark.parametrize("method", ["moco_queue", "supervised"])
@pytest.mark.parametrize("channels_last", [False, True])
def test_the_profiled_step_is_the_training_step(method, channels_last):
    """profiled_step copies train_step (the loop stays free of profiler ranges): same loss, same weights."""
    cfg = run_cfg(method, channels_last=channels_last)
    images, labels = data()
    after = []
    for step in (loop.train_step, None):
        torch.manual_seed(0)
        m, opt = loop.build_training(cfg, 3, 16, torch.device("cpu"))
        m.train()
        gen = torch.Generator().manual_seed(1)
        losses = []
        for i in range(3):
            x, y = images[i * 16:(i + 1) * 16], labels[i * 16:(i + 1) * 16]
            if step:
                losses.append(float(step(m, m, opt, x, y, gen, cfg, None)))
            else:
                losses.append(float(speed.profiled_step(m, opt, x, y, gen, cfg, None)))
        after.append((losses, [p.detach().clone() for p in m.parameters()]))
    assert after[0][0] == after[1][0]
    assert all(torch.equal(a, b) for a, b in zip(after[0][1], after[1][1]))


@pytest.mark.parametrize("name, kind", [
    ("aten::cudnn_convolution", "convolution"), ("aten::convolution_backward", "convolution"),
    ("aten::native_batch_norm", "batch norm"), ("aten::cudnn_batch_norm_backward", "batch norm"),
    ("aten::addmm", "matrix product"), ("aten::mm", "matrix product"),
    ("aten::_foreach_mul_", "optimizer and momentum"), ("aten::_fused_adamw_", "optimizer and momentum"),
    ("aten::copy_", "copy, cast, index"), ("aten::index", "copy, cast, index"),
    ("aten::relu_", "elementwise and other"), ("aten::threshold_backward", "elementwise and other")])
def test_operators_fall_into_their_kind(name, kind):
    assert speed.kind_of_op(name) == kind


def test_the_breakdown_splits_a_moco_step_by_phase_and_kind():
    images, labels = data()
    out = speed.breakdown(run_cfg("moco_queue"), images, labels, torch.device("cpu"), steps=2, warmup=1)
    assert list(out["phases_ms"]) == [*speed.PHASES, "outside"] and list(out["kinds_ms"]) == list(speed.KINDS)
    # both add up the same operators' time, once each
    assert sum(out["phases_ms"].values()) == pytest.approx(out["busy_ms"], abs=0.05)
    assert sum(out["kinds_ms"].values()) == pytest.approx(out["busy_ms"], abs=0.05)
    # every phase of a step is seen, and the network's own operators are named
    assert all(out["phases_ms"][p] > 0 for p in speed.PHASES)
    assert out["kinds_ms"]["convolution"] > 0 and out["kinds_ms"]["batch norm"] > 0
    assert out["kinds_ms"]["matrix product"] > 0  # the predictor and the logits against the queue
    # on a CPU the operators' time is the step's, less the Python between them
    assert out["busy_ms"] <= out["wall_ms"]


def test_compile_gain_times_eager_and_compiled_side_by_side():
    """The compiled path, through dynamo with its no-op backend (inductor's code generation would take
    minutes here); the warm-up fills the MoCo queue (3 batches of 16, the current one first: 2 to fill)."""
    images, labels = data()
    cfg = run_cfg("moco_queue")
    out = speed.compile_gain(cfg, images, labels, torch.device("cpu"), steps_per_epoch=4, train_seconds=10.0,
                             steps=2, backend="eager")
    assert out["warmup_steps"] == 3 + 3 and out["backend"] == "eager"
    assert out["eager_seconds_per_step"] > 0 and out["compiled_seconds_per_step"] > 0
    assert out["speedup"] == pytest.approx(out["eager_seconds_per_step"] / out["compiled_seconds_per_step"], rel=1e-2)
    epoch_e = out["eager_seconds_per_step"] * 4
    assert out["epochs_in_budget"]["eager"] == int(10.0 // epoch_e)
    assert out["epochs_in_budget"]["compiled"] <= int(10.0 // (out["compiled_seconds_per_step"] * 4))


def test_batch_rates_time_each_batch_size():
    images, labels = data()
    out = speed.batch_rates(run_cfg("supervised"), images, labels, torch.device("cpu"), [8, 32], steps=1, warmup=1)
    assert list(out) == ["8", "32"]
    for b, row in out.items():
        assert row["images_per_s"] == pytest.approx(int(b) / row["seconds_per_step"], rel=1e-3)


def test_the_report_tabulates_what_the_job_measured():
    images, labels = data()
    cfg = run_cfg("moco_queue")
    study = {"method": "moco_queue", "breakdown": speed.breakdown(cfg, images, labels, torch.device("cpu"), steps=1,
                                                                  warmup=1),
             "batches": speed.batch_rates(cfg, images, labels, torch.device("cpu"), [8, 16], steps=1, warmup=1)}
    compiled = {"backend": "inductor", "batch": 512, "warmup_steps": 35, "eager_seconds_per_step": 0.0375,
                "compiled_seconds_per_step": 0.03, "speedup": 1.25, "compile_seconds": 50.0,
                "epochs_in_budget": {"train_seconds": 360.0, "eager": 99, "compiled": 106}}
    text = speed.report({"study": study, "compile": compiled})
    assert "| backward |" in text and "| convolution |" in text and "| 16 |" in text
    assert "1.25x" in text and "99 epochs eager, 106 compiled" in text
    # a job cut before the compile measurement reports the rest; one without either reports nothing
    assert "torch.compile" not in speed.report({"study": study}) and speed.report({}) == ""
    assert speed.report({"compile": compiled}).startswith("torch.compile (inductor)")


def test_a_profiler_that_records_nothing_says_so(monkeypatch):
    """A GPU without CUPTI: the profiler runs, but no kernel comes back; the breakdown must not read as a
    device that was idle."""
    import torch.profiler

    class Blind:
        def __init__(self, **_):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def events(self):
            return []

    monkeypatch.setattr(torch.profiler, "profile", Blind)
    images, labels = data()
    out = speed.breakdown(run_cfg("supervised"), images, labels, torch.device("cpu"), steps=1, warmup=0)
    assert out["measures"].startswith("nothing: the profiler recorded no kernel") and out["busy_ms"] == 0
