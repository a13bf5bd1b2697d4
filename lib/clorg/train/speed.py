"""Where a training step's time goes, measured on the device that trains: the median step time
(:func:`time_steps`), the device's time by phase of the step and by kind of operation (:func:`breakdown`,
from the profiler), the images/s at other batch sizes, and what torch.compile costs and gains
(:func:`compile_gain`).

The GPU job records these in its job.json (``speed``) after training (ci/device_job.py); bench/train.py
prints the same tables on any device (``--breakdown``). Nothing here trains a run or decides a number of
the book: it only times :func:`clorg.train.loop.train_step` and a copy of it with the profiler's ranges
(:func:`profiled_step`, held to the same arithmetic by a test).
"""

from __future__ import annotations

import statistics
import time
from collections import defaultdict

import torch

from .loop import _views, autocast_dtype, build_training, train_step

# the profiler ranges of profiled_step; the autograd engine's own ranges mark the backward pass
PHASES = ("augment", "forward", "backward", "optimizer")
_RANGE = "clorg:"
_AUTOGRAD = "autograd::engine::evaluate_function"

# kinds of operation, from the innermost aten operator's name; the first that matches wins
_MATMUL = {"mm", "addmm", "bmm", "baddbmm", "matmul", "linear", "_scaled_mm"}
_COPY = {"copy_", "_to_copy", "to", "clone", "contiguous", "cat", "stack", "index", "index_put_", "gather",
         "scatter", "index_select", "fill_", "zero_", "zeros", "empty", "empty_like", "ones_like", "remainder",
         "arange", "randint", "rand", "uniform_", "normal_", "bernoulli_"}
KINDS = ("convolution", "batch norm", "matrix product", "optimizer and momentum", "copy, cast, index",
         "elementwise and other")


def kind_of_op(name: str) -> str:
    """The kind of an aten operator (``"aten::cudnn_convolution"`` -> ``"convolution"``)."""
    op = name.removeprefix("aten::")
    if "conv" in op:
        return "convolution"
    if "batch_norm" in op:
        return "batch norm"
    if op in _MATMUL:
        return "matrix product"
    if op.startswith("_foreach") or "adam" in op:
        return "optimizer and momentum"
    if op in _COPY:
        return "copy, cast, index"
    return "elementwise and other"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _batch(images, labels, batch: int, generator: torch.Generator):
    idx = torch.randint(0, len(images), (batch,), device=images.device, generator=generator)
    return images[idx], labels[idx]


