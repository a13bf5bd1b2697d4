"""Weights that travel (clorg.train.bundle): a finished run packed into bf16 shards, unpacked into a run
folder the analysis reads, and a warm start from them; and the GPU job's driver (ci/device_job.py), which
packs after every step so that a job cut off keeps what it finished."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch

from clorg.core.config import ConfigError, RunSpec, load_profile
from clorg.core.paths import ROOT
from clorg.train import bundle, checkpoint, load_finished, run, runs

TINY = {"data.dataset": "digits", "data.train_per_class": 60, "data.test_per_class": 10,
        "train.contrastive_batch_size": 64, "train.supervised_batch_size": 64, "train.moco_queue_size": 256,
        "train.contrastive_epochs": 2, "train.supervised_epochs": 2, "train.checkpoint_every": 1}
MOCO = RunSpec("resnet18", "moco_queue", "cosine")
SUPERVISED = RunSpec("resnet18", "supervised", "cosine")
MOCO_NAME = bundle.bundle_name(MOCO)  # "resnet18-moco_queue-cosine"


def tiny(**more):
    return load_profile("smoke", {**TINY, **more})


@pytest.fixture(scope="module")
def moco_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    return run(tiny(), MOCO, runs_root=root, progress=False)


def test_export_writes_bf16_shards_under_the_size_limit_and_reads_back(moco_run, tmp_path, monkeypatch):
    monkeypatch.setattr(bundle, "SHARD_BYTES", 3 * 2**20)  # small shards: the tiny encoder spans several
    paths = bundle.export(moco_run, tmp_path)
    assert len(paths) >= 1 and all(p.stat().st_size <= 3 * 2**20 for p in paths)
    meta, tensors = bundle.read(tmp_path, MOCO_NAME)
    assert meta["run"] == moco_run.folder.name and meta["epoch"] == 2 and meta["parts"] == len(paths)
    assert any(k.startswith("predictor.") for k in tensors)  # what a warm start needs beside the encoder
    floats = {k: v.dtype for k, v in tensors.items() if v.is_floating_point()}
    assert all(d == torch.float32 for k, d in floats.items() if k.endswith(("running_mean", "running_var")))
    assert all(d == torch.bfloat16 for k, d in floats.items() if not k.endswith(("running_mean", "running_var")))
    final = checkpoint.load(moco_run.folder / "checkpoints" / "encoder_e0002.pt")["encoder"]
    for k, v in bundle.encoder_state(tensors).items():
        torch.testing.assert_close(v, final[k].to(v.dtype), rtol=1e-2, atol=1e-2)  # bf16 rounding, no more


def test_runs_of_one_method_export_side_by_side(moco_run, tmp_path):
    """The paper profile trains two encoders with moco_queue, and a variant runs the same method under another
    schedule: each run's bundle has its own name, and exporting one never deletes another's shards."""
    import dataclasses

    variant = dataclasses.replace(moco_run, config={**moco_run.config, "schedule": "paper-compressed"})
    first, second = bundle.export(moco_run, tmp_path), bundle.export(variant, tmp_path)
    assert all(p.is_file() for p in first + second) and not set(first) & set(second)
    assert bundle.read(tmp_path, MOCO_NAME)[0]["config"]["schedule"] == "cosine"
    assert bundle.read(tmp_path, "resnet18-moco_queue-paper-compressed")[0]["config"]["schedule"] == "paper-compressed"


def test_a_missing_shard_is_named(moco_run, tmp_path, monkeypatch):
    monkeypatch.setattr(bundle, "SHARD_BYTES", 2 * 2**20)  # 1 MiB of tensors a shard: the predictor alone is 1.5 MiB
    paths = bundle.export(moco_run, tmp_path)
    assert len(paths) >= 2
    paths[-1].unlink()
    with pytest.raises(bundle.BundleError, match="one is missing"):
        bundle.read(tmp_path, MOCO_NAME)


def test_install_gives_a_run_folder_the_analysis_reads_as_the_trained_one(moco_run, tmp_path):
    weights = tmp_path / "w eights"  # a space in the path: the fix below names the folder whole
    bundle.export(moco_run, weights)
    folder = tmp_path / "runs" / "smoke" / moco_run.folder.name
    bundle.install(weights, MOCO_NAME, folder)
    assert runs.RunFolder(folder).is_usable()
    got = load_finished(tiny(), MOCO, runs_root=tmp_path / "runs")
    assert got.record["finished_at"] == moco_run.record["finished_at"]  # results computed there stay current
    assert got.record["code"] == moco_run.record["code"] and "bfloat16" in got.record["weights"]
    # epoch 0 is regenerated from the seed: bit-identical to the one the run started from
    a = checkpoint.load(folder / "checkpoints" / "encoder_e0000.pt")["encoder"]
    b = checkpoint.load(moco_run.folder / "checkpoints" / "encoder_e0000.pt")["encoder"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert [e["epoch"] for e in got.log] == [1, 2]
    # a damaged snapshot of an installed run: the fix is to install it again, not to retrain on this machine
    snapshot = folder / "checkpoints" / "encoder_e0002.pt"
    snapshot.write_bytes(snapshot.read_bytes()[:500])
    with pytest.raises(checkpoint.UnreadableCheckpoint) as err:
        got.load_encoder()
    assert f"cannot read checkpoint {snapshot}" in str(err.value)
    assert (f"Delete the run folder {folder}: `python -m clorg.book --profile smoke` installs it again from "
            f"{weights}/{MOCO_NAME}.*") in str(err.value) and "clorg.train" not in str(err.value)


def test_install_refuses_weights_of_another_run(moco_run, tmp_path):
    bundle.export(moco_run, tmp_path / "w")
    with pytest.raises(bundle.BundleError, match="this profile asks for resnet18-moco_queue-other"):
        bundle.install(tmp_path / "w", MOCO_NAME, tmp_path / "resnet18-moco_queue-other")


def test_round_final_makes_the_analysed_encoder_the_one_that_travels(moco_run, tmp_path):
    import shutil

    copy = tmp_path / moco_run.folder.name
    shutil.copytree(moco_run.folder, copy)
    result = runs.finished(copy, moco_run.config)
    bundle.export(result, tmp_path / "w")
    bundle.round_final(result)
    rounded = checkpoint.load(copy / "checkpoints" / "encoder_e0002.pt")["encoder"]
    _, tensors = bundle.read(tmp_path / "w", MOCO_NAME)
    travelled = bundle.encoder_state(tensors)
    assert all(torch.equal(rounded[k].float(), travelled[k]) for k in travelled)


def test_warm_start_loads_the_weights_copies_the_momentum_encoder_and_is_a_run_of_its_own(moco_run, tmp_path,
                                                                                          monkeypatch):
    weights = tmp_path / "weights"  # an absolute folder; a profile names one of the project, weights/gpu10
    bundle.export(moco_run, weights)
    from clorg.train import loop

    seen = {}
    real = loop._warm_start

    def spy(method, run_cfg, main):
        origin = real(method, run_cfg, main)
        seen["encoder"] = {k: v.clone() for k, v in method.encoder.state_dict().items()}
        seen["momentum"] = {k: v.clone() for k, v in method.momentum_encoder.state_dict().items()}
        return origin

    monkeypatch.setattr(loop, "_warm_start", spy)
    warm = run(tiny(**{"train.warm_start": str(weights)}), MOCO, runs_root=tmp_path / "runs", progress=False)
    assert warm.folder.name != moco_run.folder.name  # another configuration, another folder
    assert warm.config["warm_start"]["weights"] == str(weights) and len(warm.config["warm_start"]["sha256"]) == 16
    assert warm.record["jobs"] == 2 and warm.record["epochs_before"] == 2
    assert warm.record["warm_start_from"] == moco_run.folder.name
    start = seen["encoder"]
    assert all(torch.equal(start[k], seen["momentum"][k]) for k in start)
    # it started from the travelled weights, and its epoch 0 is still the seeded random initialisation
    init = checkpoint.load(warm.folder / "checkpoints" / "encoder_e0000.pt")["encoder"]
    first = checkpoint.load(moco_run.folder / "checkpoints" / "encoder_e0000.pt")["encoder"]
    assert all(torch.equal(init[k], first[k]) for k in init)
    final = checkpoint.load(moco_run.folder / "checkpoints" / "encoder_e0002.pt")["encoder"]
    key = next(k for k in start if k.endswith("weight") and start[k].dim() == 4)
    torch.testing.assert_close(start[key], final[key].to(torch.bfloat16).float())


def test_a_warm_start_from_weights_of_another_width_is_refused_naming_them_and_the_fix(moco_run, tmp_path):
    """Weights whose shapes do not fit the run (trained at another width): refused naming the shards, torch's first
    reason and what to do, never 'delete it' about committed weights."""
    weights = tmp_path / "weights"
    bundle.export(moco_run, weights)
    with pytest.raises(checkpoint.UnreadableCheckpoint) as err:
        run(tiny(**{"train.warm_start": str(weights), "train.width_scale": 0.25}), MOCO, runs_root=tmp_path / "runs",
            progress=False)
    msg = str(err.value)
    assert f"checkpoint {weights}/{MOCO_NAME}.* does not fit this run's encoder" in msg and "size mismatch" in msg
    assert "point train.warm_start at weights of this run's encoder and method" in msg and "Delete" not in msg


def test_warm_start_from_a_folder_without_weights_is_refused_naming_it(tmp_path):
    with pytest.raises(ValueError, match=r"train.warm_start: no shards resnet18-moco_queue-cosine.<i>.pt\(.gz\) in"):
        run(tiny(**{"train.warm_start": "weights/none-here"}), MOCO, runs_root=tmp_path, progress=False)


def test_a_pinned_warm_start_still_names_the_runs_of_a_job_whose_weights_replaced_their_origin(moco_run, tmp_path,
                                                                                              monkeypatch, capsys):
    """A warm-start job's weights replace the ones it started from (weights/<profile>/): the profile then
    names its runs by the pin the job recorded, which resolves to the same run folders whatever the folder
    holds now, so that the book installs them; training from a pin whose weights are gone is refused."""
    from clorg.book import chapters
    from clorg.data import choose_profile_dataset

    monkeypatch.setenv("CLORG_WEIGHTS", str(tmp_path / "weights"))
    monkeypatch.setenv("CLORG_RUNS", str(tmp_path / "runs"))
    weights = tmp_path / "weights" / "smoke"
    bundle.export(moco_run, weights)
    pinned = runs.pin_warm_start(str(weights))
    assert pinned == f"{weights}@{runs.weights_sha256(weights)}" and runs.pin_warm_start(pinned) == pinned
    warm = run(tiny(**{"train.warm_start": str(weights), "train.methods": ["moco_queue"]}), MOCO, progress=False)
    bundle.export(warm, weights)  # what ci/import_device_run.py does with the job's weights

    cfg = tiny(**{"train.warm_start": pinned, "train.methods": ["moco_queue"]})
    data = choose_profile_dataset(cfg)
    assert runs.locate(cfg, MOCO, data)[1].name == warm.folder.name
    shutil.rmtree(warm.folder)  # the runs were trained on the GPU machine: here only the committed weights are
    (folder,) = chapters.install_committed(cfg, data)
    assert folder.name == warm.folder.name and runs.RunFolder(folder).is_usable()
    # unpinned, the folder names the weights now in it: a run that continues from them, not this one
    unpinned = tiny(**{"train.warm_start": str(weights), "train.methods": ["moco_queue"]})
    assert runs.locate(unpinned, MOCO, data)[1].name != warm.folder.name
    with pytest.raises(ValueError, match="no longer holds the weights these runs start from .*`git restore --source="):
        run(cfg, MOCO, runs_root=tmp_path / "again", progress=False)
    assert not (tmp_path / "again").exists()  # refused before any folder was written


def test_the_warm_start_checksum_covers_every_bundle_of_the_folder(moco_run, tmp_path):
    """One pin says which state of the whole folder a job read: replacing one run's weights changes it, and
    with it the name of every run started from the folder; one folder has one spelling."""
    import dataclasses

    weights = tmp_path / "weights"
    with pytest.raises(ValueError, match="train.warm_start: no shards"):
        runs.pin_warm_start(str(weights))  # nothing to pin
    bundle.export(moco_run, weights)
    other = dataclasses.replace(moco_run, config={**moco_run.config, "method": "supervised"})
    bundle.export(other, weights)
    first = runs.weights_sha256(weights)
    assert runs.warm_start_of(str(weights), MOCO_NAME)["sha256"] == first
    assert runs.warm_start_of(f"{weights}/", MOCO_NAME) == runs.warm_start_of(str(weights), MOCO_NAME)
    assert runs.warm_start_of(f"{weights}/@{first}", "x") == {"weights": str(weights), "sha256": first}
    shard = bundle.shards_of(weights, "resnet18-supervised-cosine")[0]
    shard.write_bytes(shard.read_bytes() + b"\0")  # the other run's weights replaced
    assert runs.weights_sha256(weights) != first
    assert runs.warm_start_of(str(weights), MOCO_NAME)["sha256"] != first


def test_a_training_job_started_from_a_pin_whose_weights_were_replaced_stops_at_setup(moco_run, tmp_path):
    """The job after a warm start must continue from the present weights: with the pin still set, the runs
    it names are those already trained, and the job would spend its lease re-exporting them."""
    weights = tmp_path / "weights"
    bundle.export(moco_run, weights)
    proc = _job(tmp_path, "--override", f"train.warm_start={weights}@{'0' * 16}", budget=120)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 2, out
    assert "no longer holds the weights these runs start from" in out and "unpinned" in out
    assert "probe" not in {s["step"] for s in json.loads((tmp_path / "out" / "job.json").read_text())["steps"]}


def test_a_warm_start_pin_that_is_not_a_checksum_is_refused():
    for bad in ("weights/gpu10@job1", "weights/gpu 10", "weights/gpu10@" + "0" * 15):
        with pytest.raises(ConfigError, match="train.warm_start.*pinned as weights/gpu10@<16 hex digits>"):
            tiny(**{"train.warm_start": bad})


def test_a_warm_start_of_some_methods_keeps_the_runs_of_the_others(moco_run, tmp_path):
    """train.warm_start_methods: a method it leaves out resolves to the run it is without a warm start (the
    same folder: the run trained before, installed from the committed weights, is kept); a method it names
    continues from the weights, as with every method warm-started."""
    from clorg.data import choose_profile_dataset

    weights = tmp_path / "weights"
    bundle.export(moco_run, weights)  # MoCo's weights only
    plain = tiny()
    data = choose_profile_dataset(plain)
    some = tiny(**{"train.warm_start": str(weights), "train.warm_start_methods": ["moco_queue"]})
    every = tiny(**{"train.warm_start": str(weights)})

    def name(cfg, spec):
        return runs.locate(cfg, spec, data)[1].name

    assert name(some, SUPERVISED) == name(plain, SUPERVISED)
    assert "warm_start" not in runs.resolve(some, SUPERVISED, data.summary())
    assert name(some, MOCO) == name(every, MOCO) != name(plain, MOCO)
    with pytest.raises(ValueError, match="no shards resnet18-supervised-cosine"):
        name(every, SUPERVISED)  # every method continues: the supervised one would need weights of its own


def test_warm_start_methods_must_be_methods_the_profile_trains():
    with pytest.raises(ConfigError, match=r"train.warm_start_methods names \['simclr'\], which neither train.methods "
                                          r"nor train.variants trains \(\['moco_queue', 'supervised'\]\)"):
        tiny(**{"train.warm_start_methods": ["simclr"]})
    # a method that only a variant trains is one a warm start can continue
    simclr_variant = [{"encoder": "resnet18", "method": "simclr", "schedule": "cosine"}]
    cfg = tiny(**{"train.variants": simclr_variant, "train.warm_start_methods": ["simclr"]})
    assert cfg["train"]["warm_start_methods"] == ["simclr"]
    with pytest.raises(ConfigError, match=r"train.warm_start_methods = 'moco_queue' must be null \(= every method\)"):
        tiny(**{"train.warm_start_methods": "moco_queue"})
    assert tiny(**{"train.warm_start_methods": ["moco_queue"]})["train"]["warm_start_methods"] == ["moco_queue"]


def test_adding_warm_start_methods_left_every_stored_fingerprint_as_it_was():
    """Results stored before the key existed (gpu10's, which no CPU can recompute whole) hash as before at its
    null; a list is another configuration of the train section."""
    from clorg.book import store

    before = {k: v for k, v in tiny()["train"].items() if k != "warm_start_methods"}
    assert store._hashed_section("train", tiny()["train"]) == before
    assert "warm_start_methods" in store._hashed_section("train", tiny(**{"train.warm_start_methods": ["moco_queue"]})["train"])


# ============================================= the job's driver =============================================

def _job(tmp_path, *extra, budget=600):
    env = {**os.environ, "CLORG_RUNS": str(tmp_path / "runs"), "CLORG_RESULTS": str(tmp_path / "results"),
           "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    args = [sys.executable, str(ROOT / "ci" / "device_job.py"), "--profile", "smoke", "--out", str(tmp_path / "out"),
            "--budget", str(budget), "--train-budget", "10", "--probe-steps", "2", "--probe-warmup", "1"]
    for k, v in TINY.items():
        args += ["--override", f"{k}={v}"]
    return subprocess.Popen(args + list(extra), env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def test_job_isolates_a_failing_step_and_packs_everything_else(tmp_path):
    proc = _job(tmp_path, "--fail-step", "04_metrics", "--compile-backend", "eager")
    out, _ = proc.communicate(timeout=900)
    assert proc.returncode == 3, out
    job = json.loads((tmp_path / "out" / "job.json").read_text())
    status = {s["step"]: s["status"] for s in job["steps"]}
    assert status["04_metrics"].startswith("failed: RuntimeError: injected failure")
    assert status["train moco_queue"] == "ok" and status["07_dynamics"] == "ok" and status["summary"] == "ok"
    # the speed of the run it trained, measured after training (the compiled path with dynamo's no-op backend)
    assert status["speed: breakdown"] == status["speed: batches"] == status["speed: torch.compile"] == "ok"
    speed = job["speed"]
    assert speed["method"] == "moco_queue" and speed["breakdown"]["busy_ms"] > 0
    assert list(speed["batches"]) == ["32", "64", "128"]  # half, the profile's and twice its batch
    # in a process of its own, stopped at the deadline: here it ends well before it
    assert speed["compile"]["backend"] == "eager" and speed["compile"]["compiled_seconds_per_step"] > 0
    assert "unfinished_after_s" not in speed["compile"]
    assert job["sized"]["contrastive_epochs"] >= 1 and job["probe"]["moco_queue"]["seconds_per_step"] > 0
    assert job["train"]["contrastive_epochs"] == job["sized"]["contrastive_epochs"]
    assert sorted(p.name for p in (tmp_path / "out" / "weights").iterdir()) == [f"{MOCO_NAME}.0.pt", "resnet18-supervised-cosine.0.pt"]
    import tarfile

    with tarfile.open(tmp_path / "out" / "results.tar.gz") as tar:
        names = tar.getnames()
        built = json.load(tar.extractfile(next(n for n in names if n.endswith("/summary.json"))))
    assert any(n.endswith("/dynamics.json") for n in names) and not any(n.endswith("/geometry.json") for n in names)
    assert built["build_seconds"] is None  # the job computes some chapters: no build's time


def test_job_killed_after_training_keeps_its_weights_and_record(tmp_path):
    proc = _job(tmp_path, "--no-probe")
    job_json = tmp_path / "out" / "job.json"
    deadline = time.time() + 600
    try:
        while time.time() < deadline:  # until both runs are trained and packed
            if job_json.is_file():  # a step is listed when it starts: wait until it has ended
                steps = {s["step"]: s["status"] for s in json.loads(job_json.read_text())["steps"]}
                if steps.get("train moco_queue") == "ok":
                    break
            assert proc.poll() is None, proc.stdout.read()
            time.sleep(0.2)
        proc.send_signal(signal.SIGKILL)  # what the hard timeout does to a job that overruns
        proc.wait(timeout=30)
    finally:
        proc.kill()
    job = json.loads(job_json.read_text())
    assert {s["step"]: s["status"] for s in job["steps"]}["train moco_queue"] == "ok"
    meta, _ = bundle.read(tmp_path / "out" / "weights", MOCO_NAME)
    assert meta["epoch"] == 2 and meta["record"]["finished"]


def test_a_gpu_profile_on_a_machine_whose_torch_sees_no_gpu_is_refused_before_any_training(tmp_path):
    """A driver or CUDA mismatch on the lent machine: the job names it within seconds, where it used to probe and
    train the lease away on the machine's CPU (only --allow-cpu, the rehearsal's, runs a GPU profile there)."""
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "CLORG_RUNS": str(tmp_path / "runs"),
           "CLORG_RESULTS": str(tmp_path / "results")}
    env.pop("CLORG_ALLOW_CPU", None)
    done = subprocess.run([sys.executable, str(ROOT / "ci" / "device_job.py"), "--profile", "gpu10", "--out",
                           str(tmp_path / "out"), "--budget", "600", "--train-budget", "360"],
                          env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "gpu10 needs a GPU and torch" in done.stderr and "--allow-cpu" in done.stderr
    job = json.loads((tmp_path / "out" / "job.json").read_text())
    assert job["steps"] == [{"step": "setup", "status": "failed: no GPU visible to torch", "seconds": 0}]
    assert not (tmp_path / "runs").exists()  # nothing installed, nothing trained


def test_a_job_whose_deadline_is_nearer_than_its_training_budget_trains_to_the_deadline_not_past_it(tmp_path):
    """A short BUDGET without --only (or slow checks): the training budget is cut to what the deadline leaves,
    the export kept after it, so the weights are packed before the hard timeout could strike."""
    proc = _job(tmp_path, budget=25)  # --train-budget 10, but 25 s in all: setup and the export's 20 s leave less
    out, _ = proc.communicate(timeout=600)
    job = json.loads((tmp_path / "out" / "job.json").read_text())
    assert job["train_budget_capped_s"] < 5, out
    assert "the job's deadline is near" in out
    status = {s["step"]: s["status"] for s in job["steps"]}
    assert status["train supervised"] == status["train moco_queue"] == "ok", status
    assert sorted(p.name for p in (tmp_path / "out" / "weights").iterdir()) == [f"{MOCO_NAME}.0.pt",
                                                                               "resnet18-supervised-cosine.0.pt"]
    # sized to the cut budget (recorded to 0.1 s), not to --train-budget's 10 s: how many epochs that is depends
    # on the machine's speed (one here, two on a faster CI machine), so the sizing is recomputed from its probe
    device_job, capped = _script("device_job"), job["train_budget_capped_s"]
    fits = {device_job.size_contrastive({"train": job["train"]}, job["probe"], b, device_job.MARGIN)
            ["contrastive_epochs"]
            for b in (capped - 0.05, capped + 0.05)}
    assert min(fits) <= job["sized"]["contrastive_epochs"] <= max(fits), (job["sized"], job["probe"], capped)


def test_device_run_names_a_budget_that_is_not_seconds_before_any_check(tmp_path):
    """BUDGET_SECONDS may be left out before `--` (the usage allows it); anything else in its place is named
    at once, where `gpu10 -- --only X` used to fail after the checks and the wheels with a shell syntax error."""
    done = subprocess.run(["bash", str(ROOT / "ci" / "device_run.sh"), "gpu10", "5m"], cwd=tmp_path,
                          env={**os.environ, "OUT": str(tmp_path / "out")}, capture_output=True, text=True)
    assert done.returncode == 2 and "BUDGET_SECONDS must be whole seconds, got '5m'" in done.stderr, done.stderr
    assert not (tmp_path / "out").exists()


def test_the_probe_sizes_the_contrastive_run_alone_when_the_supervised_one_is_kept():
    """Job 1's probe (1.31 s a supervised epoch, 3.64 s a MoCo one) in a 360-s training budget: 76 MoCo epochs
    beside the supervised run at job 1's 8 % reserve; at today's 12 % (job 1's epochs ran 6 % over the
    probe), 72 beside it and 87 when the supervised run is kept (its probe then absent)."""
    job = _script("device_job")
    cfg = load_profile("gpu10")
    probes = {"supervised": {"seconds_per_epoch": 1.31}, "moco_queue": {"seconds_per_epoch": 3.64}}
    first = job.size_contrastive(cfg, probes, 360, 0.08)
    assert (first["contrastive_epochs"], first["checkpoint_every"]) == (76, 10)  # job 1's sizing
    assert job.MARGIN == 0.12 and job.size_contrastive(cfg, probes, 360, job.MARGIN)["contrastive_epochs"] == 72
    alone = job.size_contrastive(cfg, {"moco_queue": probes["moco_queue"]}, 360, job.MARGIN)
    assert alone["contrastive_epochs"] == 87 and alone["supervised_seconds_expected"] == 0
    assert alone["checkpoint_every"] == 11  # ceil(87 / 8): not in a run's name, so the kept run keeps its own
    # a variant trains MoCo again under another schedule: both runs' epochs share the budget (probed once)
    both = job.size_contrastive(cfg, probes, 360, job.MARGIN, {"supervised": 1, "moco_queue": 2})
    assert both["contrastive_epochs"] == math.floor((360 * 0.88 - 1.31 * 40) / (2 * 3.64)) == 36


def test_a_job_keeping_a_contrastive_run_does_not_size_the_settings_that_name_it():
    can_size = _script("device_job").can_size
    simclr = RunSpec("resnet18", "simclr", "cosine")
    assert can_size([MOCO], [SUPERVISED]) and can_size([MOCO, SUPERVISED], [])
    assert not can_size([MOCO], [simclr])  # epochs and warm-up are shared: sizing would rename simclr's run
    assert not can_size([SUPERVISED], [MOCO]) and not can_size([], [SUPERVISED])  # nothing contrastive to size


def test_a_warm_start_job_keeps_the_runs_of_the_methods_it_leaves_out(moco_run, tmp_path):
    """The job neither probes nor trains the kept supervised run, brings back only MoCo's weights (the
    import leaves the committed supervised ones in place) and says which run it kept."""
    weights = tmp_path / "weights"
    bundle.export(moco_run, weights)
    kept = run(tiny(), SUPERVISED, runs_root=tmp_path / "runs", progress=False)  # as installed from the weights
    proc = _job(tmp_path, "--override", f"train.warm_start={weights}",
                "--override", "train.warm_start_methods=[moco_queue]", budget=300)
    out, _ = proc.communicate(timeout=900)
    assert proc.returncode in (0, 3), out
    job = json.loads((tmp_path / "out" / "job.json").read_text())
    assert job["kept"] == ["resnet18-supervised-cosine"] and list(job["probe"]) == ["moco_queue"]
    assert job["runs"]["resnet18-supervised-cosine"] == {"run": kept.folder.name, "kept": True, "epochs_done": 2}
    status = {s["step"]: s["status"] for s in job["steps"]}
    assert status["train supervised"] == status["train moco_queue"] == "ok" and "warm start from" in out
    assert sorted(p.name for p in (tmp_path / "out" / "weights").iterdir()) == [f"{MOCO_NAME}.0.pt"]
    assert job["train"]["warm_start_methods"] == ["moco_queue"] and "@" in job["train"]["warm_start"]


def test_a_job_without_a_warm_start_keeps_a_finished_supervised_run_and_sizes_the_contrastive_one_anew(tmp_path):
    """The committed supervised run, installed (same settings), is kept, not "trained" again: reused by the
    loop, it was reported with an earlier job's time and exported without its head. The contrastive run,
    finished too, is probed and trained again at the epochs the probe sizes (another run)."""
    run(tiny(), SUPERVISED, runs_root=tmp_path / "runs", progress=False)  # as installed from the weights
    moco = run(tiny(), MOCO, runs_root=tmp_path / "runs", progress=False)
    proc = _job(tmp_path, budget=60)
    out, _ = proc.communicate(timeout=900)
    assert proc.returncode in (0, 3), out
    job = json.loads((tmp_path / "out" / "job.json").read_text())
    assert job["kept"] == ["resnet18-supervised-cosine"] and list(job["probe"]) == ["moco_queue"]
    assert job["runs"]["resnet18-supervised-cosine"]["kept"] is True
    assert job["runs"][MOCO_NAME]["run"] != moco.folder.name  # sized anew: another run, trained here
    assert sorted(p.name for p in (tmp_path / "out" / "weights").iterdir()) == [f"{MOCO_NAME}.0.pt"]


# ====================================== the book reads committed weights ======================================

def test_the_book_installs_committed_weights_and_never_recomputes_dynamics_from_them(moco_run, tmp_path, monkeypatch,
                                                                                   capsys):
    from clorg.book import chapters
    from clorg.data import choose_profile_dataset

    monkeypatch.setenv("CLORG_WEIGHTS", str(tmp_path / "weights"))
    monkeypatch.setenv("CLORG_RUNS", str(tmp_path / "runs"))
    bundle.export(moco_run, tmp_path / "weights" / "smoke")
    cfg = tiny(**{"train.methods": ["moco_queue"]})
    data = choose_profile_dataset(cfg)
    (folder,) = chapters.install_committed(cfg, data)
    assert folder.name == moco_run.folder.name and runs.RunFolder(folder).is_usable()
    assert chapters.install_committed(cfg, data) == []  # installed once
    # a chapter reading the final weights computes from them; the dynamics, which read the snapshots, never
    assert chapters.can_analyse(cfg, data, chapters.CHAPTERS["04_metrics"])
    assert not chapters.can_analyse(cfg, data, chapters.CHAPTERS["07_dynamics"])
    # weights of another configuration are not installed as this profile's run, and the reason is printed
    other = tiny(**{"train.methods": ["moco_queue"], "train.contrastive_epochs": 3})
    assert chapters.install_committed(other, data) == []
    assert "settings that differ: epochs" in capsys.readouterr().out


def _script(name: str):
    """A module of ci/ (a script, not a package), imported for its functions."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, ROOT / "ci" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_job_imported_twice_is_recorded_once(tmp_path):
    """The import is run again once the profile holds the settings it printed: the same job must not become
    a second job's record (job-2.json), while another job does."""
    record_job = _script("import_device_run").record_job
    first, second = {"card": "NVIDIA H200", "seconds": 452.8}, {"card": "NVIDIA H200", "seconds": 67.1}
    assert record_job(tmp_path, first) == (tmp_path / "job.json", True)
    assert record_job(tmp_path, first) == (tmp_path / "job.json", False)
    assert record_job(tmp_path, second) == (tmp_path / "job-2.json", True)
    assert record_job(tmp_path, second) == (tmp_path / "job-2.json", False)
    (tmp_path / "job-3.json").write_text("{damaged")  # unreadable: not this job's, but a job all the same
    assert record_job(tmp_path, {"seconds": 1.0}) == (tmp_path / "job-4.json", True)
    assert json.loads((tmp_path / "job.json").read_text()) == first


