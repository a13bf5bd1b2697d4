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
    ("aten::_foreach_mul_", "fused updates"), ("aten::_fused_adamw_", "fused updates"),
    ("aten::copy_", "copy, cast, index"), ("aten::index", "copy, cast, index"),
    ("aten::relu_", "elementwise and other"), ("aten::threshold_backward", "elementwise and other")])
def test_operators_fall_into_their_kind(name, kind):
    assert speed.kind_of_op(name) == kind


def test_the_breakdown_splits_a_moco_step_by_phase_and_kind():
    images, labels = data()
    out = speed.breakdown(run_cfg("moco_queue"), images, labels, torch.device("cpu"), steps=2, warmup=1)
    assert list(out["phases_ms"]) == [*speed.PHASES, "outside"] and list(out["kinds_ms"]) == list(speed.KINDS)
    assert out["measures"] == "CPU aten operators"
    # every phase of a step is seen, and the network's own operators are named
    assert all(out["phases_ms"][p] > 0 for p in speed.PHASES)
    assert out["kinds_ms"]["convolution"] > 0 and out["kinds_ms"]["batch norm"] > 0
    assert out["kinds_ms"]["matrix product"] > 0  # the predictor and the logits against the queue
    assert out["kinds_ms"]["fused updates"] > 0  # the momentum update's foreach operations
    # the host's time between operators (Python, autograd's bookkeeping) is not an operator's
    assert out["busy_ms"] < out["wall_ms"]


class Event:
    """The fields of a profiler event that speed.tally reads."""

    def __init__(self, name, parent=None, kernels=(), cpu_us=0.0, device="CPU"):
        self.name, self.cpu_parent, self.self_cpu_time_total = name, parent, cpu_us
        self.kernels = [type("Kernel", (), {"duration": d})() for d in kernels]
        self.device_type, self.is_async = getattr(torch.autograd.DeviceType, device), False


def test_tally_counts_each_kernel_once_under_its_launching_operator_and_phase():
    forward = Event("clorg:forward")
    engine = Event("autograd::engine::evaluate_function: ConvolutionBackward0")  # the autograd thread: no clorg range
    conv_bwd = Event("aten::convolution_backward", engine)
    events = [forward, Event("aten::conv2d", forward), Event("aten::cudnn_convolution", Event("aten::conv2d", forward),
                                                             kernels=[30.0, 10.0]),
              Event("aten::add_", forward, kernels=[5.0]), engine, conv_bwd,
              Event("cudaLaunchKernel", conv_bwd), Event("aten::cudnn_convolution_backward", conv_bwd, kernels=[70.0]),
              Event("sm90_xmma_fprop_kernel", kernels=[999.0], device="CUDA"),  # the device's own record: skipped
              Event("aten::_foreach_mul_", Event("clorg:forward"), kernels=[2.0])]
    phases, kinds = speed.tally(events, gpu=True)
    assert dict(phases) == {"forward": 47.0, "backward": 70.0}
    assert dict(kinds) == {"convolution": 110.0, "elementwise and other": 5.0, "fused updates": 2.0}


def test_tally_on_a_cpu_counts_aten_operators_own_time_only():
    step = Event("clorg:backward", cpu_us=50.0)  # Python in the range: the host's
    node = Event("ConvolutionBackward0", step, cpu_us=7.0)  # autograd's bookkeeping: the host's
    events = [step, node, Event("aten::convolution_backward", node, cpu_us=100.0),
              Event("aten::native_batch_norm_backward", node, cpu_us=40.0)]
    phases, kinds = speed.tally(events, gpu=False)
    assert dict(phases) == {"backward": 140.0} and dict(kinds) == {"convolution": 100.0, "batch norm": 40.0}


