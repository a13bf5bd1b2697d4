"""Command line: train one (encoder, method) of a profile, on one process or under torchrun.

    python -m clorg.train --config configs/quick.yaml --encoder resnet18 --method moco_queue
    python -m clorg.train --config quick --encoder resnet18 --method moco_queue --schedule paper-compressed
    torchrun --nproc_per_node=4 -m clorg.train --config paper --encoder vit --method moco_queue
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

import torch

from ..core.config import ENCODERS, METHODS, SCHEDULES, RunSpec, available_profiles, load_profile, parse_overrides
from ..core import variants
from ..core.devices import gpu_policy_allows
from ..data import DatasetError, DatasetNotFoundError, choose_profile_dataset
from .loop import TrainingDiverged, run
from ..core.atomic import WriteFailed
from .checkpoint import UnreadableCheckpoint
from .runs import UnreadableRunFile


def device_problem(device: str) -> str | None:
    """Why ``--device`` names no device of this machine (None: it does): cpu, cuda, or cuda:N below the count."""
    kind, colon, index = device.partition(":")
    if kind not in ("cpu", "cuda") or (colon and not index.isdigit()):
        return "a device is cpu, cuda or cuda:N"
    if kind == "cpu":
        return None
    if not torch.cuda.is_available():
        return "torch sees no GPU on this machine; use --device cpu, or leave --device out"
    if index and int(index) >= torch.cuda.device_count():
        return f"this machine has {torch.cuda.device_count()} GPU(s): cuda:0 to cuda:{torch.cuda.device_count() - 1}"
    return None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m clorg.train", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True,
                    help=f"profile name ({', '.join(available_profiles())}) or path of a profile YAML")
    ap.add_argument("--encoder", required=True, help=f"one of {', '.join(ENCODERS)}")
    ap.add_argument("--method", required=True, help=f"one of {', '.join(METHODS)}")
    ap.add_argument("--schedule", help=f"one of {', '.join(SCHEDULES)} (default: the profile's train.schedule)")
    ap.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                    help="replace a profile key, e.g. train.contrastive_epochs=5")
    ap.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda when available)")
    ap.add_argument("--force", action="store_true", help="retrain even if a finished run exists")
    ap.add_argument("--allow-cpu", action="store_true",
                    help="train a profile that needs a GPU (profile.needs_gpu) on the CPU anyway, shrunk with "
                         "--override (also: $CLORG_ALLOW_CPU=1)")
    args = ap.parse_args(argv)

    try:
        overrides = parse_overrides(args.override)
    except ValueError as exc:
        ap.error(str(exc))
    for name, value, valid in (("encoder", args.encoder, ENCODERS), ("method", args.method, METHODS),
                               ("schedule", args.schedule or SCHEDULES[0], SCHEDULES)):
        if value not in valid:
            ap.error(f"unknown {name} {value!r}; valid: {', '.join(valid)}")
    try:
        cfg = load_profile(args.config, overrides)
    except ValueError as exc:
        ap.error(str(exc))
    if args.device is not None and (problem := device_problem(args.device)):
        ap.error(f"--device {args.device}: {problem}")
    gpu = args.device != "cpu" and torch.cuda.is_available()
    if not gpu_policy_allows(cfg, gpu=gpu, allow_cpu=args.allow_cpu or None):
        where = "--device cpu was asked for" if args.device == "cpu" else "torch sees none on this machine"
        print(f"error: profile {variants.shown_profile(cfg)!r} needs a GPU (profile.needs_gpu: true) and {where}. "
              f"Train it where one is visible "
              f"(several GPUs: torchrun), or on the CPU anyway with --allow-cpu and --override options that shrink "
              f"it (README.md, section \"GPU evidence\", has such a command for gpu10)", file=sys.stderr)
        return 2

    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if distributed:  # started by torchrun: one process per device
        use_cuda = torch.cuda.is_available() and args.device != "cpu"
        if use_cuda:
            torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
        torch.distributed.init_process_group("nccl" if use_cuda else "gloo")
    try:
        data = choose_profile_dataset(cfg)
        if not distributed or torch.distributed.get_rank() == 0:
            print(data.describe(), flush=True)
        spec = RunSpec(args.encoder, args.method, args.schedule or cfg["train"]["schedule"])
        result = run(cfg, spec, data=data, force=args.force, device=args.device)
        if not distributed or torch.distributed.get_rank() == 0:
            verb = "reused finished run" if result.reused else "finished"
            print(f"{verb} {result.folder}: final loss {result.record['final_loss']:.4f}", flush=True)
    except (TrainingDiverged, DatasetNotFoundError, DatasetError, UnreadableRunFile, ValueError, WriteFailed,
            UnreadableCheckpoint) as exc:
        # a bad configuration or missing data is reported before any training; divergence after it
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # the last finished epoch is checkpointed: the same command resumes after it
        print("\ninterrupted: the run keeps its last finished epoch; run the same command again to resume it",
              file=sys.stderr)
        return 130
    finally:
        if distributed:
            torch.distributed.destroy_process_group()
    return 0


if __name__ == "__main__":
    # a scheduler's or `kill`'s SIGTERM ends the command as Ctrl-C does: a write in progress is undone, and the
    # command says what is kept and how to resume (signal's default handler raises KeyboardInterrupt)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    sys.exit(main())
