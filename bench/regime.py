"""How close a training setting gets to the authors' regime per CPU minute: train it, then measure.

    python bench/regime.py --profile quick --method supervised \\
        --setting "crop 0.2-1, lr 1e-3" train.supervised_crop_scale=[0.2,1.0] train.supervised_lr=1e-3 \\
        --setting "crop 0.5-1, lr 4e-3" train.supervised_crop_scale=[0.5,1.0] train.supervised_lr=4e-3

Each ``--setting NAME KEY=VALUE ...`` is the profile with those overrides. It trains the first encoder
of the profile with ``--method`` (clorg.train.run, in a scratch runs folder unless $CLORG_RUNS is set, so
the profile's real runs stay untouched), then measures what the claims need: the kNN test accuracy
(k = 10, majority vote), CHI(1) and CHI(100) on the training features (the authors' supervised ViT:
0.990 and 0.989; contrastive: 0.873 and 0.805), the final loss, and the wall time of training. One row per
setting, printed as a markdown table; bench/results/regime.md keeps the tables behind the profiles'
choices. With ``--snapshots`` every encoder snapshot the run kept (``train.checkpoint_every``) is measured
too, a row per epoch: the measures against epochs of one run, without training a run per epoch count
(a snapshot is taken part-way down that run's schedule, not at the end of a shorter one).

With ``--warm-start`` each setting continues the profile's own finished run of ``--method`` instead of
starting from random weights: its final encoder (and head) exported in bfloat16 as a GPU job brings them
back (clorg.train.bundle), then ``train.warm_start`` at that folder, one more full schedule cycle. The first
row is the run it starts from. What the jobs of issue 19 add up to, measured on a CPU:

    python bench/regime.py --profile quick --method moco_queue --warm-start --snapshots --setting "warm start"
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch

from clorg.analysis.heads import KNNClassifier
from clorg.analysis.metrics import chi
from clorg.core.config import RunSpec, load_profile, parse_overrides
from clorg.core.provenance import describe_hardware
from clorg.data import choose_profile_dataset
from clorg.features import run_features
from clorg.train import bundle, run
from clorg.train.runs import load_finished


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="quick")
    ap.add_argument("--method", default="supervised")
    ap.add_argument("--setting", nargs="+", action="append", required=True, metavar="NAME KEY=VALUE")
    ap.add_argument("--snapshots", action="store_true", help="measure every kept snapshot too, a row per epoch")
    ap.add_argument("--warm-start", action="store_true",
                    help="each setting continues the profile's finished run of --method (train.warm_start)")
    args = ap.parse_args()
    start = export_start(args.profile, args.method) if args.warm_start else None  # before the scratch runs root
    if not os.environ.get("CLORG_RUNS"):
        os.environ["CLORG_RUNS"] = tempfile.mkdtemp(prefix="clorg-regime-")
    print(f"machine: {describe_hardware()}; torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"runs in {os.environ['CLORG_RUNS']}\n")
    print("| setting | epochs | train (min) | images/s | final loss | kNN test acc. | CHI(1) train | CHI(100) train |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    data = None
    if start:
        result, data, weights = start
        knn, c = measure(result, data, None)
        print(f"| the run it starts from ({result.folder.name}) | {result.final_epoch} | | "
              f"{result.record['images_per_s']:,.0f} | {result.record['final_loss']:.3f} | {knn:.1%} | {c[1]:.3f} | "
              f"{c[100]:.3f} |", flush=True)
    for name, *items in args.setting:
        if start:
            items = [*items, f"train.warm_start={weights}", f"train.warm_start_methods=[{args.method}]"]
        cfg = load_profile(args.profile, parse_overrides(items))
        data = data or choose_profile_dataset(cfg)
        spec = RunSpec(cfg["train"]["encoders"][0], args.method, cfg["train"]["schedule"])
        t0 = time.time()
        result = run(cfg, spec, data=data, progress=False)
        minutes = (time.time() - t0) / 60
        if args.snapshots:
            for epoch in result.files.snapshot_epochs():
                if epoch != result.final_epoch:
                    knn, c = measure(result, data, epoch)
                    print(f"| {name}, snapshot | {epoch} | | | | {knn:.1%} | {c[1]:.3f} | {c[100]:.3f} |", flush=True)
        knn, c = measure(result, data, None)
        print(f"| {name} | {result.final_epoch} | {minutes:.1f} | {result.record['images_per_s']:,.0f} | "
              f"{result.record['final_loss']:.3f} | {knn:.1%} | {c[1]:.3f} | {c[100]:.3f} |", flush=True)


def export_start(profile: str, method: str):
    """The profile's finished run of ``method`` (its first encoder), and a scratch folder holding its bundle."""
    cfg = load_profile(profile)
    data = choose_profile_dataset(cfg)
    result = load_finished(cfg, RunSpec(cfg["train"]["encoders"][0], method, cfg["train"]["schedule"]), data=data)
    weights = tempfile.mkdtemp(prefix="clorg-regime-weights-")
    bundle.export(result, Path(weights))
    return result, data, weights


def measure(result, data, epoch: int | None) -> tuple[float, dict]:
    """kNN test accuracy (k = 10) and CHI(1), CHI(100) on the training features of ``result`` at ``epoch``
    (None: the final encoder)."""
    f = run_features(result, data, epoch=epoch)
    knn = KNNClassifier(k=10).fit(f.train, f.train_labels).score(f.test, f.test_labels)
    return knn, chi(torch.as_tensor(f.train), f.train_labels, [1, 100], progress=False)


if __name__ == "__main__":
    main()
