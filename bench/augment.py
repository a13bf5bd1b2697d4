"""Benchmark of the two-view contrastive augmentation: clorg's batched tensor pipeline against
torchvision's per-image pipelines in a DataLoader, on CIFAR-shaped uint8 images.

    python bench/augment.py [--images 4096] [--repeats 3] [--device cpu|cuda] [--threads 1 2]
                            [--data random|cifar10]

Every pipeline makes the paper's asymmetric pair (SPEC section 3) for each image: RandomResizedCrop
(0.2-1, 3/4-4/3) -> brightness / contrast / saturation / hue jitter, each with p = 0.8 ->
grayscale p = 0.2 -> blur (view 1 always, view 2 p = 0.1; 13 taps, DALI's window at sigma 2) -> solarize (view 2, p = 0.2)
-> flip p = 0.5 -> normalise. The torchvision pipelines run per image in a DataLoader (batch 512,
2 workers by default, persistent, one warm-up pass not timed); ours indexes a uint8 tensor held on
the device and calls `contrastive_views` per batch of 512. Each row is the median over the timed
passes, all measured side by side in one run; images/s counts source images (two views each).
Prints a markdown table, with the machine's load average (the CPU may be shared).

Ours runs with 1 torch thread by default: on a shared 2-core machine, 2 intra-op threads collapse
when another process holds a core (OpenMP threads wait for each other); try `--threads 1 2`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from clorg.train.augment import IMAGENET_MEAN, IMAGENET_STD, blur_radius, contrastive_views
from clorg.core.provenance import describe_hardware

BATCH = 512

# ================================================================================================
# torchvision per-image pipelines (the baseline)
# ================================================================================================


def torchvision_view(api: str, blur_p: float, solarize_p: float, size: int = 32):
    """One view of the recipe with torchvision's transforms: api 'pil' (v1 on PIL images, the
    classic CIFAR recipe) or 'v2' (transforms.v2 on a uint8 CHW tensor per image)."""
    if api == "pil":
        from torchvision import transforms as T
        to_tensor, solarize_threshold = [T.ToTensor()], 128  # PIL solarize works on 0..255
    else:
        from torchvision.transforms import v2 as T
        to_tensor, solarize_threshold = [T.ToDtype(torch.float32, scale=True)], 128 / 255
    ops = [
        T.RandomResizedCrop(size, scale=(0.2, 1.0), ratio=(3 / 4, 4 / 3)),
        T.RandomApply([T.ColorJitter(brightness=0.4)], p=0.8),
        T.RandomApply([T.ColorJitter(contrast=0.4)], p=0.8),
        T.RandomApply([T.ColorJitter(saturation=0.2)], p=0.8),
        T.RandomApply([T.ColorJitter(hue=0.1)], p=0.8),
        T.RandomGrayscale(p=0.2),
        T.RandomApply([T.GaussianBlur(2 * blur_radius(2.0, size, size) + 1, sigma=(0.1, 2.0))], p=blur_p),
    ]
    if solarize_p > 0:
        ops.append(T.RandomSolarize(solarize_threshold, p=solarize_p))
    ops += [T.RandomHorizontalFlip(p=0.5), *to_tensor, T.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
    return T.Compose(ops)


class TwoViews(Dataset):
    """Per-image dataset returning the pair (view 1, view 2) of image i."""

    def __init__(self, images: np.ndarray, api: str):
        self.images, self.api = images, api
        self.view1 = torchvision_view(api, blur_p=1.0, solarize_p=0.0)
        self.view2 = torchvision_view(api, blur_p=0.1, solarize_p=0.2)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        img = self.images[i]
        img = Image.fromarray(img) if self.api == "pil" else torch.from_numpy(img).permute(2, 0, 1)
        return self.view1(img), self.view2(img)


def time_dataloader(images: np.ndarray, api: str, workers: int, repeats: int) -> list[float]:
    """Seconds per pass over the images, after one untimed warm-up pass (worker start-up)."""
    loader = DataLoader(TwoViews(images, api), batch_size=BATCH, shuffle=True, num_workers=workers,
                        persistent_workers=workers > 0)
    times = []
    for rep in range(repeats + 1):
        t0 = time.perf_counter()
        for v1, v2 in loader:
            pass
        if rep > 0:
            times.append(time.perf_counter() - t0)
    return times


# ================================================================================================
# Ours: batched tensor ops on the device
# ================================================================================================


def time_ours(images: np.ndarray, device: torch.device, threads: int, repeats: int) -> list[float]:
    """Seconds per pass: shuffle, index a batch of the on-device uint8 tensor, make both views."""
    torch.set_num_threads(threads)
    data = torch.from_numpy(images).to(device)
    gen = torch.Generator(device=device).manual_seed(0)

    def one_pass():
        order = torch.randperm(len(data), generator=gen, device=device)
        for start in range(0, len(data), BATCH):
            v1, v2 = contrastive_views(data[order[start:start + BATCH]], gen)
        if device.type == "cuda":
            torch.cuda.synchronize()

    times = []
    for rep in range(repeats + 1):  # first pass: warm-up (allocator, kernels), not timed
        t0 = time.perf_counter()
        one_pass()
        if rep > 0:
            times.append(time.perf_counter() - t0)
    return times


# ================================================================================================
# Main
# ================================================================================================


def load_images(kind: str, n: int, root: Path) -> np.ndarray:
    if kind == "cifar10":
        from clorg.data import load_dataset
        return np.ascontiguousarray(load_dataset("cifar10", "train", root=root).images[:n])
    return np.random.default_rng(0).integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=4096, help="images per pass")
    ap.add_argument("--repeats", type=int, default=3, help="timed passes per pipeline (median reported)")
    ap.add_argument("--device", default="cpu", help="device for ours (the baselines run on the CPU)")
    ap.add_argument("--threads", type=int, nargs="+", default=[1], help="torch CPU threads for ours")
    ap.add_argument("--workers", type=int, default=2, help="DataLoader workers for the baselines")
    ap.add_argument("--baselines", nargs="*", default=["pil", "v2"], choices=["pil", "v2"])
    ap.add_argument("--data", default="random", choices=["random", "cifar10"])
    ap.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    args = ap.parse_args()

    images = load_images(args.data, args.images, args.root)
    load_before = os.getloadavg()[0]
    device = torch.device(args.device)
    rows = []  # (pipeline, median seconds per pass)
    for api in args.baselines:
        name = f"torchvision {'v1 PIL' if api == 'pil' else 'v2 tensor'} per image, DataLoader {args.workers} workers"
        rows.append((name, statistics.median(time_dataloader(images, api, args.workers, args.repeats))))
    threads = args.threads if device.type == "cpu" else [torch.get_num_threads()]
    for t in threads:
        where = f"{t} thread{'s' if t > 1 else ''}" if device.type == "cpu" else str(device)
        rows.append((f"clorg.train.augment batched ({where})", statistics.median(time_ours(images, device, t, args.repeats))))

    print(f"machine: {describe_hardware()}; torch {torch.__version__}; "
          f"1-min load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after")
    if device.type == "cuda":
        print(f"gpu: {torch.cuda.get_device_name(device)}")
    print(f"{args.images} {args.data} uint8 images 32x32x3, batch {BATCH}, two views each, "
          f"median of {args.repeats} passes\n")
    reference = len(images) / rows[0][1]
    print("| pipeline | images/s | ratio |")
    print("|---|---:|---:|")
    for name, seconds in rows:
        rate = len(images) / seconds
        print(f"| {name} | {rate:,.0f} | {rate / reference:.1f}x |")


if __name__ == "__main__":
    main()
