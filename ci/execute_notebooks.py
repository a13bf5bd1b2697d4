"""Execute every notebook of notebooks/ in order with papermill, on one profile.

    python ci/execute_notebooks.py --profile smoke [--only 00_data | --from 04_metrics] [--override data.train_per_class=50] [--fresh]

Before any notebook runs, the profile's dataset is chosen (the first of its list that loads) and the
choice, with the reason each preferred dataset was passed over, is printed and written with the
commit and hardware to build/<profile>/build_info.json, which the book's intro shows. Executed copies
go to build/<profile>/notebooks/ (git-ignored); the sources stay without outputs. Each notebook's run
time, outcome and warnings go to build/<profile>/execution.json, rewritten after every chapter.

``--fresh`` (``make book FRESH=1``) passes ``fresh=True`` to every chapter: each result is computed
again and every run is retrained, whatever is stored. Without it, a chapter reuses what is current
and warns about what is not (clorg.book.chapters.warnings): a page whose numbers come from runs
trained by older code, or from results computed by older code that this machine cannot recompute,
opens with a warning naming the changed files, and the execution-status page lists it.

A GPU profile (``profile.needs_gpu: true``: gpu10, paper) on a machine where torch sees no GPU renders
from its stored results: a chapter whose stored results are all readable for this profile
(clorg.book.chapters.status, the same check the results store makes) executes and reads them; a
chapter missing any is not executed, and its page says so, which files are missing and the command
that produces them (outcome "skipped: ..."). Chapters that read no run (the data page, the toy figure,
the report) always execute. ``--allow-cpu`` executes every chapter anyway.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import nbformat
import papermill as pm
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))  # works before `pip install -e .` too

from clorg.book import chapters  # noqa: E402
from clorg.core import provenance, variants  # noqa: E402
from clorg.core.atomic import write_json  # noqa: E402
from clorg.core.config import ConfigError, check_own_name, load_profile, parse_overrides  # noqa: E402
from clorg.core.devices import gpu_policy_allows  # noqa: E402
from clorg.core.paths import shown  # noqa: E402
from clorg.data import DatasetError, DatasetNotFoundError, choose_profile_dataset  # noqa: E402

MAKE_TARGETS = ("gpu10", "paper")  # profiles with their own target in the Makefile (train, then the book)


def missing_results(stem: str, cfg: dict, data) -> list[str]:
    """The results chapter ``stem`` stores that are not usable for this profile (missing, unreadable, of
    another configuration or format), as paths from the project root."""
    out = []
    for name in chapters.CHAPTERS[stem].produces:
        st = chapters.status(cfg, data, name)
        if not st.usable:
            out.append(st.detail)
    return out


def skip_reason(stem: str, cfg: dict, data, *, cuda: bool, allow_cpu: bool = False) -> str | None:
    """Why chapter ``stem`` is not executed on this machine, or None to execute it.

    Only a GPU profile without a GPU skips anything, and then only a chapter that reads runs and some of
    whose stored results are not usable: one with all of them reads them and needs no GPU."""
    chapter = chapters.CHAPTERS[stem]
    if gpu_policy_allows(cfg, gpu=cuda, allow_cpu=allow_cpu) or chapter.runs is None:
        return None
    missing = missing_results(stem, cfg, data)
    if not missing:
        return None
    return f"profile {cfg['profile']['name']} needs a GPU and this machine has none; " + "; ".join(missing)


def produce_commands(cfg: dict, stem: str) -> tuple[str, str]:
    """(everything, this chapter alone): the commands that produce a skipped chapter's results, each repeating
    the profile (a name or a YAML path) and its overrides, quoted for the shell."""
    args = variants.profile_args(cfg)
    if cfg["profile"]["name"] in MAKE_TARGETS and not cfg["profile"]["base"].endswith((".yaml", ".yml")):
        everything = chapters.make_command(cfg, target=None)
    else:
        everything = f"python ci/train_profile.py {args} && python ci/execute_notebooks.py {args}"
    return everything, f"python -m clorg.book {args} --only {stem}"


def skipped_note(stem: str, cfg: dict, data) -> str:
    """The markdown cell that tells a reader why chapter ``stem`` was not executed in this build."""
    name = cfg["profile"]["name"]
    everything, chapter = produce_commands(cfg, stem)
    folder = shown(chapters.store.results_dir(variants.folder_name(cfg)))
    return (
        ":::{warning}\n"
        f"**This chapter was not executed in this build**: profile `{name}` needs a GPU "
        f"(`profile.needs_gpu: true`), this machine has none, and the results this chapter stores are not "
        f"there: {'; '.join(missing_results(stem, cfg, data))}. Below is the chapter's code without its output.\n\n"
        f"To produce them, on a machine with a GPU run `{everything}`: it trains every run, then executes "
        f"every chapter. After that training, this chapter alone is `{chapter}`. It stores its results in "
        f"`{folder}/`; once they are there (commit them), this page renders without a GPU.\n"
        + from_weights_note(stem, cfg, data) + ":::"
    )


def from_weights_note(stem: str, cfg: dict, data) -> str:
    """How a chapter is computed from the profile's committed weights (weights/<profile>/), when there are
    some: on a GPU machine by an analysis job, or here on the CPU; empty when there are none."""
    name = cfg["profile"]["name"]
    weights = chapters.bundle.weights_root() / name
    if not chapters.computes_from_weights(cfg, data, stem):
        return ""
    overrides = chapters.override_args(cfg)
    extra = f" {shlex.join(overrides)}" if overrides else ""
    return (f"\nThe runs' trained weights are committed (`{shown(weights)}/`), so no training is needed: a short "
            f"GPU job computes this chapter from them, `ci/device_run.sh {name} 285 -- --only {stem}{extra}` "
            f"(README, GPU evidence), or this machine does, `{chapters.make_command(cfg, 'ALLOW_CPU=1')}` (hours at "
            f"full scale on two cores: every feature set is 60,000 images through the full-width encoder).\n")


def warning_note(warnings: list[str]) -> str:
    """The markdown cell that opens a chapter whose numbers are older than this commit's code."""
    return (":::{warning}\n**Numbers from older code.** " + " ".join(warnings) + "\n:::")


