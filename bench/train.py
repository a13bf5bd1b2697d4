"""Benchmark of training throughput: images/s of a real optimizer step for each encoder and method.

    python bench/train.py [--profile quick] [--device cpu|cuda] [--steps 5] [--skip-augment]
    python bench/train.py --device cuda --encoders resnet18 --methods simclr --width-scale 1 \\
        --batch-size 512 --images 50000          # the GPU target: one SimCLR epoch of CIFAR-10

Each row builds the method exactly as training does (clorg.train.loop.build_training), holds a uint8
dataset on the device and times ``train_step`` (augmentation on the device, forward, backward, AdamW)
after warm-up steps; images/s counts source images (a contrastive step makes two views of each). The
epoch and run columns project the profile's training-set size and epochs. Before it, the
augmentation table of bench/augment.py compares our batched views with torchvision's per-image
DataLoader pipeline (skip with --skip-augment).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from clorg.config import load_profile
from clorg.provenance import describe_hardware
from clorg.train.loop import build_training, train_step
from clorg.train.runs import kind_of, resolve


def time_steps(run_cfg: dict, images: torch.Tensor, labels: torch.Tensor, device: torch.device,
               steps: int, warmup: int) -> float:
    """Median seconds per optimizer step over ``steps`` timed steps."""
    torch.manual_seed(0)
    method, optimizer = build_training(run_cfg, images.shape[-1], images.shape[1], device)
    method.train()
    gen = torch.Generator(device=device).manual_seed(0)
    on_gpu = device.type == "cuda"
    times = []
    for i in range(warmup + steps):
        idx = torch.randint(0, len(images), (run_cfg["batch_size"],), device=device, generator=gen)
        t0 = time.perf_counter()
        train_step(method, method, optimizer, images[idx], labels[idx], gen, on_gpu)  # .item() syncs the GPU
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="quick")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--encoders", nargs="+", help="default: the profile's")
    ap.add_argument("--methods", nargs="+", help="default: the profile's")
    ap.add_argument("--width-scale", type=float, help="default: the profile's")
    ap.add_argument("--batch-size", type=int, help="default: the profile's per method kind")
    ap.add_argument("--images", type=int, help="training-set size for the epoch column (default: the profile's)")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    ap.add_argument("--skip-augment", action="store_true")
    args = ap.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    overrides = {}
    if args.width_scale:
        overrides["train.width_scale"] = args.width_scale
    if args.batch_size:
        overrides.update({"train.contrastive_batch_size": args.batch_size, "train.supervised_batch_size": args.batch_size})
    cfg = load_profile(args.profile, overrides)
    per_class = cfg["data"]["train_per_class"]
    n_images = args.images or (10 * per_class if per_class else 50000)
    summary = {"name": "cifar10", "sha256": "benchmark", "train_images": n_images, "image_shape": [32, 32, 3],
               "classes": [str(i) for i in range(10)]}
    gen = torch.Generator().manual_seed(0)
    pool = min(n_images, 8192)  # a pool of random images stands in for the data: the cost is the same
    images = torch.randint(0, 256, (pool, 32, 32, 3), dtype=torch.uint8, generator=gen).to(device)
    labels = torch.randint(0, 10, (pool,), generator=gen).to(device)

    if not args.skip_augment:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import augment as aug_bench  # bench/augment.py

        sys.argv = [sys.argv[0], "--device", args.device, "--images", "4096"]
        threads = torch.get_num_threads()
        print("### Two-view augmentation: clorg.augment against torchvision per image\n")
        aug_bench.main()
        torch.set_num_threads(threads)  # the augmentation benchmark pins its own thread count
        print()

    gpu = f", GPU {torch.cuda.get_device_name(device)}" if device.type == "cuda" else ""
    print(f"### Training steps, profile `{args.profile}` scale (width {cfg['train']['width_scale']})\n")
    print(f"machine: {describe_hardware()}{gpu}; torch {torch.__version__}, {torch.get_num_threads()} CPU threads; "
          f"load average {os.getloadavg()[0]:.1f}; median of {args.steps} steps after {args.warmup} warm-up\n")
    print("| encoder | method | batch | s/step | images/s | epoch of {:,} images (s) | epochs | run (min) |".format(n_images))
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for encoder in args.encoders or cfg["train"]["encoders"]:
        for method in args.methods or cfg["train"]["methods"]:
            run_cfg = resolve(cfg, encoder, method, summary)
            seconds = time_steps(run_cfg, images, labels, device, args.steps, args.warmup)
            rate = run_cfg["batch_size"] / seconds
            epoch_s = (n_images // run_cfg["batch_size"]) * seconds
            epochs = cfg["train"][f"{kind_of(method)}_epochs"]
            print(f"| {encoder} | {method} | {run_cfg['batch_size']} | {seconds:.3f} | {rate:,.0f} | {epoch_s:,.1f} | "
                  f"{epochs} | {epochs * epoch_s / 60:,.1f} |", flush=True)


if __name__ == "__main__":
    main()