def test_the_import_warns_when_the_job_records_another_commit_than_this_trees():
    """Job 1 recorded the commit .device-data/COMMIT was staged at, older than the code it ran: the import
    says so (a dirty tree or job is the same commit)."""
    warning = _script("import_device_run").commit_warning
    assert warning({"commit": "abc+dirty"}, "abc") is None and warning({"commit": "abc"}, "abc+dirty") is None
    said = warning({"commit": "1d7e443+dirty"}, "bba999e")
    assert said.startswith("warning: the job records commit '1d7e443+dirty', this tree is at 'bba999e'")
    assert "run ci/stage_device_data.sh right before each job" in said
    assert warning({}, "bba999e").startswith("warning: the job records commit ''")


def test_a_job_starts_from_the_committed_results_without_overwriting_its_own(tmp_path):
    """An analysis job resumes the heads an earlier job finished: the committed results/<profile>/ are copied
    into its results folder, but never over a file it has (a machine that ran a job before)."""
    seed = _script("device_job").seed_results
    committed, here = tmp_path / "tree" / "results" / "gpu10", tmp_path / "job" / "gpu10"
    committed.mkdir(parents=True)
    for name, text in (("classifiers.parts.json", "old parts"), ("geometry.json", "committed"), (".x.lock", "")):
        (committed / name).write_text(text)
    here.mkdir(parents=True)
    (here / "geometry.json").write_text("this job's")
    assert seed(committed, here) == ["classifiers.parts.json"]
    assert (here / "geometry.json").read_text() == "this job's" and not (here / ".x.lock").exists()
    assert seed(committed, committed) == [] and seed(tmp_path / "none", here) == []


