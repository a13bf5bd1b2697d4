"""Train every (encoder, method) run of a profile, one after the other, each with clorg's training CLI.

    python ci/train_profile.py --profile gpu10 [--override data.train_per_class=50] [--allow-cpu] [--force]

Each run (the profile's encoder x method runs under its schedule, then its ``train.variants``) is
``python -m clorg.train --config <profile> --encoder E --method M --schedule S`` in its own process, so
a finished run is reused and an interrupted one resumes from its checkpoints/last.pt: running this
again after a crash (or ``make paper`` again) picks up where it stopped. With more than one GPU visible,
each run is started as ``torchrun --standalone --nproc_per_node=<GPUs> -m clorg.train ...``: one
process per GPU, the global batch split between them. Runs go to runs/<profile>/ (or $CLORG_RUNS).

A profile with ``profile.needs_gpu: true`` (gpu10, paper) is refused on a machine without a GPU, with
exit status 2, unless ``--allow-cpu`` is given (to train it here: at a reduced size only through overrides).
The wall time of each run and the total are printed at the end. The first run that fails stops the
script, with that run's exit status.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))  # works before `pip install -e .` too

from clorg.core import variants  # noqa: E402
from clorg.core.config import ConfigError, RunSpec, all_runs, load_profile, parse_overrides  # noqa: E402
from clorg.core.devices import gpu_policy_allows  # noqa: E402

REFUSED = 2  # exit status when the profile cannot train here: no GPU, or batches that do not split over the GPUs


def plan(cfg: dict) -> list[RunSpec]:
    """The runs of a profile in the order they are trained: encoder by encoder, then the variants."""
    return all_runs(cfg)


def gpu_refusal(cfg: dict, gpus: int, allow_cpu: bool) -> str | None:
    """Why this profile may not train here (a GPU profile on a machine with no GPU), or None."""
    if gpu_policy_allows(cfg, gpu=gpus > 0, allow_cpu=allow_cpu):
        return None
    name = variants.shown_profile(cfg)
    return (f"profile {name!r} needs a GPU (profile.needs_gpu: true) and torch sees none on this machine.\n"
            f"Run it where one is visible (`make {name}`, or python ci/train_profile.py --profile {name}); several "
            f"GPUs are used through torchrun.\nTo exercise it on the CPU anyway, pass --allow-cpu (make: ALLOW_CPU=1) "
            f"with overrides that shrink it: fewer images (data.train_per_class), a narrower encoder "
            f"(train.width_scale), batches and a queue that fit them, fewer epochs (README.md, section \"GPU "
            f"evidence\", has such a command for gpu10, which trains and renders it in minutes).")


def batch_problem(cfg: dict, gpus: int) -> str | None:
    """A batch size that does not split evenly over ``gpus`` processes, or None."""
    if gpus <= 1:
        return None
    t = cfg["train"]
    bad = [k for k in ("contrastive_batch_size", "supervised_batch_size") if t[k] % gpus]
    if not bad:
        return None
    return (f"train.{bad[0]} = {t[bad[0]]} does not split over {gpus} GPUs (one torchrun process each); "
            f"choose a multiple of {gpus}, or limit the GPUs with CUDA_VISIBLE_DEVICES")


def launcher(gpus: int) -> list[str]:
    """How a run is started: this Python with -m, or torchrun with one process per GPU."""
    if gpus <= 1:
        return [sys.executable, "-m", "clorg.train"]
    torchrun = Path(sys.executable).parent / "torchrun"
    start = [str(torchrun)] if torchrun.is_file() else [sys.executable, "-m", "torch.distributed.run"]
    return start + ["--standalone", f"--nproc_per_node={gpus}", "-m", "clorg.train"]


def train_command(profile: str, spec: RunSpec, overrides: list[str], gpus: int, force: bool = False) -> list[str]:
    """The command line of one run; ``overrides`` are the KEY=VALUE strings, passed on unchanged."""
    cmd = launcher(gpus) + ["--config", profile, "--encoder", spec.encoder, "--method", spec.method,
                            "--schedule", spec.schedule]
    for item in overrides:
        cmd += ["--override", item]
    return cmd + (["--force"] if force else [])


def shown(cmd: list[str]) -> str:
    """A command as one would type it: ``python`` and ``torchrun`` for the full paths."""
    words = ["python" if w == sys.executable else w for w in cmd]
    if Path(words[0]).name == "torchrun":
        words[0] = "torchrun"
    return " ".join(words)


def minutes(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", required=True, help="profile name (gpu10, paper, ...) or path of a profile YAML")
    ap.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                    help="replace a profile key for every run, e.g. data.train_per_class=50")
    ap.add_argument("--allow-cpu", action="store_true", help="train a needs_gpu profile without a GPU")
    ap.add_argument("--force", action="store_true", help="retrain runs that are already finished")
    args = ap.parse_args(argv)

    try:
        cfg = load_profile(args.profile, parse_overrides(args.override))
    except ConfigError as exc:
        ap.error(str(exc))
    import torch  # after the argument checks: importing torch takes seconds

    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    refusal = gpu_refusal(cfg, gpus, args.allow_cpu) or batch_problem(cfg, gpus)
    if refusal:
        print(f"error: {refusal}", file=sys.stderr)
        return REFUSED

    name, runs = cfg["profile"]["name"], plan(cfg)
    where = f"{gpus} GPUs (torchrun, one process each)" if gpus > 1 else ("1 GPU" if gpus else "the CPU")
    print(f"[{name}] {len(runs)} runs on {where}: " + ", ".join(f"{s.encoder}/{s.method}/{s.schedule}" for s in runs),
          flush=True)
    env = dict(os.environ)
    if args.allow_cpu:  # each run's own command refuses a GPU profile on the CPU unless asked too
        env["CLORG_ALLOW_CPU"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT / "lib"), env.get("PYTHONPATH")) if p)

    # each run's command starts in the root: a profile file given relative to here goes by its full path (the
    # profile's base, as load_profile records it: the name of a shipped profile, the full path of a file)
    profile = cfg["profile"]["base"]
    times, started = [], time.time()
    for i, spec in enumerate(runs, 1):
        encoder, method = spec.encoder, f"{spec.method}/{spec.schedule}"
        cmd = train_command(profile, spec, args.override, gpus, args.force)
        print(f"\n[{name}] run {i}/{len(runs)}: {shown(cmd)}", flush=True)
        t0 = time.time()
        try:
            rc = subprocess.run(cmd, cwd=ROOT, env=env).returncode
        except KeyboardInterrupt:  # the run got the signal too; its last checkpoint is kept
            rc = 130
        times.append((encoder, method, time.time() - t0, rc))
        print(f"[{name}] {encoder}/{method}: {'done' if rc == 0 else f'FAILED (exit {rc})'} in "
              f"{minutes(times[-1][2])}", flush=True)
        if rc:
            break

    print(f"\n[{name}] wall time per run:")
    for encoder, method, seconds, rc in times:
        print(f"  {encoder:>9} {method:<10} {minutes(seconds):>9}{'' if rc == 0 else '  FAILED'}")
    print(f"  {'total':>20} {minutes(time.time() - started):>9}", flush=True)
    failed = [t for t in times if t[3]]
    if failed:
        encoder, method, _, rc = failed[0]
        print(f"error: {encoder}/{method} stopped (exit {rc}), see its output above; the runs not listed were not "
              f"started. Run this again to resume: finished runs are reused, the stopped one resumes from its "
              f"last checkpoint", file=sys.stderr)
        return rc
    return 0


if __name__ == "__main__":
    sys.exit(main())
