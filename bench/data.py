"""Benchmark of the data layer: a cold load (decode + cache write) against a warm load (cache read), and
what the cache's integrity check costs.

    python bench/data.py [--root DIR] [--dataset cifar10]     # DIR: $CLORG_DATA, else data/, as everywhere

Prints a markdown table. The cold load runs against an empty temporary cache, so it measures the
full decode of the source; the warm loads then read the .npy cache written by the cold one, each
verifying the sha256 of the cached arrays (clorg.data.cache): the last column times that check alone.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from clorg.core.paths import data_root
from clorg.core.provenance import describe_hardware
from clorg.data import cache as data_cache, load_dataset


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--root", type=Path, default=data_root(),
                    help="where the datasets are (default: $CLORG_DATA, else the project's data/)")
    ap.add_argument("--dataset", default="cifar10")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    print(f"machine: {describe_hardware()}\n")
    print(f"| dataset | split | images | source | cold load (s) | warm load, best of {args.repeats} (s) | speed-up "
          f"| of the warm load: sha256 check (s) |")
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as cache:
        for split in ("train", "test"):
            def load():
                return load_dataset(args.dataset, split, root=args.root, cache_dir=cache, download=False)
            ds, cold = timed(load)
            warm = min(timed(load)[1] for _ in range(args.repeats))
            check = min(timed(lambda: data_cache.arrays_sha256(ds.images, ds.labels))[1] for _ in range(args.repeats))
            print(f"| {args.dataset} | {split} | {len(ds):,} | {ds.source} | {cold:.2f} | {warm:.3f} | "
                  f"{cold / warm:.0f}x | {check:.3f} ({check / warm:.0%}) |", flush=True)


if __name__ == "__main__":
    main()