def test_the_import_drops_parts_only_of_results_the_job_finished():
    """A job stores the whole result, then removes its parts: a pack with both holds a whole result older
    than its parts (copied in from the committed ones), whose parts must stay for the next job."""
    finished = _script("import_device_run").finished_parts
    assert finished(["classifiers.json", "geometry.json", "tsne.npz"]) == ["classifiers", "geometry", "tsne"]
    assert finished(["classifiers.json", "classifiers.parts.json", "geometry.json"]) == ["geometry"]
    assert finished(["classifiers.parts.json"]) == []


def _compile_study(monkeypatch, tmp_path, backend, seconds):
    from clorg.data import choose_profile_dataset

    monkeypatch.syspath_prepend(str(ROOT / "ci"))  # the spawned process imports the job's module by name
    # inductor compiles from nothing (its caches on disk would make a second compilation fast)
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))
    monkeypatch.setenv("TORCHINDUCTOR_FX_GRAPH_CACHE", "0")
    import device_job

    cfg = tiny()
    return device_job.compile_study(cfg, choose_profile_dataset(cfg), RunSpec("resnet18", "moco_queue", "cosine"),
                                    torch.device("cpu"), 10.0, backend, seconds)


def test_a_compile_measurement_that_outlasts_its_time_is_stopped_and_says_so(monkeypatch, tmp_path):
    """torch.compile's measurement runs in a process of its own, stopped when its seconds are up: a
    compilation cannot be interrupted, and the job's hard timeout must not be the thing that ends it."""
    import multiprocessing

    out = _compile_study(monkeypatch, tmp_path, "eager", 1.0)
    # "unfinished" is returned only for a child still alive when its second was up: it was stopped then,
    # and killed, not left to run on beside the job
    assert out == {"backend": "eager", "batch": 64, "unfinished_after_s": 1}  # stopped before its eager half
    assert not multiprocessing.active_children()
    # stopped while inductor compiles (tens of seconds on two cores): the eager half, measured before, is kept.
    # Its limit is sized on this machine as it is now (a loaded one is slower at both halves): the time of a
    # whole measurement with the eager backend, whose compilation takes a second, and 3 s more
    started = time.monotonic()
    whole = _compile_study(monkeypatch, tmp_path, "eager", 600.0)
    assert whole["compiled_seconds_per_step"] > 0 and "unfinished_after_s" not in whole, whole
    seconds = math.ceil(time.monotonic() - started) + 3
    out = _compile_study(monkeypatch, tmp_path, "inductor", float(seconds))
    assert out["unfinished_after_s"] == seconds and out["eager_seconds_per_step"] > 0, out
    assert "compiled_seconds_per_step" not in out


