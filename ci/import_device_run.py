"""Take in what a GPU job brought back (ci/device_run.sh): its weights into weights/<profile>/ (to commit),
its results into results/ (merged), and say which profile settings the job sized.

    python ci/import_device_run.py FOLDER --profile gpu10

A job run with --override (a variant) is refused: weights/<profile>/ holds the profile's own weights; a
variant that should keep its weights is a profile file of its own name.

FOLDER holds the job's files: weights/<name>.<i>.pt (<name>: encoder-method-schedule), results.tar.gz,
job.json, run.log. Every shard is read and checked before anything is copied; the weights folder gets,
beside the shards, ``<name>.json``
(the run's configuration, training record, per-epoch log and each shard's sha256) and the job's
``job.json`` (``job-<n>.json`` for the later jobs). The results are unpacked into results/ ($CLORG_RESULTS),
each file replacing the one of its name: a later job adds what an earlier one did not compute. A job cut off
inside the classifiers chapter brings its finished heads (``classifiers.parts.json``); the next job, or
``make book PROFILE=... ALLOW_CPU=1``, resumes after them, and the whole result, once it arrives, removes them.

The job sizes the contrastive epochs from its probe, so its runs are those of the profile with the job's
train section: when the profile file says otherwise, this prints the settings to copy into it (the runs'
folder names, and with them the committed weights, are found by those settings). Exit status 1 when
they differ, 0 when the profile already matches.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))

from clorg.book import store  # noqa: E402
from clorg.core import paths, provenance, variants  # noqa: E402
from clorg.core.atomic import write_json  # noqa: E402
from clorg.core.config import load_profile  # noqa: E402
from clorg.train import bundle, speed  # noqa: E402


def finished_parts(arrived: list[str]) -> list[str]:
    """The results whose parts an earlier, cut-off job saved and that this job finished: a whole result
    arrived without parts of it. (A job stores the whole result, then removes its parts; a pack holding
    both has a whole result older than its parts, copied in from the committed ones and not yet redone.)"""
    names = set(arrived)
    return sorted(n.rsplit(".", 1)[0] for n in arrived
                  if n.endswith((".json", ".npz")) and not n.endswith(store.PARTS_SUFFIX)
                  and store.parts_path(Path(), n.rsplit(".", 1)[0]).name not in names)


def _profile_name(profile: str) -> str:
    """A profile as named on a command line (``gpu10``, ``configs/gpu10.yaml``) by its name alone."""
    return Path(profile).name.removesuffix(".yaml")


def read_job(folder: Path, profile: str) -> dict:
    """The record (job.json) of the device job whose output is ``folder``, checked before anything is written:
    SystemExit with what is wrong when the folder is not a job's output or the job ran another profile (an
    empty or foreign job record would otherwise become a job of the committed weights folder)."""
    where = f"{folder} is not the output of a device job (ci/device_run.sh's $OUT, as the device tool's files_at gives it)"
    if not folder.is_dir():
        raise SystemExit(f"{folder} does not exist or is not a folder: give the folder the device tool returned "
                         f"(files_at)")
    path = folder / "job.json"
    try:
        job = json.loads(path.read_text())
    except FileNotFoundError:
        raise SystemExit(f"{where}: it has no job.json") from None
    except (OSError, ValueError) as exc:
        raise SystemExit(f"{where}: its job.json cannot be read ({type(exc).__name__}: {exc})") from None
    lacking = [k for k in ("profile", "steps", "budget_s") if not isinstance(job, dict) or k not in job]
    if lacking:
        raise SystemExit(f"{where}: its job.json lacks {lacking}, which every device job records")
    if _profile_name(str(job["profile"])) != _profile_name(profile):
        raise SystemExit(f"{folder} is a job of profile {job['profile']!r}, not {profile!r}: import it with "
                         f"--profile {_profile_name(str(job['profile']))}")
    if job.get("overrides"):  # a variant: its weights would replace the profile's own in weights/<profile>/
        raise SystemExit(f"{folder} is a job run with --override {' '.join(map(str, job['overrides']))}: its weights "
                         f"are a variant's, and weights/{_profile_name(profile)}/ holds the profile's own. Write "
                         "those settings into a profile file of another name (a copy of the profile's YAML) and run "
                         "the job with it: its weights are then imported under that name")
    return job


def commit_warning(job: dict, here: str) -> str | None:
    """What to say when the commit a job records (``.device-data/COMMIT``, staged here before the job) is not
    the commit of this tree (``+dirty`` aside), else None. Job 1 recorded an older commit than the code it ran."""
    sent = str(job.get("commit", ""))
    if sent.removesuffix("+dirty") == here.removesuffix("+dirty"):
        return None
    return (f"warning: the job records commit {sent!r}, this tree is at {here!r}: either commits landed since "
            f"the job, or .device-data/COMMIT was staged at another commit (run ci/stage_device_data.sh right "
            f"before each job); its runs and results record the job's commit")


def record_job(target: Path, job: dict) -> tuple[Path, bool]:
    """Keep a job's record in the weights folder: ``job.json`` for the first job, ``job-<n>.json`` for the
    n-th. The same job imported again (after setting the profile as the first import printed) is found by
    its record and not counted twice. Returns the record's path and whether it is new."""
    kept = sorted(target.glob("job*.json"))
    for path in kept:
        try:
            if json.loads(path.read_text()) == job:
                return path, False
        except (OSError, ValueError):
            continue  # an unreadable record is not this job's; it still counts as a job below
    n = 1 + len(kept)
    path = target / ("job.json" if n == 1 else f"job-{n}.json")
    write_json(path, job)
    return path, True


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", type=Path)
    ap.add_argument("--profile", required=True)
    args = ap.parse_args(argv)
    cfg = load_profile(args.profile)
    job = read_job(args.folder, args.profile)
    if warning := commit_warning(job, provenance.git_commit()):
        print(warning)
    names = sorted({p.name.split(".")[0] for p in (args.folder / "weights").glob("*.pt")})
    if not names:  # an analysis job (--only): chapters from the committed weights, none trained
        print(f"{args.folder}/weights/ holds no shards: the job trained nothing (an analysis job?); results only")
    for name in names:  # all read and checked before anything is copied
        meta, _ = bundle.read(args.folder / "weights", name)
        print(f"{name}: run {meta['run']}, {meta['epoch']} epochs, {meta['parts']} shard(s)")

    target = bundle.weights_root() / cfg["profile"]["name"]
    target.mkdir(parents=True, exist_ok=True)
    for name in names:
        for old in bundle.shards_of(target, name):
            old.unlink()
        for shard in bundle.shards_of(args.folder / "weights", name):
            shutil.copyfile(shard, target / shard.name)
        bundle.compress(target, name)
        write_json(target / f"{name}.json", bundle.describe(target, name))
    record, new = record_job(target, job)
    print(f"weights: {paths.shown(target)}/ ({', '.join(names) or 'none new'}; the job's record: "
          f"{paths.shown(record)}{'' if new else ', imported before'})")

    pack = args.folder / "results.tar.gz"
    if pack.is_file():
        root = paths.results_root()
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=root) as tmp, tarfile.open(pack) as tar:
            tar.extractall(tmp, filter="data")
            for folder in Path(tmp).iterdir():  # merged: a later job adds the chapters an earlier one lacked
                dest = root / folder.name
                dest.mkdir(exist_ok=True)
                arrived = sorted(folder.iterdir())
                for f in arrived:
                    shutil.copyfile(f, dest / f.name)
                for result in finished_parts([f.name for f in arrived]):
                    store.parts_path(dest, result).unlink(missing_ok=True)
                print(f"results: {paths.shown(dest)}/ ({', '.join(f.name for f in arrived)})")
    else:
        print(f"no results.tar.gz in {args.folder}: the job stopped before its first chapter")

    if text := speed.report(job.get("speed") or {}):  # where a training step's time went on the job's card
        card = job.get("card")  # a GPU's name, or (a rehearsal on a CPU) the machine's description
        print(f"\nspeed on {card if isinstance(card, str) else (card or {}).get('cpu', 'the job machine')}:\n{text}")

    differ = {k: v for k, v in (job.get("train") or {}).items() if cfg["train"].get(k) != v}
    if differ:
        base = variants.shown_profile(cfg)
        profile_file = base if base.endswith((".yaml", ".yml")) else f"configs/{base}.yaml"
        print(f"\nThe job trained with these settings, which {profile_file} does not have; "
              f"set them there (train section) so that the book finds these runs:")
        for k, v in differ.items():
            print(f"  {k}: {json.dumps(v)}    (now {json.dumps(cfg['train'].get(k))})")
        return 1
    print(f"\nthe profile matches the job: `make book PROFILE={variants.shown_profile(cfg)}` renders it")
    return 0


if __name__ == "__main__":
    sys.exit(main())
