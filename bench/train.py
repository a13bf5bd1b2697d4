"""Benchmark of training speed: images/s of a real optimizer step, and what each setting buys.

    python bench/train.py [--profile quick] [--device cpu|cuda] [--steps 8] [--skip-augment] [--skip-settings]
                          [--breakdown]
    python bench/train.py --device cuda --encoders resnet18 --methods moco_queue --width-scale 1 \\
        --batch-size 512 --images 50000          # the GPU target: one MoCo epoch of CIFAR-10

Every row builds the method exactly as training does (clorg.train.loop.build_training), holds a uint8
dataset on the device and times ``train_step`` (augmentation on the device, forward, backward, AdamW)
after warm-up steps; images/s counts source images (a contrastive step makes two views of each).

Tables, all measured in this one run so that their ratios compare like with like:

1. the augmentation against torchvision's per-image DataLoader pipeline (bench/augment.py);
2. settings, side by side, on the profile's first encoder and contrastive method: float32 against bf16
   autocast, contiguous against channels_last, eager against torch.compile (inductor) of the networks
   (clorg.train.speed.compile_networks: how a run would adopt it; ``train.compile`` wraps the whole method,
   which MoCo's queue makes recompile at every step until dynamo falls back to eager), 1 against 2 CPU
   threads, batch sizes, and the augmentation's share of a step; each with its ratio to the first row;
3. the profile's own settings for each (encoder, method), with the epoch and run times they imply;
4. with ``--breakdown``: where a step's time goes, by phase (augmentation, forward, backward, optimizer) and
   by kind of operation (convolutions, batch norm, ...), per method (clorg.train.speed; the GPU job records
   the same in its job.json).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch

from clorg.core.config import (CONTRASTIVE_METHODS, ENCODERS, METHODS, ConfigError, RunSpec, load_profile,
                               parse_overrides)
from clorg.core.provenance import describe_hardware
from clorg.train.augment import contrastive_views
from clorg.core.devices import cpu_has_bf16
from clorg.train import speed
from clorg.train.runs import resolve


def time_steps(run_cfg: dict, images: torch.Tensor, labels: torch.Tensor, device: torch.device,
               steps: int, warmup: int) -> float:
    """Median seconds per optimizer step over ``steps`` timed steps (compiled when the run says so)."""
    return speed.time_steps(run_cfg, images, labels, device, steps=steps, warmup=warmup,
                            backend="inductor" if run_cfg["compile"] else None)["seconds_per_step"]


def time_augment(images: torch.Tensor, batch: int, device: torch.device, steps: int) -> float:
    """Median seconds to make the two contrastive views of a batch."""
    gen = torch.Generator(device=device).manual_seed(0)
    times = []
    for _ in range(steps + 1):
        idx = torch.randint(0, len(images), (batch,), device=device, generator=gen)
        t0 = time.perf_counter()
        contrastive_views(images[idx], gen)
        times.append(time.perf_counter() - t0)
    return statistics.median(times[1:])


def settings_table(cfg, overrides, spec, summary, images, labels, device, steps, warmup) -> None:
    """Table 2: each setting against the first row (float32, contiguous, eager, 2 threads, batch 256)."""
    base = {"precision": "fp32", "channels_last": False, "compile": False}
    rows = [("float32, contiguous, eager", base, 2, 256),
            ("float32, channels_last", {**base, "channels_last": True}, 2, 256),
            ("bf16 autocast, contiguous", {**base, "precision": "bf16"}, 2, 256),
            ("bf16 autocast, channels_last", {**base, "precision": "bf16", "channels_last": True}, 2, 256),
            ("bf16, channels_last, torch.compile of the networks", {"precision": "bf16", "channels_last": True,
                                                                   "compile": True}, 2, 256),
            ("bf16, channels_last, 1 thread", {**base, "precision": "bf16", "channels_last": True}, 1, 256),
            ("bf16, channels_last, batch 128", {**base, "precision": "bf16", "channels_last": True}, 2, 128),
            ("bf16, channels_last, batch 512", {**base, "precision": "bf16", "channels_last": True}, 2, 512)]
    print(f"### Settings side by side: {spec.encoder} {spec.method} at width {cfg['train']['width_scale']}\n")
    print(f"CPU has native bf16: {cpu_has_bf16()}; median of {steps} steps after {warmup} warm-up "
          f"(torch.compile: its compilation is in the warm-up, and is reported separately)\n")
    print("| setting | threads | batch | s/step | images/s | ratio |")
    print("|---|---:|---:|---:|---:|---:|")
    first = None
    threads = torch.get_num_threads()
    for name, knobs, n_threads, batch in rows:
        torch.set_num_threads(n_threads)
        over = {**{f"train.{k}": v for k, v in knobs.items()}, "train.contrastive_batch_size": batch,
                "train.supervised_batch_size": batch}
        run_cfg = resolve(load_profile(cfg["profile"]["base"], {**overrides, **over}), spec, summary)
        t0 = time.perf_counter()
        seconds = time_steps(run_cfg, images, labels, device, steps, warmup + (2 if knobs["compile"] else 0))
        rate = batch / seconds
        first = first or rate
        extra = f" (warm-up with compilation: {time.perf_counter() - t0 - steps * seconds:.0f} s)" if knobs["compile"] else ""
        print(f"| {name}{extra} | {n_threads} | {batch} | {seconds:.3f} | {rate:,.0f} | {rate / first:.2f}x |", flush=True)
    torch.set_num_threads(threads)
    aug = time_augment(images, 256, device, steps)
    print(f"\nThe two-view augmentation of a batch of 256 alone: {aug:.3f} s, "
          f"{aug / (256 / first):.0%} of the first row's step.\n")


def breakdown_table(cfg: dict, encoder: str, methods, summary, images, labels, device, steps, warmup) -> None:
    """Table 4 (--breakdown): where a step's time goes, by phase and by kind of operation, per method at the
    profile's settings (the profiler's view: a GPU's kernels, a CPU's operators; clorg.train.speed)."""
    t = cfg["train"]
    parts = {m: speed.breakdown(resolve(cfg, RunSpec(encoder, m, t["schedule"]), summary), images, labels, device,
                                steps=steps, warmup=warmup) for m in methods}
    first = next(iter(parts.values()))
    print(f"### Where a step's time goes: {encoder}, ms per step ({first['measures']}, {steps} profiled steps "
          f"after {warmup})\n")
    print("| | " + " | ".join(f"{m} (batch {p['batch']})" for m, p in parts.items()) + " |")
    print("|---|" + "---:|" * len(parts))
    rows = [(f"phase: {k}", "phases_ms", k) for k in first["phases_ms"]]
    rows += [(f"kind: {k}", "kinds_ms", k) for k in first["kinds_ms"]]
    rows += [("busy (sum)", "busy_ms", None), ("wall", "wall_ms", None)]
    for label, key, sub in rows:
        cells = [p[key][sub] if sub else p[key] for p in parts.values()]
        print(f"| {label} | " + " | ".join(f"{c:,.1f}" for c in cells) + " |")
    print("\nBusy: the operators' own time (on a GPU, their kernels'); wall less busy is the host's (Python, "
          "autograd's bookkeeping). The profiler's own cost is in these times (on this project's 2-core CPUs from "
          "under 10 % to 1.5x a step, varying from one profiled run to the next): read the shares; a step's time is "
          "the unprofiled s/step above.\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="quick")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--encoders", nargs="+", choices=ENCODERS, help="default: the profile's")
    ap.add_argument("--methods", nargs="+", choices=METHODS, help="default: the profile's")
    ap.add_argument("--width-scale", type=float, help="default: the profile's")
    ap.add_argument("--batch-size", type=int, help="default: the profile's per method kind")
    ap.add_argument("--images", type=int, help="training-set size for the epoch column (default: the profile's)")
    ap.add_argument("--override", action="append", default=[], metavar="KEY=VALUE", help="a profile key, as elsewhere")
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--skip-augment", action="store_true")
    ap.add_argument("--skip-settings", action="store_true")
    ap.add_argument("--breakdown", action="store_true", help="also: where a step's time goes (the profiler)")
    args = ap.parse_args()
    if args.steps < 1 or args.warmup < 0:
        ap.error("--steps needs at least 1 timed step and --warmup at least 0")
    try:
        device = torch.device(args.device)
    except RuntimeError as exc:
        ap.error(f"--device {args.device!r}: {exc}")
    if device.type == "cuda" and not torch.cuda.is_available():
        ap.error(f"--device {args.device}: this machine has no CUDA GPU; time it with --device cpu")
    try:
        overrides = parse_overrides(args.override)
    except ConfigError as exc:
        ap.error(str(exc))
    if args.width_scale:
        overrides["train.width_scale"] = args.width_scale
    if args.batch_size:
        overrides.update({"train.contrastive_batch_size": args.batch_size, "train.supervised_batch_size": args.batch_size})
    try:
        cfg = load_profile(args.profile, overrides)
    except ConfigError as exc:
        ap.error(str(exc))
    per_class = cfg["data"]["train_per_class"]
    n_images = args.images or (10 * per_class if per_class else 50000)
    summary = {"name": "cifar10", "sha256": "benchmark", "train_images": n_images, "image_shape": [32, 32, 3],
               "classes": [str(i) for i in range(10)]}
    gen = torch.Generator().manual_seed(0)
    pool = min(n_images, 8192)  # a pool of random images stands in for the data: the cost is the same
    images = torch.randint(0, 256, (pool, 32, 32, 3), dtype=torch.uint8, generator=gen).to(device)
    labels = torch.randint(0, 10, (pool,), generator=gen).to(device)

    gpu = f", GPU {torch.cuda.get_device_name(device)}" if device.type == "cuda" else ""
    if args.skip_augment:  # else the augmentation table opens with the same line
        print(f"machine: {describe_hardware()}{gpu}; torch {torch.__version__}; load average "
              f"{os.getloadavg()[0]:.1f} at the start\n")
    if not args.skip_augment:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import augment as aug_bench  # bench/augment.py

        sys.argv = [sys.argv[0], "--device", args.device, "--images", "4096"]
        threads = torch.get_num_threads()
        print("### Two-view augmentation: clorg.train.augment against torchvision per image\n")
        aug_bench.main()
        torch.set_num_threads(threads)  # the augmentation benchmark pins its own thread count
        print()
    encoders = args.encoders or cfg["train"]["encoders"]
    methods = args.methods or cfg["train"]["methods"]
    if not args.skip_settings:
        contrastive = [m for m in methods if m in CONTRASTIVE_METHODS] or methods
        settings_table(cfg, overrides, RunSpec(encoders[0], contrastive[0], "cosine"), summary, images, labels,
                       device, args.steps, args.warmup)

    t = cfg["train"]
    print(f"### The profile's settings: `{args.profile}` (precision {t['precision']}, channels_last "
          f"{t['channels_last']}, compile {t['compile']}; {torch.get_num_threads()} threads)\n")
    print("| encoder | method | batch | s/step | images/s | epoch of {:,} images (s) | epochs | run (min) |".format(n_images))
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for encoder in encoders:
        for method in methods:
            run_cfg = resolve(cfg, RunSpec(encoder, method, t["schedule"]), summary)
            seconds = time_steps(run_cfg, images, labels, device, args.steps, args.warmup)
            rate = run_cfg["batch_size"] / seconds
            epoch_s = (n_images // run_cfg["batch_size"]) * seconds
            print(f"| {encoder} | {method} | {run_cfg['batch_size']} | {seconds:.3f} | {rate:,.0f} | {epoch_s:,.1f} | "
                  f"{run_cfg['epochs']} | {run_cfg['epochs'] * epoch_s / 60:,.1f} |", flush=True)
    if args.breakdown:
        print()
        breakdown_table(cfg, encoders[0], methods, summary, images, labels, device, min(args.steps, 5), args.warmup)


if __name__ == "__main__":
    main()
