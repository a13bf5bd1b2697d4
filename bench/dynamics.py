"""What each measurement of the dynamics chapter costs per snapshot, on a profile's own run.

    python bench/dynamics.py [--profile quick] [--epoch 40]

Chapter 07 measures every snapshot of the followed contrastive run. This times, on one snapshot of the
profile's trained run (``--epoch``; default its last): extracting the features (done once per snapshot and
kept), CH, RLD at the profile's temperatures, CHI at 1 and claim 1's k_max, the kNN probe, the heads of the
authors' Feateval, ours (``dynamics.heads``: one honest linear and one GCN fit) and theirs
(``dynamics.feateval``: a linear head and a GCN at each of ``heads.temperatures`` under their protocol),
both together (one graph per temperature for both), and the whole-set loss of their Losseval
(``dynamics.set_loss``). Multiply by the snapshots (``train.contrastive_epochs / train.checkpoint_every + 1``)
for the chapter. Needs the profile's runs (``make book PROFILE=...`` trains them); prints a markdown table.
"""

from __future__ import annotations

import argparse
import time

import torch

from clorg.analysis import metrics
from clorg.analysis.classify import snapshot_head_records
from clorg.analysis.geometry import class_size
from clorg.analysis.heads import KNNClassifier
from clorg.analysis.set_loss import view_outputs, whole_set_loss
from clorg.book.chapters import followed_runs
from clorg.core import criteria
from clorg.core.config import load_profile
from clorg.core.devices import default_device
from clorg.core.provenance import describe_hardware
from clorg.data import choose_profile_dataset
from clorg.features import profile_runs, run_features


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="quick")
    ap.add_argument("--epoch", type=int, help="the snapshot to time (default: the run's last)")
    args = ap.parse_args()
    cfg = load_profile(args.profile)
    data = choose_profile_dataset(cfg)
    (run, *_) = profile_runs(cfg, data, followed_runs(cfg))
    epoch = run.final_epoch if args.epoch is None else args.epoch
    device = default_device()
    rows = []

    def timed(what, fn):
        t0 = time.perf_counter()
        out = fn()
        rows.append((what, time.perf_counter() - t0))
        return out

    path = run.folder / f"features_e{epoch:04d}.npz"
    kept = path.is_file()
    f = timed("features (" + ("read from the run folder" if kept else "extracted") + ")",
              lambda: run_features(run, data, epoch=epoch, device=device))
    X = torch.as_tensor(f.train).to(device)
    timed("CH", lambda: metrics.calinski_harabasz(X, f.train_labels))
    timed(f"RLD at {cfg['dynamics']['rld_temperatures']}",
          lambda: metrics.rld_sweep(X, f.train_labels, cfg["dynamics"]["rld_temperatures"], progress=False))
    ks = sorted({1, criteria.claim1_k_max(class_size(f.train_labels))})
    timed(f"CHI at {ks} (added)", lambda: metrics.chi(X, f.train_labels, ks, progress=False))
    timed("kNN probe", lambda: KNNClassifier(k=cfg["dynamics"]["knn_k"]).fit(X, f.train_labels)
          .score(f.test, f.test_labels))
    timed("heads: linear + GCN, one honest fit each (dynamics.heads, added)",
          lambda: snapshot_head_records(f, cfg["heads"], ("ours",)))
    timed(f"heads: linear + GCN at T = {cfg['heads']['temperatures']}, the authors' protocol (Feateval)",
          lambda: snapshot_head_records(f, cfg["heads"], ("feateval",)))
    timed("heads: both of the above together (paper, smoke; the GCNs at a temperature both fit share its graph)",
          lambda: snapshot_head_records(f, cfg["heads"], ("ours", "feateval")))
    encoder = run.load_encoder(epoch=epoch, device=device)
    timed("whole-set loss (Losseval, added)",
          lambda: whole_set_loss(*view_outputs(encoder, data.train.images, run.config["seed"], device)))
    snapshots = cfg["train"]["contrastive_epochs"] // cfg["train"]["checkpoint_every"] + 1
    print(f"machine: {describe_hardware()}; profile {args.profile}, run {run.folder.name}, epoch {epoch}; "
          f"{len(f.train):,} training and {len(f.test):,} test images; {snapshots} snapshots per run\n")
    print("| measurement | seconds per snapshot | seconds per run |")
    print("|---|---:|---:|")
    for what, seconds in rows:
        print(f"| {what} | {seconds:.1f} | {seconds * snapshots:.0f} |")


if __name__ == "__main__":
    main()