def with_note(nb, note: str):
    """``nb`` with ``note`` as a markdown cell right below its '# Title' cell (the page title stays first)."""
    at = 1 if nb.cells and nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ") else 0
    nb.cells.insert(at, nbformat.v4.new_markdown_cell(note))
    return nb


def previous_status(path: Path, rerun) -> list[dict]:
    """The entries of an earlier execution.json for the chapters this build does not run again."""
    import json

    try:
        notebooks = json.loads(path.read_text())["notebooks"]
    except (OSError, ValueError, KeyError):
        return []
    again = {nb.stem for nb in rerun}
    return [n for n in notebooks if n.get("notebook") not in again]


def failure(exc: Exception) -> str:
    """A failed notebook's outcome, one line: the exception raised in its cell (papermill's ename and evalue,
    the whole message), else, for papermill's own errors (a kernel that died), the last line of the error."""
    if isinstance(exc, pm.PapermillExecutionError):
        return f"failed: {exc.ename}: {' '.join(str(exc.evalue).split())}"
    text = str(exc).strip()
    return f"failed: {type(exc).__name__}: {text.splitlines()[-1] if text else ''}"


def tidy_for_the_page(nb):
    """The parameters cells are plumbing: papermill's injected copy and the notebook's own are removed from
    the rendered page (Jupyter Book's ``remove-cell`` tag); they stay in the executed notebook."""
    for cell in nb.cells:
        tags = cell.metadata.setdefault("tags", [])
        if ("parameters" in tags or "injected-parameters" in tags) and "remove-cell" not in tags:
            tags.append("remove-cell")
    return nb


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="quick")
    ap.add_argument("--override", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--only", action="append", default=[], metavar="NAME", help="run only these notebooks")
    ap.add_argument("--from", dest="start", metavar="NAME",
                    help="run this notebook and every one after it (a changed setting feeds the later chapters)")
    ap.add_argument("--fresh", action="store_true", help="recompute every result and retrain every run")
    ap.add_argument("--allow-cpu", action="store_true",
                    help="on a needs_gpu profile without a GPU, execute every chapter instead of skipping "
                         "those whose stored results are missing")
    args = ap.parse_args()

    try:
        overrides = parse_overrides(args.override)
        cfg = load_profile(args.profile, overrides)
        check_own_name(cfg)  # before any notebook writes results into a shipped profile's folder
    except (ValueError, ConfigError) as exc:  # an unknown profile or key, a wrong type: one line, exit 2
        print(exc, file=sys.stderr)
        raise SystemExit(2) from None
    # which notebooks, before the data is read or the build record rewritten: a typo in --only costs nothing
    notebooks = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    unknown = sorted(set(p.stem for p in notebooks) - set(chapters.CHAPTERS))
    if unknown:
        raise SystemExit(f"notebooks {unknown} are not in clorg.book.chapters.CHAPTERS: add them there")
    if args.only:
        notebooks = [nb for nb in notebooks if nb.stem in args.only]
        if not notebooks:
            print(f"--only {args.only} matches none of {sorted(chapters.CHAPTERS)}", file=sys.stderr)
            return 2
    if args.start:
        if args.start not in chapters.CHAPTERS:
            print(f"--from {args.start!r}: the chapters are {sorted(chapters.CHAPTERS)}", file=sys.stderr)
            return 2
        notebooks = [nb for nb in notebooks if nb.stem >= args.start]
    name = variants.folder_name(cfg)  # a profile with overrides builds apart from the plain one
    out = ROOT / "build" / name
    if args.allow_cpu:  # the kernels inherit it: clorg.book.chapters.can_compute reads it
        os.environ["CLORG_ALLOW_CPU"] = "1"

    started = time.time()
    try:
        choice = choose_profile_dataset(cfg)
    except (DatasetNotFoundError, DatasetError) as exc:  # where it looked and how to provide it: no traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(choice.describe(), flush=True)
    try:
        chapters.check_runs(cfg, choice)  # a run the data cannot hold: named before any notebook runs
        chapters.check_settings(cfg, choice, [nb.stem for nb in notebooks])  # so are settings it cannot hold
        chapters.install_committed(cfg, choice)  # runs trained elsewhere (weights/<profile>/): analysed here
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    (out / "notebooks").mkdir(parents=True, exist_ok=True)  # once the build can run: a refused one leaves none
    write_json(out / "build_info.json", {
        "profile": variants.shown_profile(cfg), "name": name, "description": cfg["profile"]["description"],
        "overrides": cfg["profile"]["overrides"],
        "dataset": choice.summary(), "commit": provenance.git_commit(), "hardware": provenance.hardware(),
        "libraries": provenance.library_versions(), "fresh": args.fresh,
        "built_at": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    })

    cuda = torch.cuda.is_available()
    status = []
    failed = None
    # a partial build (--only, --from) keeps the earlier chapters' entries: the status page lists every chapter
    earlier = [] if not (args.only or args.start) else previous_status(out / "execution.json", notebooks)

    def record() -> None:  # after every chapter, so a build cut off still says how far it got
        merged = sorted(earlier + status, key=lambda n: n["notebook"])
        write_json(out / "execution.json", {"profile": name, "total_seconds": round(time.time() - started, 1),
                                            "notebooks": merged})

    for nb in notebooks:
        target = out / "notebooks" / nb.name
        # the profile as loaded: a file by its absolute path, which the kernel (in notebooks/) reads too
        params = {"profile": cfg["profile"]["base"], "overrides": overrides}
        if chapters.CHAPTERS[nb.stem].produces:  # the chapters that store results take `fresh`
            params["fresh"] = args.fresh
        t0 = time.time()
        reason = skip_reason(nb.stem, cfg, choice, cuda=cuda, allow_cpu=args.allow_cpu)
        if reason:
            pm.execute_notebook(nb, target, parameters=params, prepare_only=True, kernel_name="python3",
                                progress_bar=False)
            note = skipped_note(nb.stem, cfg, choice)
            nbformat.write(tidy_for_the_page(with_note(nbformat.read(target, as_version=4), note)), target)
            status.append({"notebook": nb.stem, "seconds": 0.0, "outcome": f"skipped: {reason}", "warnings": []})
            print(f"[{name}] {nb.name}: not executed: {reason} (its page says how to produce them)", flush=True)
            record()
            continue
        print(f"[{name}] executing {nb.name} ...", flush=True)
        outcome = "ok"
        try:
            pm.execute_notebook(nb, target, parameters=params, kernel_name="python3", cwd=str(ROOT / "notebooks"),
                                progress_bar=False)
        except KeyboardInterrupt:  # Ctrl-C (papermill shuts the kernel down): what finished is stored
            print(f"\n[{name}] interrupted during {nb.name}: the chapters before it, a run's checkpointed epochs and "
                  f"a chapter's finished parts are kept; run the same command again to resume", file=sys.stderr)
            quiet_from_now()
            return 130
        except Exception as exc:  # papermill's error names the failing cell; the executed copy shows it
            outcome = failure(exc)
            failed = (nb.name, exc)
        seconds = time.time() - t0
        warned = [] if failed else chapters.warnings(cfg, choice, nb.stem)
        executed = tidy_for_the_page(nbformat.read(target, as_version=4))
        if warned:
            executed = with_note(executed, warning_note(warned))
        nbformat.write(executed, target)
        status.append({"notebook": nb.stem, "seconds": round(seconds, 1), "outcome": outcome, "warnings": warned})
        print(f"[{name}] {nb.name}: {outcome} in {seconds:.1f} s" + "".join(f"\n  warning: {w}" for w in warned),
              flush=True)
        record()
        if failed:
            break
    if failed:
        print(f"\n{failed[0]} failed; its executed copy with the error is {out / 'notebooks' / failed[0]}\n"
              f"{failed[1]}", file=sys.stderr)
        return 1
    skipped = sum(s["outcome"].startswith("skipped") for s in status)
    done = f"{len(status) - skipped} notebooks executed, {skipped} skipped (no GPU, results missing)" if skipped \
        else f"all {len(status)} notebooks executed"
    print(f"[{name}] {done} in {time.time() - started:.0f} s", flush=True)
    return 0


def quiet_from_now() -> None:
    """Send whatever this process writes from now on to /dev/null, so that an interrupted build's last line is
    the one that says what is kept: the kernel client torn down with the kernel can report it after that line,
    from another thread (seen once in CI: nbclient's "DeadKernelError: Kernel died" as the last line)."""
    sys.stdout.flush()
    sys.stderr.flush()
    devnull = os.open(os.devnull, os.O_WRONLY)
    for stream in (sys.stdout, sys.stderr):
        os.dup2(devnull, stream.fileno())
    os.close(devnull)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # a scheduler's SIGTERM ends the build as Ctrl-C does
    sys.exit(main())
