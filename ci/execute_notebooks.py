"""Execute every notebook of notebooks/ in order with papermill, on one profile.

    python ci/execute_notebooks.py --profile smoke [--only 00_data] [--override data.train_per_class=50]

Before any notebook runs, the profile's dataset is chosen (the first of its list that loads) and the
choice, with the reason each preferred dataset was passed over, is printed and written with the
commit and hardware to build/<profile>/build_info.json, which the book's intro shows. Executed copies
go to build/<profile>/notebooks/ (git-ignored); the sources stay without outputs. Each notebook's run
time and outcome go to build/<profile>/execution.json.

A GPU profile (``profile.needs_gpu: true``: gpu10, paper) on a machine where torch sees no GPU renders
from its stored results: a chapter whose results (clorg.chapters.PRODUCES) are all in results/<profile>/
executes and reads them; a chapter missing any is not executed, and its page says so, which files are
missing and the command that produces them (outcome "skipped: ..."). Chapters that store nothing (the
data page, the report) always execute. ``--allow-cpu`` executes every chapter anyway.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import nbformat
import papermill as pm
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))  # works before `pip install -e .` too

from clorg import provenance  # noqa: E402
from clorg.chapters import NEEDS_NO_RUNS, PRODUCES, command  # noqa: E402
from clorg.config import load_profile, parse_overrides  # noqa: E402
from clorg.data import choose_profile_dataset  # noqa: E402
from clorg.results import results_dir  # noqa: E402

MAKE_TARGETS = ("gpu10", "paper")  # profiles with their own target in the Makefile (train, then the book)


def write_json(path: Path, payload: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=1))
    os.replace(tmp, path)


def missing_results(stem: str, folder: Path) -> list[str]:
    """Names of the results chapter ``stem`` stores that are in ``folder`` neither as .json nor .npz."""
    return [n for n in PRODUCES.get(stem, ())
            if not (folder / f"{n}.json").is_file() and not (folder / f"{n}.npz").is_file()]


def shown_path(path: Path) -> str:
    """``path`` from the project root when it lies inside it (results/gpu10/...), else in full."""
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def skip_reason(stem: str, cfg: dict, folder: Path, *, cuda: bool, allow_cpu: bool = False) -> str | None:
    """Why chapter ``stem`` is not executed on this machine, or None to execute it.

    Only a GPU profile without a GPU skips anything, and then only a chapter some of whose stored
    results are missing from ``folder`` (results/<profile>/): one with all of them reads them and
    needs no GPU; one that stores nothing (not in PRODUCES) or needs no run (NEEDS_NO_RUNS) always runs.
    """
    if not cfg["profile"]["needs_gpu"] or cuda or allow_cpu or stem in NEEDS_NO_RUNS:
        return None
    missing = missing_results(stem, folder)
    if not missing:
        return None
    files = ", ".join(f"{shown_path(folder / n)}.json/.npz" for n in missing)
    return f"profile {cfg['profile']['name']} needs a GPU and this machine has none; missing {files}"


def produce_commands(profile: str, name: str, stem: str, overrides: list[str]) -> tuple[str, str]:
    """(everything, this chapter alone): the commands that produce a skipped chapter's results.

    ``profile`` is what was passed to --profile (a name or a YAML path), ``name`` the profile's name.
    """
    extra = "".join(f" --override {o}" for o in overrides)
    if name in MAKE_TARGETS and Path(profile).suffix not in (".yaml", ".yml"):
        everything = f"make {name}" + (f' OVERRIDES="{extra.strip()}"' if extra else "")
    else:
        everything = (f"python ci/train_profile.py --profile {profile}{extra} && "
                      f"python ci/execute_notebooks.py --profile {profile}{extra}")
    chapter = command(PRODUCES[stem][0], name).replace(f"--profile {name}", f"--profile {profile}") + extra
    return everything, chapter


def skipped_note(stem: str, cfg: dict, folder: Path, profile: str, overrides: list[str]) -> str:
    """The markdown cell that tells a reader why chapter ``stem`` was not executed in this build."""
    name = cfg["profile"]["name"]
    files = ", ".join(f"`{shown_path(folder / n)}.json` (or `.npz`)" for n in missing_results(stem, folder))
    everything, chapter = produce_commands(profile, name, stem, overrides)
    return (
        ":::{warning}\n"
        f"**This chapter was not executed in this build**: profile `{name}` needs a GPU "
        f"(`profile.needs_gpu: true`), this machine has none, and the results this chapter stores are "
        f"missing: {files}. Below is the chapter's code without its output.\n\n"
        f"To produce them, on a machine with a GPU run `{everything}`: it trains every run "
        f"(`python ci/train_profile.py --profile {profile}`), then executes every chapter. After that "
        f"training, this chapter alone is `{chapter}`. It stores its results in `{shown_path(folder)}/`; "
        f"once they are there (commit them), this page renders without a GPU.\n"
        ":::"
    )


def with_note(nb, note: str):
    """``nb`` with ``note`` as a markdown cell right below its '# Title' cell (the page title stays first)."""
    at = 1 if nb.cells and nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ") else 0
    nb.cells.insert(at, nbformat.v4.new_markdown_cell(note))
    return nb


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="quick")
    ap.add_argument("--override", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--only", action="append", default=[], metavar="NAME", help="run only these notebooks")
    ap.add_argument("--allow-cpu", action="store_true",
                    help="on a needs_gpu profile without a GPU, execute every chapter instead of skipping "
                         "those whose stored results are missing")
    args = ap.parse_args()

    try:
        overrides = parse_overrides(args.override)
    except ValueError as exc:
        raise SystemExit(str(exc)) from None
    cfg = load_profile(args.profile, overrides)
    name = cfg["profile"]["name"]
    out = ROOT / "build" / name
    (out / "notebooks").mkdir(parents=True, exist_ok=True)

    started = time.time()
    choice = choose_profile_dataset(cfg)
    print(choice.describe(), flush=True)
    write_json(out / "build_info.json", {
        "profile": name, "description": cfg["profile"]["description"], "overrides": overrides,
        "dataset": choice.summary(), "commit": provenance.git_commit(), "hardware": provenance.hardware(),
        "libraries": provenance.library_versions(),
        "built_at": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    })

    notebooks = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    if args.only:
        notebooks = [nb for nb in notebooks if nb.stem in args.only]
        if not notebooks:
            raise SystemExit(f"--only {args.only} matches none of {[p.stem for p in (ROOT / 'notebooks').glob('*.ipynb')]}")
    cuda = torch.cuda.is_available()
    stored = results_dir(name)
    status = []
    failed = None
    for nb in notebooks:
        target = out / "notebooks" / nb.name
        t0 = time.time()
        reason = skip_reason(nb.stem, cfg, stored, cuda=cuda, allow_cpu=args.allow_cpu)
        if reason:
            pm.execute_notebook(nb, target, parameters={"profile": args.profile, "overrides": overrides},
                                prepare_only=True, kernel_name="python3", progress_bar=False)
            note = skipped_note(nb.stem, cfg, stored, args.profile, args.override)
            nbformat.write(with_note(nbformat.read(target, as_version=4), note), target)
            status.append({"notebook": nb.stem, "seconds": 0.0, "outcome": f"skipped: {reason}"})
            print(f"[{name}] {nb.name}: not executed: {reason} (its page says how to produce them)", flush=True)
            continue
        print(f"[{name}] executing {nb.name} ...", flush=True)
        outcome = "ok"
        try:
            pm.execute_notebook(nb, target, parameters={"profile": args.profile, "overrides": overrides},
                                kernel_name="python3", cwd=str(ROOT / "notebooks"), progress_bar=False)
        except Exception as exc:  # papermill's error names the failing cell; the executed copy shows it
            outcome = f"failed: {type(exc).__name__}: {str(exc).strip().splitlines()[-1] if str(exc).strip() else ''}"
            failed = (nb.name, exc)
        seconds = time.time() - t0
        status.append({"notebook": nb.stem, "seconds": round(seconds, 1), "outcome": outcome})
        print(f"[{name}] {nb.name}: {outcome} in {seconds:.1f} s", flush=True)
        if failed:
            break
    write_json(out / "execution.json", {"profile": name, "total_seconds": round(time.time() - started, 1),
                                        "notebooks": status})
    if failed:
        print(f"\n{failed[0]} failed; its executed copy with the error is {out / 'notebooks' / failed[0]}\n"
              f"{failed[1]}", file=sys.stderr)
        return 1
    skipped = sum(s["outcome"].startswith("skipped") for s in status)
    done = f"{len(status) - skipped} notebooks executed, {skipped} skipped (no GPU, results missing)" if skipped \
        else f"all {len(status)} notebooks executed"
    print(f"[{name}] {done} in {time.time() - started:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
