"""Where a training step's time goes, measured on the device that trains: the median step time
(:func:`time_steps`), the device's time by phase of the step and by kind of operation (:func:`breakdown`,
from the profiler), the images/s at other batch sizes (:func:`batch_rates`), and what torch.compile costs
and gains (:func:`compile_gain`).

The GPU job records these in its job record (``speed``) after training (ci/device_job.py); bench/train.py
prints the same tables on any device (``--breakdown``). Nothing here trains a run or decides a number of
the book: it only times :func:`clorg.train.loop.train_step` and a copy of it with the profiler's ranges
(:func:`profiled_step`, held to the same arithmetic by a test).

torch.compile is applied to the method's networks (:func:`compile_networks`), not to the method whole as
``train.compile`` does: MoCo's queue-fill count is a Python int on the module, which dynamo treats as a
constant, so the whole method recompiles at every step until the queue is full, and after dynamo's
recompile limit (8) runs eager; a measurement would time that as compiled.
"""

from __future__ import annotations

import math
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
# "fused updates": the GPU's fused AdamW and the momentum update's foreach kernels; a CPU's AdamW steps
# parameter by parameter, elementwise (its cost is the optimizer phase)
KINDS = ("convolution", "batch norm", "matrix product", "fused updates", "copy, cast, index",
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
        return "fused updates"
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


def compile_networks(method: torch.nn.Module, backend: str) -> None:
    """Compile each network of ``method`` in place (encoder, predictor, momentum encoder, classifier): their
    inputs keep one shape, so each compiles once; the loss and the queue around them stay eager."""
    for child in method.children():
        if next(child.parameters(), None) is not None:
            child.compile(backend=backend)


def _release(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()


def _step_times(method, optimizer, run_cfg: dict, images, labels, device, n: int, generator) -> list[float]:
    """Wall seconds of each of ``n`` optimizer steps, each waited for (one step's time is one whole step)."""
    dtype = autocast_dtype(run_cfg["precision"], device)
    times = []
    for _ in range(n):
        x, y = _batch(images, labels, run_cfg["batch_size"], generator)
        t0 = time.perf_counter()
        float(train_step(method, method, optimizer, x, y, generator, run_cfg, dtype))
        times.append(time.perf_counter() - t0)
    return times


def time_steps(run_cfg: dict, images: torch.Tensor, labels: torch.Tensor, device: torch.device, *,
               steps: int, warmup: int, backend: str | None = None) -> dict:
    """Median seconds per optimizer step of ``run_cfg`` on the uint8 ``images`` (held on ``device``), timed
    over ``steps`` steps after ``warmup``.

    ``backend``: the networks compiled with it first (:func:`compile_networks`); the compilation falls in
    the warm-up. Returns ``seconds_per_step`` and ``warmup_seconds`` (the warm-up's wall time in all)."""
    method, optimizer = _training(run_cfg, images, device)
    if backend:
        torch._dynamo.reset()  # no compiled code of an earlier measurement in memory (inductor's disk cache stays)
        compile_networks(method, backend)
    gen = torch.Generator(device=device).manual_seed(0)
    times = _step_times(method, optimizer, run_cfg, images, labels, device, warmup + steps, gen)
    del method, optimizer
    if backend:
        torch._dynamo.reset()
    _release(device)
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


def tally(events, gpu: bool) -> tuple[dict, dict]:
    """Microseconds by phase and by kind, from the profiler's events: on a GPU each operator's kernels (a
    kernel is listed under the operator that launched it; the device's own events are skipped), on a CPU
    each aten operator's own time (the time of ranges, autograd nodes and Python between operators is the
    host's, left out)."""
    phases, kinds = defaultdict(float), defaultdict(float)
    for event in events:
        if event.device_type != torch.autograd.DeviceType.CPU or event.is_async:
            continue
        if gpu:
            us = sum(k.duration for k in event.kernels)
        else:
            us = event.self_cpu_time_total if event.name.startswith("aten::") else 0
        if us:
            phase, kind = _phase_and_kind(event)
            phases[phase] += us
            kinds[kind] += us
    return phases, kinds


def breakdown(run_cfg: dict, images: torch.Tensor, labels: torch.Tensor, device: torch.device, *,
              steps: int = 5, warmup: int = 3) -> dict:
    """Milliseconds per step by phase (:data:`PHASES`) and by kind of operation (:data:`KINDS`) over
    ``steps`` profiled steps after ``warmup`` (:func:`tally`).

    ``busy_ms`` is their sum per step, ``wall_ms`` the profiled steps' wall time per step. The profiler adds
    its own cost to every operator on the host: a CPU's operators take longer under it (from under 10 % to
    1.5x a step on two cores, varying between runs), so read their shares; a GPU's kernel times are the
    device's own, but the profiled wall time is the host's, so compare busy with an unprofiled step
    (:func:`time_steps`): well below it, the device waits for the host (launches, syncs).
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
    phases, kinds = tally(prof.events(), gpu)
    del method, optimizer
    _release(device)
    per_step = 1e-3 / steps  # microseconds in all -> milliseconds per step
    measures = "device kernels" if gpu else "CPU aten operators"
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


def queue_batches(run_cfg: dict) -> int:
    """Steps until a MoCo queue is full (its ceil(size / B) batches, the current one first); 0 without one."""
    if "moco_queue_size" not in run_cfg:
        return 0
    return -(-run_cfg["moco_queue_size"] // run_cfg["batch_size"]) - 1


def compile_gain(run_cfg: dict, images, labels, device, *, steps_per_epoch: int, train_seconds: float,
                 steps: int = 20, compile_steps: int = 3, backend: str = "inductor", on_eager=None) -> dict:
    """torch.compile's cost and gain on this device, on one model: eager steps until a MoCo queue is full
    and ``steps`` more timed, then its networks compiled (:func:`compile_networks`), ``compile_steps`` steps
    that compile them (forward and backward), and ``steps`` compiled steps timed.

    ``compile_seconds``: those first compiled steps' excess over as many steady ones, what a run pays once;
    ``graphs``: how many graphs dynamo compiled (a few: one per network and mode), with dynamo made to fail
    rather than fall back to eager at its recompile limit. ``epochs_in_budget``: the epochs ``train_seconds``
    holds eager and compiled (compilation paid first): compiling pays back within a run of that length when
    the second is larger. ``on_eager`` receives the eager half as soon as it is measured (a caller that may
    be cut off during the compilation keeps it)."""
    from torch._dynamo.utils import counters

    method, optimizer = _training(run_cfg, images, device)
    gen = torch.Generator(device=device).manual_seed(0)
    fill = max(queue_batches(run_cfg), 3)  # the queue full, and the process's first steps untimed
    eager = _step_times(method, optimizer, run_cfg, images, labels, device, fill + steps, gen)[fill:]
    step_e = statistics.median(eager)
    out = {"backend": backend, "batch": run_cfg["batch_size"], "eager_seconds_per_step": round(step_e, 5)}
    if on_eager:
        on_eager(dict(out))
    torch._dynamo.reset()
    graphs = counters["stats"]["unique_graphs"]
    compile_networks(method, backend)
    strict = {"fail_on_recompile_limit_hit": True} if hasattr(torch._dynamo.config,
                                                              "fail_on_recompile_limit_hit") else {}
    with torch._dynamo.config.patch(**strict):
        first = _step_times(method, optimizer, run_cfg, images, labels, device, compile_steps, gen)
        step_c = statistics.median(_step_times(method, optimizer, run_cfg, images, labels, device, steps, gen))
    graphs = counters["stats"]["unique_graphs"] - graphs
    del method, optimizer
    torch._dynamo.reset()
    _release(device)
    compile_s = max(0.0, sum(first) - compile_steps * step_c)
    epoch_e, epoch_c = step_e * steps_per_epoch, step_c * steps_per_epoch
    return {**out, "compiled_seconds_per_step": round(step_c, 5), "speedup": round(step_e / step_c, 3),
            "compile_seconds": round(compile_s, 1), "compile_steps": compile_steps, "graphs": graphs,
            "epochs_in_budget": {"train_seconds": train_seconds, "eager": _whole(train_seconds / epoch_e),
                                 "compiled": _whole(max(0.0, train_seconds - compile_s) / epoch_c)}}


def _whole(epochs: float) -> int:
    return math.floor(round(epochs, 6))  # 100 s of 0.4-s epochs are 250, not the 249 float division gives


def report(measured: dict) -> str:
    """Markdown of a GPU job's ``speed`` record: the step's time by phase and kind (``breakdown``), images/s
    by batch (``batches``), and torch.compile against eager (``compile``; one the job cut off during the
    compilation has its eager half and ``unfinished_after_s``). What the job did not measure is left out."""
    lines = []
    b, rates, c = measured.get("breakdown"), measured.get("batches") or {}, measured.get("compile")
    if b:
        unprofiled = rates.get(str(b["batch"]))
        against = f", unprofiled step {unprofiled['seconds_per_step'] * 1e3:,.1f}" if unprofiled else ""
        lines += [f"{measured.get('method', '')} at batch {b['batch']}, ms per step ({b['measures']}, {b['steps']} "
                  f"profiled steps): busy {b['busy_ms']:,.1f}, profiled wall {b['wall_ms']:,.1f}{against}", "",
                  "| phase | ms | | kind | ms |", "|---|---:|---|---|---:|"]
        phases, kinds = list(b["phases_ms"].items()), list(b["kinds_ms"].items())
        for i in range(max(len(phases), len(kinds))):
            p = f"{phases[i][0]} | {phases[i][1]:,.1f}" if i < len(phases) else " | "
            k = f"{kinds[i][0]} | {kinds[i][1]:,.1f}" if i < len(kinds) else " | "
            lines.append(f"| {p} | | {k} |")
    if rates:
        lines += [""] if lines else []
        lines += ["| batch | s/step | images/s |", "|---:|---:|---:|"]
        lines += [f"| {batch} | {r['seconds_per_step']:.4f} | {r['images_per_s']:,.0f} |" for batch, r in rates.items()]
    if c:
        lines += [""] if lines else []
        head = f"torch.compile ({c['backend']}) of the networks at batch {c['batch']}"
        if "eager_seconds_per_step" in c:
            head += f": {c['eager_seconds_per_step']:.4f} s a step eager"
        if "compiled_seconds_per_step" not in c:
            lines.append(f"{head}; the measurement did not finish within the {c['unfinished_after_s']:.0f} s "
                         f"the job had left")
        else:
            e = c["epochs_in_budget"]
            lines.append(f"{head}, {c['compiled_seconds_per_step']:.4f} s compiled ({c['speedup']:.2f}x), "
                         f"{c['compile_seconds']:.0f} s to compile ({c['graphs']} graphs); in "
                         f"{e['train_seconds']:.0f} s of training: {e['eager']} epochs eager, {e['compiled']} compiled")
    return "\n".join(lines)
