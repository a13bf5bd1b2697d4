"""Compute every chapter's stored results without Jupyter: the same functions the notebooks call.

    python -m clorg.book --profile gpu10 [--only 04_metrics] [--fresh] [--override KEY=VALUE]
                         [--budget 540 --train-budget 300] [--allow-cpu]

Trains the profile's runs (chapter 02, reusing finished runs), then computes chapters 01 and 03-08 in
book order into results/<profile>/ (or $CLORG_RESULTS), then writes results/<profile>/summary.json as
the report chapter does. Each step's wall time is printed as it ends (flushed), so a run cut off still
says how far it got.

With ``--budget S`` the whole command stops itself within S seconds of its start: training stops at the
end of the last epoch that finishes within ``--train-budget`` seconds (default: half of S), checkpointed
and marked as stopped early; the chapters then compute from what exists, and a chapter that would start
after the budget is spent is skipped and reported missing. The book says all of this on its pages.
``--train-budget`` alone bounds training only.
Exit status: 0 when every chapter ran, 3 when some were skipped for time, 2 for a bad profile or data, or for a
GPU profile whose results this machine (no GPU, no --allow-cpu) would have to compute, 1 when a chapter stopped
on an error whose message says what to do (a damaged result or run file, a diverged run), 130 when interrupted
(Ctrl-C): what finished is kept, and the same command resumes.
"""

from __future__ import annotations

import argparse
import math
import signal
import sys
import time

from ..core.config import ConfigError, parse_overrides
from ..data import DatasetError, DatasetNotFoundError


def _stops() -> tuple[type[Exception], ...]:
    """The errors that stop a chapter with a message saying what to do (damaged or mismatched stored results,
    an unreadable run file or checkpoint, a diverged run, a run that does not exist yet, a setting that only the
    chapter finds wrong, e.g. a snapshot the run did not keep); any other exception is a bug, and keeps its
    traceback."""
    from ..train import TrainingDiverged
    from ..train.checkpoint import UnreadableCheckpoint
    from ..train.runs import UnreadableRunFile
    from .store import ResultsMismatch, UnreadableResult

    return (ResultsMismatch, UnreadableResult, UnreadableCheckpoint, UnreadableRunFile, TrainingDiverged,
            FileNotFoundError, ConfigError)


def _say(message: str) -> None:
    print(message, flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m clorg.book", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", required=True)
    ap.add_argument("--override", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--only", action="append", default=[], metavar="STEM", help="only these chapters (e.g. 04_metrics)")
    ap.add_argument("--fresh", action="store_true", help="recompute every result and retrain every run")
    ap.add_argument("--budget", type=float, help="seconds the whole command may take")
    ap.add_argument("--train-budget", type=float, help="seconds training may take (default: half of --budget)")
    ap.add_argument("--allow-cpu", action="store_true",
                    help="compute a GPU profile on the CPU: from its committed weights where they exist (full size: "
                         "hours on two cores), else training it (at full size unless --override shrinks it)")
    args = ap.parse_args(argv)
    if any(b is not None and not (math.isfinite(b) and b >= 0) for b in (args.budget, args.train_budget)):
        print("error: --budget and --train-budget are a finite number of seconds, at least 0", file=sys.stderr)
        return 2
    started = time.time()
    if args.allow_cpu:
        import os

        os.environ["CLORG_ALLOW_CPU"] = "1"

    from . import brief_errors, chapters, report, summary  # after argument parsing: these import torch
    from .store import NeedsGpu

    stops = _stops()
    unknown = [s for s in args.only if s not in chapters.COMPUTE]  # before the data is read: a typo is seen at once
    if unknown:
        print(f"error: --only {unknown}: chapters that compute results are {list(chapters.COMPUTE)}", file=sys.stderr)
        return 2
    try:
        cfg, data = chapters.setup(args.profile, parse_overrides(args.override), only=args.only)
    # ValueError: what the data stage says of a dataset name it does not know
    except (ConfigError, DatasetNotFoundError, DatasetError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    deadline = started + args.budget if args.budget is not None else None  # --budget 0 is a budget, spent at once
    train_until = None  # --train-budget alone bounds training only; --budget alone gives training half of it
    if args.train_budget is not None or deadline:
        train_until = started + (args.train_budget if args.train_budget is not None else args.budget / 2)
    skipped, times = [], []
    for stem, compute in chapters.compute_steps(train_until).items():
        if args.only and stem not in args.only:
            continue
        if deadline and time.time() >= deadline:
            skipped.append(stem)
            _say(f"[{time.time() - started:6.0f} s] {stem}: skipped, the budget of {args.budget:.0f} s is spent")
            continue
        t0 = time.time()
        _say(f"[{t0 - started:6.0f} s] {stem} ...")
        try:
            compute(cfg, data, args.fresh)
        except KeyboardInterrupt:  # Ctrl-C: what finished is stored (a run's epochs, a chapter's heads), atomically
            print(f"\ninterrupted during {stem}: {brief_errors.KEPT}; run the same command again to resume",
                  file=sys.stderr)
            return 130
        except stops as exc:  # their messages say what is wrong and what to do; a traceback would bury that
            print(f"error: {stem}: {type(exc).__name__}: {exc}", file=sys.stderr)
            # a GPU profile is refused here, as `python -m clorg.train` refuses it; a bad setting as setup refuses one
            return 2 if isinstance(exc, (NeedsGpu, ConfigError)) else 1
        times.append((stem, time.time() - t0))
        _say(f"[{time.time() - started:6.0f} s] {stem}: done in {times[-1][1]:.1f} s")
    # the build's time only when this command computed the whole book: --only's minutes are not a build's,
    # nor those of a budget that skipped chapters
    whole = not args.only and not skipped
    built = summary.build(report.collect(cfg, data), cfg, data, time.time() - started if whole else None)
    path = summary.write(cfg, built)
    _say(f"[{time.time() - started:6.0f} s] summary: {path}")
    _say("\n| step | seconds |\n|---|---:|\n" + "\n".join(f"| {s} | {t:.1f} |" for s, t in times)
         + f"\n| total | {time.time() - started:.1f} |")
    for c in built["claims"]:
        _say(f"claim {c['claim']}: {c['verdict']}")
    return 3 if skipped else 0


if __name__ == "__main__":
    # a scheduler's or `kill`'s SIGTERM ends the command as Ctrl-C does: a write in progress is undone, and the
    # command says what is kept and how to resume (signal's default handler raises KeyboardInterrupt)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    sys.exit(main())
