"""The Python half of a GPU job (ci/device_run.sh runs it under a hard timeout): size the contrastive run by
a measured probe, train, bring the weights back, then compute what only the training machine can.

    python ci/device_job.py --profile gpu10 --out $OUT --budget 500 --train-budget 420 [--override K=V]...

It starts from the profile's committed results (:func:`seed_results`: a current one is read, not computed
again, and an analysis job resumes the heads an earlier job finished in a chapter it was cut off in). Steps,
each isolated (an exception is logged, the step is reported failed, the next goes on) and each followed by
packing what exists into ``--out``, overwriting the same files, so that a job killed at any moment has
brought back everything finished before:

1. probe: a few dozen optimizer steps of each method at the profile's batch, after warm-up, on the real
   data and augmentation; the contrastive epochs E are set to fill the training budget after the
   supervised run, with a warm-up of about 5 % and a snapshot every ceil(E / 8) epochs;
2. train each run (supervised first), each followed by its weights (clorg.train.bundle) in ``out/weights/``;
   a run already finished at the start (installed from the committed weights: the same settings) is kept:
   neither probed nor trained, and its committed weights stay; not one a warm start continues
   (``train.warm_start_methods`` names its method), nor, without a warm start, a contrastive run (the probe
   sizes it anew);
3. the chapters and measurements, in order of what cannot be computed elsewhere: the training record, the
   dynamics (it reads the snapshots along the run, which stay here), where the time of a training step goes
   on this card (``speed``: by phase and kind of operation, and at other batch sizes) and what torch.compile
   costs and gains (``speed: torch.compile``, where a minute is left), then the chapters while time is left,
   each stored in results/<profile>/ and packed into ``out/results.tar.gz``.

``out/job.json`` says what happened: the card, the probe's step times and E, the epochs' measured times, the
speed measurements (``speed``), and every step's outcome and wall time. Exit status 0 when every step ran, 3
when some were skipped for time or failed, 2 for a bad profile or missing data.
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import os
import shutil
import sys
import tarfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))

from clorg.core.atomic import write_atomic, write_bytes, write_json  # noqa: E402

# share of the training budget the sizing keeps in reserve. Job 1 (H200): the MoCo epochs took 6.1 % longer
# than its probe said (293.6 s against 276.6), their saves and setup 5.4 s more, and the epochs spread from 3.3
# to 4.4 s; its 8 % would leave MoCo alone about 2 % of the budget
MARGIN = 0.12

# steps after training, in the order they run: what only this machine can compute first (the dynamics read
# the snapshots, which stay here; the speed measurements are of this card), then the chapters while time is
# left (a CPU computes the rest from the weights). From job 1's step times, a job training MoCo alone has about
# 80 s left after the dynamics (an estimate); torch.compile's measurement runs to the deadline at most (15 s kept for the rest)
BREAKDOWN, BATCHES, COMPILE = "speed: breakdown", "speed: batches", "speed: torch.compile"
AFTER_TRAINING = ("02_train", "07_dynamics", BREAKDOWN, BATCHES, COMPILE, "03_embeddings", "04_metrics",
                  "08_near_duplicates", "06_classifiers", "05_tsne", "01_toy_clusters")
# seconds a step must have left to start: a chapter a few; the speed steps as they took in the rehearsal on a
# CPU, with room; the compile measurement its process's start and eager half (~10 s on an H200, estimated) and
# some of a compilation: one longer than the job has left is reported unfinished after the seconds it had, itself a
# bound on what compiling would cost a job
NEEDS = {"02_train": 0, BREAKDOWN: 30, BATCHES: 20, COMPILE: 60}
COMPILE_RESERVE = 15
# seconds kept between the end of training and the job's deadline, for exporting the weights (a few seconds
# on an H200): a run still training when the hard timeout strikes would come back without them
EXPORT_RESERVE = 20


def say(started: float, message: str) -> None:
    print(f"[{time.time() - started:6.0f} s] {message}", flush=True)


def pack_results(results: Path, out: Path) -> None:
    """results/<folder>/ into out/results.tar.gz, replacing the previous pack atomically."""
    if not results.is_dir():
        return

    def pack(fh):
        with tarfile.open(fileobj=fh, mode="w:gz") as tar:
            tar.add(results, arcname=results.name, filter=lambda t: None if t.name.rsplit("/", 1)[-1].startswith(".") else t)

    # one fixed name: a variant's folder name has characters that do not travel
    write_atomic(out / "results.tar.gz", pack)


def seed_results(committed: Path, here: Path) -> list[str]:
    """Copy the profile's committed results (results/<folder>/ in the tree) into this job's results folder,
    file by file, never over a file already there; returns the names copied. A result still current is
    then read rather than computed again, and the heads an earlier job finished before it was cut off in
    the classifiers chapter (``classifiers.parts.json``) are resumed by an analysis job (``--only``: a job
    that trains makes new runs, under which every result and part is computed anew)."""
    if not committed.is_dir() or (here.is_dir() and committed.resolve() == here.resolve()):
        return []
    here.mkdir(parents=True, exist_ok=True)
    copied = []
    for f in sorted(committed.iterdir()):
        if f.is_file() and not f.name.startswith(".") and not (here / f.name).exists():
            shutil.copyfile(f, here / f.name)
            copied.append(f.name)
    return copied


def hang_after_first_part(store) -> None:
    """(rehearsal) The first part a resumable chapter saves is the last thing it does: the job then hangs
    until its hard timeout, as a job cut off in the middle of a chapter."""
    real = store.Parts.save

    def save(self, key, value):
        real(self, key, value)
        print(f"--hang-after-part: part {key!r} saved; hanging", flush=True)
        while True:
            time.sleep(1)

    store.Parts.save = save


def _on_device(data, device):
    import torch

    return torch.from_numpy(data.train.images).to(device), torch.from_numpy(data.train.labels).to(device)


def _run_config(cfg: dict, data, spec):
    from clorg.train import runs

    return runs.resolve(cfg, spec, data.summary())


def probe(cfg: dict, data, spec, device, steps: int, warmup: int) -> dict:
    """Median seconds per optimizer step of ``spec`` at the profile's batch, on the run's own data path."""
    from clorg.train import speed

    run_cfg = _run_config(cfg, data, spec)
    step = speed.time_steps(run_cfg, *_on_device(data, device), device, steps=steps, warmup=warmup)["seconds_per_step"]
    per_epoch = len(data.train) // run_cfg["batch_size"]
    return {"method": spec.method, "batch": run_cfg["batch_size"], "seconds_per_step": round(step, 5),
            "steps_per_epoch": per_epoch, "seconds_per_epoch": round(step * per_epoch, 2),
            "images_per_s": round(run_cfg["batch_size"] / step, 1), "timed_steps": steps, "warmup_steps": warmup}


def speed_breakdown(cfg: dict, data, spec, device) -> dict:
    """Where the time of a step of ``spec`` goes on this card, by phase and kind (clorg.train.speed)."""
    from clorg.train import speed

    return speed.breakdown(_run_config(cfg, data, spec), *_on_device(data, device), device)


def speed_batches(cfg: dict, data, spec, device) -> dict:
    """Images/s of a step of ``spec`` at half, the profile's and twice its batch."""
    from clorg.train import speed

    run_cfg = _run_config(cfg, data, spec)
    b = run_cfg["batch_size"]
    return speed.batch_rates(run_cfg, *_on_device(data, device), device, (b // 2, b, 2 * b), steps=10, warmup=5)


def inductor_missing(device) -> str | None:
    """What inductor lacks to compile for a GPU here, or None: Triton, and what Triton builds its launcher
    with (a C compiler and Python's headers)."""
    import importlib.util
    import sysconfig

    if device.type != "cuda":
        return None
    if importlib.util.find_spec("triton") is None:
        return "Triton is not installed"
    if not any(shutil.which(c) for c in ("cc", "gcc", "clang")):
        return "no C compiler (cc, gcc, clang) for Triton's launcher"
    if not (Path(sysconfig.get_paths()["include"]) / "Python.h").is_file():
        return f"no Python.h in {sysconfig.get_paths()['include']} for Triton's launcher"
    return None


def _compile_child(run_cfg, images, labels, device, kwargs, out) -> None:
    """In a process of its own (spawned): the compile measurement, its eager half written first, and an error
    written beside it. It dies with the job (Linux's parent-death signal, set before anything slow): a job
    stopped by its hard timeout leaves nothing on the GPU."""
    import ctypes
    import multiprocessing
    import signal

    try:
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != multiprocessing.parent_process().pid:  # the job died before the signal was set
        os._exit(1)

    import torch

    from clorg.train import speed

    half = {}

    def eager_done(value):
        half.update(value)
        write_json(out, value)

    try:
        device = torch.device(device)
        on = (torch.from_numpy(images).to(device), torch.from_numpy(labels).to(device))
        write_json(out, speed.compile_gain(run_cfg, *on, device, on_eager=eager_done, **kwargs))
    except Exception as exc:
        write_json(out, {**half, "error": f"{type(exc).__name__}: {exc}"})
        raise


def compile_study(cfg: dict, data, spec, device, train_seconds: float, backend: str, seconds: float) -> dict:
    """torch.compile's cost and gain for a step of ``spec`` on this card (clorg.train.speed.compile_gain), in
    a process of its own that is stopped after ``seconds``: a compilation cannot be interrupted, and one that
    outlasts the job must not take the job's hard timeout with it. A stopped one reports its eager half (when
    it got that far) and ``unfinished_after_s``; one that failed raises with its error."""
    import multiprocessing
    import tempfile

    if missing := inductor_missing(device) if backend == "inductor" else None:
        raise RuntimeError(f"inductor cannot compile for the GPU here: {missing}")
    run_cfg = _run_config(cfg, data, spec)
    kwargs = {"steps_per_epoch": len(data.train) // run_cfg["batch_size"], "train_seconds": train_seconds,
              "backend": backend}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "compile.json"
        child = multiprocessing.get_context("spawn").Process(
            target=_compile_child, args=(run_cfg, data.train.images, data.train.labels, str(device), kwargs, str(out)))
        child.start()
        child.join(seconds)
        stopped = child.is_alive()
        if stopped:
            child.kill()
            child.join(10)
        result = json.loads(out.read_text()) if out.is_file() else {"backend": backend, "batch": run_cfg["batch_size"]}
    if "error" in result:
        raise RuntimeError(f"the compile measurement failed: {result['error']} (eager half: {result})")
    if "compiled_seconds_per_step" in result:
        return result
    if stopped:
        return {**result, "unfinished_after_s": round(seconds)}
    raise RuntimeError(f"the compile measurement exited with status {child.exitcode} and no result (see run.log)")


def can_size(to_train, kept) -> bool:
    """Whether the probe may size the contrastive settings: a contrastive run is to train, and none is kept.
    The contrastive runs share their epochs and warm-up, which name them: sizing them would rename a kept
    contrastive run (and train it anew), so a job keeping one trains the profile's epochs, unsized."""
    from clorg.core.config import kind_of

    def contrastive(specs):
        return any(kind_of(s.method) == "contrastive" for s in specs)

    return contrastive(to_train) and not contrastive(kept)


def size_contrastive(cfg: dict, probes: dict, train_budget: float, margin: float,
                     run_counts: dict | None = None) -> dict:
    """E, its warm-up and snapshot interval from the probes of the runs to train: the supervised runs first,
    at their configured epochs, then as many contrastive epochs as fill the rest (``margin``: the share kept
    for checkpoints, snapshots and the first epoch's slower steps).

    ``probes`` holds one probe per method to train; ``run_counts`` counts the runs of each (a variant trains a
    method again under another schedule, at the same step time; default one each). A run kept (one of a
    method ``train.warm_start_methods`` leaves out of a warm start) costs nothing. ``checkpoint_every`` is not
    part of a run's name, so resizing it renames no kept run."""
    t = cfg["train"]
    counts = run_counts or {}
    kinds = {m: ("supervised" if m == "supervised" else "contrastive") for m in probes}
    supervised = sum(probes[m]["seconds_per_epoch"] * t["supervised_epochs"] * counts.get(m, 1)
                     for m, k in kinds.items() if k == "supervised")
    per_epoch = sum(probes[m]["seconds_per_epoch"] * counts.get(m, 1) for m, k in kinds.items() if k == "contrastive")
    left = train_budget * (1 - margin) - supervised
    epochs = max(1, math.floor(left / per_epoch)) if per_epoch else t["contrastive_epochs"]
    return {"contrastive_epochs": epochs, "contrastive_warmup_epochs": max(1, round(0.05 * epochs)),
            "checkpoint_every": max(1, math.ceil(epochs / 8)), "supervised_seconds_expected": round(supervised, 1),
            "contrastive_seconds_expected": round(per_epoch * epochs, 1)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--budget", type=float, help="seconds this job may take in all")
    ap.add_argument("--train-budget", type=float, help="seconds of training, probe excluded")
    ap.add_argument("--pack-only", action="store_true", help="only pack the profile's results into --out (after "
                                                             "a hard timeout: parts a cut-off step saved travel too)")
    ap.add_argument("--override", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--probe-steps", type=int, default=30)
    ap.add_argument("--probe-warmup", type=int, default=10)
    ap.add_argument("--margin", type=float, default=MARGIN, help="share of the training budget kept in reserve")
    ap.add_argument("--no-probe", action="store_true", help="train the profile's own epochs, unsized")
    ap.add_argument("--compile-backend", default="inductor",
                    help="torch.compile's backend in the compile measurement (the rehearsal's: eager, "
                         "seconds on a CPU)")
    ap.add_argument("--only", action="append", default=[], metavar="STEM",
                    help="no probe, no training: only these chapters, from the runs installed from weights/")
    ap.add_argument("--fail-step", action="append", default=[], help="(rehearsal) raise inside this step")
    ap.add_argument("--hang-step", action="append", default=[], help="(rehearsal) never end this step: the hard "
                                                                       "timeout must stop the job")
    ap.add_argument("--hang-after-part", action="append", default=[], help="(rehearsal) hang in this step once it "
                                                                             "has saved its first part")
    ap.add_argument("--allow-cpu", action="store_true")
    args = ap.parse_args(argv)
    if args.pack_only:
        from clorg.book import store
        from clorg.core import variants
        from clorg.core.config import load_profile, parse_overrides
        cfg = load_profile(args.profile, parse_overrides(args.override))
        pack_results(store.results_dir(variants.folder_name(cfg)), args.out)
        return 0
    if args.budget is None or args.train_budget is None:
        ap.error("--budget and --train-budget are required (but with --pack-only)")
    started = time.time()
    deadline = started + args.budget
    if args.allow_cpu:
        os.environ["CLORG_ALLOW_CPU"] = "1"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "weights").mkdir(exist_ok=True)

    import torch

    from clorg.book import chapters, report, store, summary
    from clorg.core import provenance, variants
    from clorg.core.config import ConfigError, all_runs, kind_of, load_profile, parse_overrides
    from clorg.core.devices import default_device, gpu_policy_allows
    from clorg.data import DatasetError, DatasetNotFoundError
    from clorg.train import bundle, loop, runs

    device = default_device()
    job = {"profile": args.profile, "overrides": args.override, "budget_s": args.budget,
           "train_budget_s": args.train_budget, "device": str(device),
           "card": torch.cuda.get_device_name(0) if device.type == "cuda" else provenance.hardware(),
           "torch": torch.__version__, "commit": provenance.git_commit(), "steps": []}

    def save_job() -> None:
        job["seconds"] = round(time.time() - started, 1)
        write_bytes(args.out / "job.json", json.dumps(job, indent=1, default=str).encode())

    def step(name: str, fn, *, needs: float = 0.0):
        """Run one step isolated: time it, record its outcome, pack, and never let it stop the next."""
        if time.time() + needs > deadline:
            job["steps"].append({"step": name, "status": "skipped: the budget is spent", "seconds": 0})
            say(started, f"{name}: skipped, the budget is spent")
            save_job()
            return None
        t0 = time.time()
        say(started, f"{name} ...")
        entry = {"step": name, "status": "started, not finished: the job was cut off here", "seconds": None}
        job["steps"].append(entry)
        save_job()
        try:
            if name in args.fail_step:
                raise RuntimeError(f"injected failure in {name} (--fail-step)")
            while name in args.hang_step:
                time.sleep(1)
            if name in args.hang_after_part:
                hang_after_first_part(store)
            value = fn()
            status = "ok"
        except Exception as exc:  # noqa: BLE001 - one step's failure is reported, the job goes on
            value, status = None, f"failed: {type(exc).__name__}: {exc}"
            traceback.print_exc()
        entry.update(status=status, seconds=round(time.time() - t0, 1))
        say(started, f"{name}: {status} in {time.time() - t0:.1f} s")
        pack_results(store.results_dir(variants.folder_name(cfg)), args.out)
        save_job()
        return value

    try:
        # before the data loads: the lease would go into a CPU run, so a driver or CUDA mismatch is named now
        if not gpu_policy_allows(load_profile(args.profile, parse_overrides(args.override))):
            print(f"error: {args.profile} needs a GPU and torch {torch.__version__} sees none (cuda available: "
                  "False; the checks' nvidia-smi and torch lines say what the machine has). --allow-cpu runs it on "
                  "the CPU, as the rehearsal does", file=sys.stderr)
            job["steps"].append({"step": "setup", "status": "failed: no GPU visible to torch", "seconds": 0})
            save_job()
            return 1
        cfg, data = chapters.setup(args.profile, parse_overrides(args.override))
    except (ConfigError, DatasetNotFoundError, DatasetError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        job["steps"].append({"step": "setup", "status": f"failed: {exc}", "seconds": 0})
        save_job()
        return 2
    if cfg["train"]["warm_start"] and not args.only:  # a pin whose weights were replaced: the runs are trained
        try:
            runs.check_warm_start(runs.warm_start_of(cfg["train"]["warm_start"], "*"))
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            job["steps"].append({"step": "setup", "status": f"failed: {exc}", "seconds": 0})
            save_job()
            return 2
    specs = all_runs(cfg)
    folder = variants.folder_name(cfg)
    job["seeded"] = seed_results(ROOT / "results" / folder, store.results_dir(folder))
    if job["seeded"]:
        say(started, f"from the committed results/{folder}/: {', '.join(job['seeded'])}")
    save_job()

    if args.only:  # an analysis job: the runs come from the committed weights (chapters.setup installed them)
        for stem in args.only:
            step(stem, lambda stem=stem: chapters.COMPUTE[stem](cfg, data, False), needs=10)
        return 3 if [s for s in job["steps"] if s["status"] != "ok"] else 0

    # 1. the probe sizes the contrastive run to the training budget. A run finished already, as installed from
    # the committed weights (same settings), is kept: "trained" again it would be reused by the loop, reported
    # with an earlier job's training time and exported without the head it trained with. Not one a warm start
    # continues, nor, in a job without one, a contrastive run: the probe sizes it anew (another run)
    kept = tuple(s for s in specs if not runs.continues_warm_start(cfg, s)
                 and (cfg["train"]["warm_start"] or kind_of(s.method) != "contrastive")
                 and runs.RunFolder(runs.locate(cfg, s, data)[1]).is_finished())
    if kept:
        job["kept"] = [bundle.bundle_name(s) for s in kept]
        say(started, f"kept, not trained again (installed from the committed weights): {', '.join(job['kept'])}")
    to_train = [s for s in specs if s not in kept]
    sizable = can_size(to_train, kept)
    if kept and not sizable:
        say(started, "not sized: no contrastive run to train, or a kept one shares its settings")
    # what the deadline leaves for training, the weights' export kept after it (a short BUDGET without --only)
    train_budget = min(args.train_budget, deadline - time.time() - EXPORT_RESERVE)
    if train_budget < args.train_budget:
        say(started, f"training budget {train_budget:.0f} s, not {args.train_budget:.0f}: the job's deadline is near")
        job["train_budget_capped_s"] = round(train_budget, 1)
    if not args.no_probe and sizable:
        # one probe per method: a variant (another schedule) steps as its method does, and is counted
        one_each = {s.method: s for s in to_train}
        probes = step("probe", lambda: {m: probe(cfg, data, s, device, args.probe_steps, args.probe_warmup)
                                        for m, s in one_each.items()})
        if probes:
            job["probe"] = probes
            sized = size_contrastive(cfg, probes, train_budget, args.margin,
                                     collections.Counter(s.method for s in to_train))
            job["sized"] = sized
            for key in ("contrastive_epochs", "contrastive_warmup_epochs", "checkpoint_every"):
                cfg["train"][key] = sized[key]
            say(started, f"probe: {json.dumps(probes)}; contrastive run sized to {sized}")
    if cfg["train"]["warm_start"]:  # the job's weights will replace these: the profile names its runs by the pin
        cfg["train"]["warm_start"] = runs.pin_warm_start(cfg["train"]["warm_start"])
    job["train"] = cfg["train"]
    save_job()

    # 2. training, each run's weights packed as soon as it ends
    train_until = min(time.time() + train_budget, deadline - EXPORT_RESERVE)
    trained = {}
    for spec in specs:
        def train_one(spec=spec):
            r = loop.run(cfg, spec, data=data, stop_after=train_until, device=device)
            if spec in kept:  # its committed bundle stays: the import replaces only what travels back
                return {"run": r.folder.name, "kept": True, "epochs_done": r.final_epoch}
            paths = bundle.export(r, args.out / "weights")
            bundle.round_final(r)  # what is analysed here is what travels
            return {"run": r.folder.name, "epochs_done": r.final_epoch, "stopped_early": r.stopped_early,
                    "train_seconds": r.record.get("train_seconds"), "images_per_s": r.record.get("images_per_s"),
                    "epoch_seconds": [e["seconds"] for e in r.log], "shards": [p.name for p in paths]}
        trained[bundle.bundle_name(spec)] = step(f"train {spec.method}", train_one)
    job["runs"] = trained
    save_job()

    # 3. the chapters and the speed measurements, while time is left (each starts only with NEEDS left)
    # the training chapter tabulates the runs of step 2 (one the deadline stopped starts no epoch after it)
    compute = chapters.compute_steps(train_until)
    # the speed measurements time the run this job trained (its contrastive one), each on a fresh model
    timed = next((s for s in to_train if kind_of(s.method) == "contrastive"), to_train[0] if to_train else None)
    measure = {BREAKDOWN: ("breakdown", lambda: speed_breakdown(cfg, data, timed, device)),
               BATCHES: ("batches", lambda: speed_batches(cfg, data, timed, device)),
               COMPILE: ("compile", lambda: compile_study(cfg, data, timed, device, args.train_budget,
                                                          args.compile_backend,
                                                          deadline - time.time() - COMPILE_RESERVE))}
    if timed is not None:
        job["speed"] = {"method": timed.method}
    for name in AFTER_TRAINING:
        if name not in measure:
            step(name, lambda stem=name: compute[stem](cfg, data, False), needs=NEEDS.get(name, 10))
        elif timed is not None and (value := step(name, measure[name][1], needs=NEEDS[name])) is not None:
            job["speed"][measure[name][0]] = value
            save_job()
    # no build time: the job computes some chapters; the book that renders its results executes them all
    step("summary", lambda: summary.write(cfg, summary.build(report.collect(cfg, data), cfg, data, None)))
    bad = [s for s in job["steps"] if s["status"] != "ok"]
    return 3 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
