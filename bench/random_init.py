"""How far the random initialisation's RLD moves with the training seed alone: the baseline of claim 3(a)
(RLD_0.1(CL) − RLD_0.1(RI)) and of claim D's rise, which each build draws once.

    python bench/random_init.py --profile fashion --seeds 8

For each seed it builds the profile's first encoder as a run of that seed does before its first step
(``torch.manual_seed(seed)``, then the network: the run's epoch-0 snapshot), encodes the profile's training
images and computes RLD at the profile's temperatures (``metrics.rld_temperatures``) with the class labels.
No training: about 5 s a seed on two cores for fashion's 1/4-width ResNet-18. Prints a markdown table, a row
per seed, then the mean, standard deviation and range.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from clorg.analysis.metrics import rld_sweep
from clorg.core.config import load_profile
from clorg.core.provenance import describe_hardware
from clorg.data import choose_profile_dataset
from clorg.train.encode import encode
from clorg.train.models import build_encoder


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="fashion")
    ap.add_argument("--seeds", type=int, default=8, help="seeds 0 .. N-1")
    args = ap.parse_args()
    if args.seeds < 2:
        ap.error("--seeds: at least 2, for a standard deviation")
    cfg = load_profile(args.profile)
    data = choose_profile_dataset(cfg)
    images, labels = data.train.images, data.train.labels
    temperatures = list(cfg["metrics"]["rld_temperatures"])
    name, width = cfg["train"]["encoders"][0], cfg["train"]["width_scale"]
    print(f"machine: {describe_hardware()}; torch {torch.__version__}, {torch.get_num_threads()} threads\n\n"
          f"`{args.profile}`: {name} at width {width}, untrained, on {len(images):,} training images of "
          f"{data.summary()['name']}\n")
    print("| seed | " + " | ".join(f"RLD({t:g})" for t in temperatures) + " | seconds |")
    print("|---:|" + "---:|" * (len(temperatures) + 1))
    values = []
    for seed in range(args.seeds):
        t0 = time.time()
        torch.manual_seed(seed)  # as a run of this seed seeds itself before building its networks
        encoder = build_encoder(name, width_scale=width, in_channels=images.shape[-1],
                                image_size=images.shape[1]).eval()
        row = rld_sweep(encode(encoder, images), labels, temperatures, progress=False)
        values.append(row)
        print(f"| {seed} | " + " | ".join(f"{row[t]:.3f}" for t in temperatures) + f" | {time.time() - t0:.0f} |",
              flush=True)
    for what, f in (("mean", statistics.mean), ("standard deviation", statistics.stdev),
                    ("lowest", min), ("highest", max)):
        print(f"| {what} | " + " | ".join(f"{f([v[t] for v in values]):.3f}" for t in temperatures) + " | |")


if __name__ == "__main__":
    main()