def test_a_compile_measurement_that_fails_says_why(monkeypatch, tmp_path):
    with pytest.raises(RuntimeError, match="compile measurement failed: .*no_such_backend.*eager_seconds_per_step"):
        _compile_study(monkeypatch, tmp_path, "no_such_backend", 60.0)


def _staging_repo(tmp_path):
    """A git repository holding ci/stage_device_data.sh alone: the script stages into the repository it sits in."""
    repo = tmp_path / "repo"
    (repo / "ci").mkdir(parents=True)
    shutil.copy2(ROOT / "ci" / "stage_device_data.sh", repo / "ci")
    (repo / ".gitignore").write_text("/.device-data/\n")
    for command in (["init", "-q"], ["add", "."], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"]):
        subprocess.run(["git", *command], cwd=repo, check=True)
    return repo


def _stage(repo, *args, data=None, cwd=None):
    env = {k: v for k, v in os.environ.items() if k != "CLORG_DATA"}
    if data is not None:
        env["CLORG_DATA"] = str(data)
    return subprocess.run(["bash", str(repo / "ci" / "stage_device_data.sh"), *args], env=env, cwd=cwd,
                          capture_output=True, text=True)


def test_staging_reads_the_data_folder_the_book_reads_and_names_it_when_the_tarball_is_not_there(tmp_path):
    """README's `ci/stage_device_data.sh`, printed without an argument, takes the tarball from $CLORG_DATA (the
    folder a user exported for the book); a folder without it is named with both fixes, and nothing is staged."""
    repo = _staging_repo(tmp_path)
    empty = tmp_path / "no-data"
    empty.mkdir()
    done = _stage(repo, data=empty)
    assert done.returncode == 1
    assert f"{empty}/cifar10-jpeg.tar.gz not found" in done.stderr and "CLORG_DATA=" in done.stderr, done.stderr
    assert not (repo / ".device-data").exists()  # no COMMIT left behind by a call that failed
    # an argument names the folder over $CLORG_DATA; a relative one is read from where the script is called
    done = _stage(repo, "other", data=empty, cwd=tmp_path)
    assert done.returncode == 1 and f"{tmp_path}/other/cifar10-jpeg.tar.gz not found" in done.stderr, done.stderr
    # a tarball that is not the known one: refused, and nothing is staged, not even the commit
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "cifar10-jpeg.tar.gz").write_bytes(b"not the tarball")
    done = _stage(repo, "other", cwd=tmp_path)
    assert done.returncode == 1 and "sha256 of the copy" in done.stderr, done.stderr
    assert not [p.name for p in (repo / ".device-data").iterdir()]


def test_staging_copies_the_tarball_from_clorg_data_and_records_the_commit(tmp_path):
    shared = ROOT.parent / "shared" / "data"
    if not (shared / "cifar10-jpeg.tar.gz").is_file():
        pytest.skip(f"needs the CIFAR-10 tarball of {shared} (its sha256 is fixed in the script)")
    repo = _staging_repo(tmp_path)
    done = _stage(repo, data=shared)
    assert done.returncode == 0, done.stderr
    assert "what travels to the device machine" in done.stdout
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()
    assert (repo / ".device-data" / "COMMIT").read_text() == head
    staged = repo / ".device-data" / "cifar10-jpeg.tar.gz"
    assert staged.stat().st_size == (shared / "cifar10-jpeg.tar.gz").stat().st_size
    # staged already: no data folder is needed again (the staged copy is checked instead)
    done = _stage(repo, data=tmp_path / "gone")
    assert done.returncode == 0 and "already there and identical" in done.stdout, done.stderr