def _training(run_cfg: dict, images: torch.Tensor, device: torch.device):
    """The method and optimizer as training builds them, in training mode, seeded; cuDNN picks its fastest
    convolutions once per shape on a GPU, as in training."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    torch.manual_seed(0)
    method, optimizer = build_training(run_cfg, images.shape[-1], images.shape[1], device)
    method.train()
    return method, optimizer


def time_steps(run_cfg: dict, images: torch.Tensor, labels: torch.Tensor, device: torch.device, *,
               steps: int, warmup: int, backend: str | None = None) -> dict:
    """Median seconds per optimizer step of ``run_cfg`` on the uint8 ``images`` (held on ``device``), timed
    over ``steps`` steps after ``warmup``, each waited for (one step's time is one whole step).

    ``backend``: wrap the method in ``torch.compile(backend=...)`` as training does with ``train.compile``;
    its compilation (and any recompilation as a queue fills) falls in the warm-up. Returns
    ``seconds_per_step`` and ``warmup_seconds`` (the warm-up steps' wall time in all)."""
    method, optimizer = _training(run_cfg, images, device)
    if backend:
        torch._dynamo.reset()  # compiled from nothing: what a run pays, not a cache of an earlier measurement
    model = torch.compile(method, backend=backend) if backend else method
    dtype = autocast_dtype(run_cfg["precision"], device)
    gen = torch.Generator(device=device).manual_seed(0)
    times = []
    for _ in range(warmup + steps):
        x, y = _batch(images, labels, run_cfg["batch_size"], gen)
        t0 = time.perf_counter()
        float(train_step(model, method, optimizer, x, y, gen, run_cfg, dtype))  # waits for the step
        times.append(time.perf_counter() - t0)
    del method, optimizer, model
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return {"seconds_per_step": statistics.median(times[warmup:]), "warmup_seconds": sum(times[:warmup])}


def profiled_step(method, optimizer, x, y, generator, run_cfg: dict, dtype) -> torch.Tensor:
    """:func:`clorg.train.loop.train_step` with a profiler range around each phase (the training loop
    itself carries none: it is versioned code, and a range costs a little on every step)."""
    from torch.profiler import record_function

    with record_function(_RANGE + "augment"):
        views = _views(run_cfg, x, generator)
        if run_cfg["channels_last"]:
            views = tuple(v.contiguous(memory_format=torch.channels_last) for v in views)
    with record_function(_RANGE + "forward"):
        with torch.autocast(x.device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            loss = method(views, y)
    with record_function(_RANGE + "backward"):
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
    with record_function(_RANGE + "optimizer"):
        optimizer.step()
    return loss.detach()


def _phase_and_kind(event) -> tuple[str, str]:
    """The phase (the outermost range of :func:`profiled_step`, or the autograd engine's) and the kind
    (the innermost aten operator) an event's time belongs to."""
    phase, kind, e = None, None, event
    while e is not None:
        name = e.name
        if kind is None and name.startswith("aten::"):
            kind = kind_of_op(name)
        if name.startswith(_AUTOGRAD):
            phase = "backward"
        elif name.startswith(_RANGE):
            phase = name.removeprefix(_RANGE)
        e = e.cpu_parent
    return phase or "outside", kind or "elementwise and other"


def breakdown(run_cfg: dict, images: torch.Tensor, labels: torch.Tensor, device: torch.device, *,
              steps: int = 5, warmup: int = 3) -> dict:
    """Milliseconds per step by phase (:data:`PHASES`) and by kind of operation (:data:`KINDS`) over
    ``steps`` profiled steps after ``warmup``: on a GPU the time of the kernels each operation launched, on
    a CPU the operations' own time.

    ``busy_ms`` is their sum per step, ``wall_ms`` the profiled steps' wall time per step: on a GPU, busy well
    below wall means the device waits for the host (launches, syncs). The profiler's own cost is in a CPU's
    times (from under 10 % to 1.5x a step on two cores, varying between runs): there, read the shares, and
    take a step's time from :func:`time_steps`. A GPU's kernel times are the device's own.
    """
    from torch.profiler import ProfilerActivity, profile

    method, optimizer = _training(run_cfg, images, device)
    dtype = autocast_dtype(run_cfg["precision"], device)
    gen = torch.Generator(device=device).manual_seed(0)
    for _ in range(warmup):
        profiled_step(method, optimizer, *_batch(images, labels, run_cfg["batch_size"], gen), gen, run_cfg, dtype)
    _sync(device)
    gpu = device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if gpu else [])
    with profile(activities=activities) as prof:
        t0 = time.perf_counter()
        for _ in range(steps):
            profiled_step(method, optimizer, *_batch(images, labels, run_cfg["batch_size"], gen), gen, run_cfg, dtype)
        _sync(device)
        wall = time.perf_counter() - t0
    phases, kinds = defaultdict(float), defaultdict(float)
    for event in prof.events():
        if event.device_type != torch.autograd.DeviceType.CPU or event.is_async:
            continue  # a device kernel is counted with the operator that launched it
        us = sum(k.duration for k in event.kernels) if gpu else event.self_cpu_time_total
        if us:
            phase, kind = _phase_and_kind(event)
            phases[phase] += us
            kinds[kind] += us
    del method, optimizer
    per_step = 1e-3 / steps  # microseconds in all -> milliseconds per step
    measures = "device kernels" if gpu else "CPU operators"
    if not kinds:  # a GPU profiler without CUPTI records the operators but none of their kernels
        measures = "nothing: the profiler recorded no kernel (is CUPTI missing?)"
    return {"batch": run_cfg["batch_size"], "steps": steps, "measures": measures,
            "wall_ms": round(wall * 1e3 / steps, 2), "busy_ms": round(sum(kinds.values()) * per_step, 2),
            "phases_ms": {p: round(phases.get(p, 0.0) * per_step, 2) for p in (*PHASES, "outside")},
            "kinds_ms": {k: round(kinds.get(k, 0.0) * per_step, 2) for k in KINDS}}


def batch_rates(run_cfg: dict, images, labels, device, batches, *, steps: int, warmup: int) -> dict:
    """Images/s of an eager step at each batch size in ``batches`` (the run's learning rate scaled as
    training would; only the speed is read)."""
    out = {}
    for b in batches:
        t = time_steps({**run_cfg, "batch_size": b}, images, labels, device, steps=steps, warmup=warmup)
        out[str(b)] = {"seconds_per_step": round(t["seconds_per_step"], 5),
                       "images_per_s": round(b / t["seconds_per_step"], 1)}
    return out


def compile_gain(run_cfg: dict, images, labels, device, *, steps_per_epoch: int, train_seconds: float,
                 steps: int = 20, backend: str = "inductor") -> dict:
    """torch.compile's cost and gain on this device, eager and compiled timed side by side.

    The compiled warm-up is long enough to fill a MoCo queue (its length changes every step until it is
    full, and each new length may compile again, as it would in training), so ``compile_seconds``, the
    warm-up's excess over as many compiled steps, is what a run would pay. ``epochs_in_budget``: the
    epochs ``train_seconds`` holds eager and compiled (compilation paid first); compilation pays back
    within a run of that length when the second is larger."""
    queue_batches = -(-run_cfg["moco_queue_size"] // run_cfg["batch_size"]) if "moco_queue_size" in run_cfg else 0
    warmup = queue_batches + 3
    eager = time_steps(run_cfg, images, labels, device, steps=steps, warmup=warmup)
    compiled = time_steps(run_cfg, images, labels, device, steps=steps, warmup=warmup, backend=backend)
    step_e, step_c = eager["seconds_per_step"], compiled["seconds_per_step"]
    compile_s = max(0.0, compiled["warmup_seconds"] - warmup * step_c)
    epoch_e, epoch_c = step_e * steps_per_epoch, step_c * steps_per_epoch
    return {"backend": backend, "batch": run_cfg["batch_size"], "warmup_steps": warmup,
            "eager_seconds_per_step": round(step_e, 5), "compiled_seconds_per_step": round(step_c, 5),
            "speedup": round(step_e / step_c, 3), "compile_seconds": round(compile_s, 1),
            "epochs_in_budget": {"train_seconds": train_seconds, "eager": int(train_seconds // epoch_e),
                                 "compiled": int(max(0.0, train_seconds - compile_s) // epoch_c)}}


def report(measured: dict) -> str:
    """Markdown tables of a GPU job's ``speed`` record (job.json): the step's time by phase and kind, the
    images/s by batch, and torch.compile against eager; what is absent (a step skipped) is left out."""
    lines = []
    study = measured.get("study")
    if study:
        b = study["breakdown"]
        lines += [f"{study['method']} at batch {b['batch']}, ms per step ({b['measures']}, {b['steps']} profiled "
                  f"steps): busy {b['busy_ms']:,.1f} of {b['wall_ms']:,.1f} wall", "",
                  "| phase | ms | | kind | ms |", "|---|---:|---|---|---:|"]
        phases, kinds = list(b["phases_ms"].items()), list(b["kinds_ms"].items())
        for i in range(max(len(phases), len(kinds))):
            p = f"{phases[i][0]} | {phases[i][1]:,.1f}" if i < len(phases) else " | "
            k = f"{kinds[i][0]} | {kinds[i][1]:,.1f}" if i < len(kinds) else " | "
            lines.append(f"| {p} | | {k} |")
        lines += ["", "| batch | s/step | images/s |", "|---:|---:|---:|"]
        lines += [f"| {batch} | {r['seconds_per_step']:.4f} | {r['images_per_s']:,.0f} |"
                  for batch, r in study["batches"].items()]
    c = measured.get("compile")
    if c:
        e = c["epochs_in_budget"]
        lines += [""] if lines else []
        lines += [f"torch.compile ({c['backend']}) at batch {c['batch']}: {c['eager_seconds_per_step']:.4f} s a step "
                  f"eager, {c['compiled_seconds_per_step']:.4f} s compiled ({c['speedup']:.2f}x), "
                  f"{c['compile_seconds']:.0f} s to compile (over {c['warmup_steps']} warm-up steps); in "
                  f"{e['train_seconds']:.0f} s of training: {e['eager']} epochs eager, {e['compiled']} compiled"]
    return "\n".join(lines)