def test_compile_gain_compiles_the_networks_once_after_the_queue_fills():
    """The compiled path through dynamo with its no-op backend (inductor's code generation would take minutes
    here). A queue of 10 batches of 16: compiled whole, the method would recompile at each of its 9 fill
    counts and hit dynamo's limit of 8 (made to fail here); its networks compile once each, whatever the fill."""
    images, labels = data()
    cfg = run_cfg("moco_queue", moco_queue_size=160)
    halves = []
    out = speed.compile_gain(cfg, images, labels, torch.device("cpu"), steps_per_epoch=4, train_seconds=10.0,
                             steps=2, backend="eager", on_eager=halves.append)
    assert speed.queue_batches(cfg) == 9
    assert out["backend"] == "eager" and out["graphs"] == 3  # encoder, predictor, momentum encoder (no grad)
    assert halves == [{"backend": "eager", "batch": 16, "eager_seconds_per_step": out["eager_seconds_per_step"]}]


def test_compile_gain_arithmetic(monkeypatch):
    """Eager steps of 0.04 s; compiled, the first three 10 s, 1 s and 0.03 s, then 0.03 s: 10.94 s of
    compilation; 100 s of 10-step epochs hold 250 epochs eager, (100 - 10.94) / 0.3 = 296 compiled."""
    calls = iter([[0.04] * 11, [10.0, 1.0, 0.03], [0.03] * 2])  # 11: the 9 steps that fill the queue, 2 timed
    monkeypatch.setattr(speed, "_step_times", lambda *a: next(calls))
    out = speed.compile_gain(run_cfg("moco_queue", moco_queue_size=160), *data(), torch.device("cpu"),
                             steps_per_epoch=10, train_seconds=100.0, steps=2, backend="eager")
    assert (out["eager_seconds_per_step"], out["compiled_seconds_per_step"], out["speedup"]) == (0.04, 0.03, 1.333)
    assert out["compile_seconds"] == 10.9 and out["epochs_in_budget"] == {"train_seconds": 100.0, "eager": 250,
                                                                          "compiled": 296}


def test_batch_rates_time_each_batch_size():
    images, labels = data()
    out = speed.batch_rates(run_cfg("supervised"), images, labels, torch.device("cpu"), [8, 32], steps=1, warmup=1)
    assert list(out) == ["8", "32"]
    for b, row in out.items():  # images/s rounded to 0.1, from the step time before it was rounded to 1e-5 s
        s = row["seconds_per_step"]  # whose rounding moves b / s by up to b * 5e-6 / s**2: 2.5 at 4 ms a step
        assert row["images_per_s"] == pytest.approx(int(b) / s, abs=0.05 + int(b) * 5e-6 / (s - 5e-6) ** 2 + 1e-9)


def test_the_report_tabulates_what_the_job_measured():
    images, labels = data()
    cfg = run_cfg("moco_queue")
    measured = {"method": "moco_queue",
                "breakdown": speed.breakdown(cfg, images, labels, torch.device("cpu"), steps=1, warmup=1),
                "batches": speed.batch_rates(cfg, images, labels, torch.device("cpu"), [8, 16], steps=1, warmup=1),
                "compile": {"backend": "inductor", "batch": 512, "eager_seconds_per_step": 0.0375,
                            "compiled_seconds_per_step": 0.03, "speedup": 1.25, "compile_seconds": 50.0,
                            "compile_steps": 3, "graphs": 3,
                            "epochs_in_budget": {"train_seconds": 360.0, "eager": 99, "compiled": 106}}}
    text = speed.report(measured)
    assert "| backward |" in text and "| convolution |" in text and "| 16 |" in text
    assert "unprofiled step" in text  # the profiled wall is set beside a step without the profiler
    assert "1.25x" in text and "99 epochs eager, 106 compiled" in text
    # a job cut during the compilation reports its eager half; one that measured nothing reports nothing
    cut = {"compile": {"backend": "inductor", "batch": 512, "eager_seconds_per_step": 0.0375, "unfinished_after_s": 61}}
    assert "did not finish within the 61 s" in speed.report(cut) and "0.0375 s a step eager" in speed.report(cut)
    assert speed.report({"method": "moco_queue"}) == ""


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


def test_the_report_of_a_compile_measurement_stopped_before_its_eager_half():
    text = speed.report({"compile": {"backend": "inductor", "batch": 512, "unfinished_after_s": 45}})
    assert text == ("torch.compile (inductor) of the networks at batch 512; the measurement did not finish within "
                    "the 45 s the job had left")
