"""The trainer on real (tiny) runs: reuse, deadlines, the command line, torchrun. (The schedules:
tests/test_schedule.py. Resume after SIGKILL, two processes asking for one run, divergence, code hidden in
a checkpoint and runs of older code are faults of the catalogue: tests/test_faults.py.)"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from clorg.core.config import CONFIG_DIR, RunSpec, load_profile
from clorg.train import load_finished, resolve, run, run_hash, runs, train_command
from clorg.train.checkpoint import load
from clorg.train.runs import RunNotFound

from clorg.core.paths import ROOT  # the project root, defined once
# 8x8 digits, 60 images per class, a 1/8-width ResNet-18: a real run in seconds
TINY = {"data.dataset": "digits", "data.train_per_class": 60, "data.test_per_class": 10,
        "train.contrastive_batch_size": 64, "train.supervised_batch_size": 64, "train.moco_queue_size": 256,
        "train.contrastive_epochs": 4, "train.supervised_epochs": 2, "train.checkpoint_every": 1}


def tiny(**more):
    return load_profile("smoke", {**TINY, **more})


def spec(encoder="resnet18", method="supervised", schedule="cosine"):
    return RunSpec(encoder, method, schedule)


def cli(args, runs_root, overrides=None, **kwargs):
    """``python -m clorg.train`` on the tiny smoke run; ``overrides`` replace TINY's (a key given twice is refused)."""
    env = {**os.environ, "CLORG_RUNS": str(runs_root), "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "clorg.train", "--config", "smoke",
                             *[f"--override={k}={json.dumps(v)}" for k, v in {**TINY, **(overrides or {})}.items()],
                             *args],
                            env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)


def test_resolve_checks_the_configuration_before_training():
    cfg = tiny()
    summary = {"name": "digits", "sha256": "x", "train_images": 600, "image_shape": [8, 8, 1], "classes": list("0123456789")}
    with pytest.raises(ValueError, match=r"unknown encoder 'resnet50'; valid encoders: \['resnet18', 'resnet101', 'vit'\]"):
        resolve(cfg, spec("resnet50", "simclr"), summary)
    with pytest.raises(ValueError, match=r"unknown method 'byol'; valid methods: \['moco_queue', 'simclr', 'supervised'\]"):
        resolve(cfg, spec("resnet18", "byol"), summary)
    with pytest.raises(ValueError, match=r"batch size 64 is larger than the 40 training images"):
        resolve(cfg, spec("resnet18", "simclr"), {**summary, "train_images": 40})
    a = resolve(cfg, spec("resnet18", "simclr"), summary)
    assert run_hash(a) == run_hash(resolve(tiny(**{"train.checkpoint_every": 3}), spec("resnet18", "simclr"), summary))
    assert run_hash(a) != run_hash(resolve(tiny(**{"train.contrastive_epochs": 5}), spec("resnet18", "simclr"), summary))
    # the schedule is part of a run: its own hash and folder; paper-literal also hashes its T_0
    literal = resolve(cfg, spec("resnet18", "simclr", "paper-literal"), summary)
    assert literal["schedule"] == "paper-literal" and literal["restart_epochs"] == cfg["train"]["contrastive_restart_epochs"]
    assert "restart_epochs" not in a and run_hash(literal) != run_hash(a)
    longer = resolve(tiny(**{"train.contrastive_restart_epochs": 7}), spec("resnet18", "simclr", "paper-literal"), summary)
    assert run_hash(longer) != run_hash(literal)
    assert runs.run_dir("smoke", literal, Path("/r")).name.startswith("resnet18-simclr-paper-literal-")
    assert runs.run_dir("smoke", a, Path("/r")).name == f"resnet18-simclr-{run_hash(a)}"
    supervised = resolve(cfg, spec("resnet18", "supervised"), summary)
    assert supervised["crop_scale"] == cfg["train"]["supervised_crop_scale"]
    assert "kind" not in supervised  # derived from the method wherever it is needed (core.config.kind_of)
    assert train_command(cfg, spec("vit", "moco_queue")).endswith("--encoder vit --method moco_queue")
    assert train_command(cfg, spec("vit", "moco_queue", "paper-compressed")).endswith("--schedule paper-compressed")
    # a variant's run is trained with the variant's overrides, a profile file by its path
    variant = load_profile("smoke", {"data.train_per_class": 20})
    assert train_command(variant, spec("resnet18", "supervised")) == (
        "python -m clorg.train --config smoke --override data.train_per_class=20 --encoder resnet18 --method supervised")
    assert train_command(load_profile(CONFIG_DIR / "smoke.yaml"), spec("resnet18", "supervised")).startswith(
        "python -m clorg.train --config configs/smoke.yaml --encoder")  # from the project root, where commands run


@pytest.mark.parametrize("method", ["moco_queue", "supervised"])
def test_runs_named_when_the_configuration_stored_the_kind_keep_their_names(method):
    """The GPU job of 2026-12-04 named its runs from a configuration that still stored the method's kind; the
    committed weights install into folders of those names, so the hash of that configuration without the
    kind is the hash in their name."""
    meta = json.loads((ROOT / "weights" / "gpu10" / f"resnet18-{method}-cosine.json").read_text())
    assert meta["config"]["kind"] in ("contrastive", "supervised")
    without = {k: v for k, v in meta["config"].items() if k != "kind"}
    assert meta["run"] == f"resnet18-{method}-{run_hash(without)}"


@pytest.mark.parametrize("method", ["moco_queue", "supervised"])
def test_the_committed_gpu10_weights_warm_start_its_runs_as_the_next_gpu_job_will(method, capsys):
    """The next GPU job starts from weights/gpu10 (train.warm_start): every tensor of the committed bundles
    loads into today's model of that run (strictly: no key missing or left over), encoder and head."""
    from clorg.train import bundle, loop

    name = f"resnet18-{method}-cosine"
    meta = json.loads((ROOT / "weights" / "gpu10" / f"{name}.json").read_text())
    run_cfg = {**runs.current_config(meta["config"]), "warm_start": runs.warm_start_of("weights/gpu10", name)}
    shape = run_cfg["dataset"]["image_shape"]
    method_, _ = loop.build_training(run_cfg, shape[2], shape[0], torch.device("cpu"))
    origin = loop._warm_start(method_, run_cfg, main=True)
    before = meta["record"].get("epochs_before", 0) + meta["epoch"]  # all the jobs' epochs so far
    assert origin == {"run": meta["run"], "epochs_before": before, "jobs_before": meta["record"].get("jobs", 1)}
    assert f"warm start from weights/gpu10 ({meta['run']}, {before} epochs" in capsys.readouterr().out
    _, tensors = bundle.read(ROOT / "weights" / "gpu10", name)
    conv = next(k for k, v in tensors.items() if k.startswith("encoder.") and v.dim() == 4)
    assert torch.equal(method_.encoder.state_dict()[conv.removeprefix("encoder.")], tensors[conv].float())


def test_finished_run_is_reused_and_records_provenance(tmp_path):
    first = run(tiny(), spec(), runs_root=tmp_path, progress=False)
    assert not first.reused and first.record["finished"]
    assert [e["epoch"] for e in first.log] == [1, 2]
    # no probe in the loop any more: the record holds the final loss and how far the run got
    assert "knn_accuracy" not in first.record
    assert math.isfinite(first.record["final_loss"]) and first.record["final_loss"] == first.log[-1]["loss"]
    assert first.record["epochs_done"] == 2 and first.record["stopped_early"] is None
    assert first.final_epoch == 2 and first.stopped_early is None and first.spec == spec()
    for key in ("commit", "code", "libraries", "hardware", "data", "parameters", "images_per_s"):
        assert key in first.record
    assert first.record["data"]["name"] == "digits" and len(first.record["data"]["sha256"]) == 64
    again = run(tiny(), spec(), runs_root=tmp_path, progress=False)
    assert again.reused and again.folder == first.folder
    enc = again.load_encoder()
    assert enc(torch.zeros(2, 1, 8, 8)).shape == (2, 512)
    assert again.load_encoder(epoch=0) is not None  # the random initialisation is kept too


def test_the_loop_steps_the_learning_rate_along_the_whole_run(tmp_path):
    """Each epoch's logged rate is the cosine at the run's global step, not at the step within the epoch (a
    schedule restarted every epoch logs one rate three times): base x (1 + cos(pi s / S)) / 2 at the last step s
    of each epoch, S the run's steps, written out here rather than read from clorg.train.schedule."""
    done = run(tiny(**{"train.supervised_epochs": 3}), spec(), runs_root=tmp_path, progress=False)
    cfg = done.config
    assert cfg["warmup_epochs"] == 0  # the smoke profile's: the formula below has no warm-up
    steps = 600 // cfg["batch_size"]  # 60 digits per class, the last incomplete batch dropped
    base = cfg["lr_per_256"] * cfg["batch_size"] / 256
    expected = [base * (1 + math.cos(math.pi * ((e + 1) * steps - 1) / (3 * steps))) / 2 for e in range(3)]
    assert [entry["lr"] for entry in done.log] == pytest.approx(expected, rel=1e-9)
    assert expected[0] > 2 * expected[1] > 0  # three different rates: a per-epoch restart could not match them


def final_state(folder):
    return load(folder / "checkpoints" / "last.pt")["method"]


def run_folders(root):
    """The run folders of the smoke profile under a runs root (beside them: each run's lock file)."""
    return sorted(p for p in (root / "smoke").iterdir() if p.is_dir()) if (root / "smoke").exists() else []


def test_analysis_never_trains_a_missing_run(tmp_path):
    # clorg's own error (a notebook shows it as its message), naming the notebook's parameters and the command
    with pytest.raises(RunNotFound, match=r"does not exist. Produce it with notebooks/02_train.ipynb, its parameters "
                                          r"profile = 'smoke', overrides = \{.*'train.contrastive_epochs': .*\}, or "
                                          r"`python -m clorg.train .*--encoder resnet18 --method simclr"):
        load_finished(tiny(), spec("resnet18", "simclr"), runs_root=tmp_path)
    assert issubclass(RunNotFound, FileNotFoundError)  # what callers catching a missing file still catch
    done = run(tiny(), spec(), runs_root=tmp_path, progress=False)
    assert load_finished(tiny(), spec(), runs_root=tmp_path).folder == done.folder


def test_cli_rejects_bad_configuration_before_training(tmp_path):
    proc = cli(["--encoder", "resnet50", "--method", "simclr"], tmp_path)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 2 and "unknown encoder 'resnet50'; valid: resnet18, resnet101, vit" in out
    proc = cli(["--encoder", "vit", "--method", "simclr", "--override", "train.optimizer=sgd"], tmp_path)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 2 and "unknown override key 'train.optimizer'" in out
    assert not (tmp_path / "smoke").exists()


def test_cli_missing_data_fails_before_training(tmp_path, monkeypatch):
    monkeypatch.setenv("CLORG_DATA", str(tmp_path / "no-data"))
    proc = cli(["--encoder", "resnet18", "--method", "simclr"], tmp_path, overrides={"data.dataset": "cifar10"})
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 2 and "error: none of the datasets cifar10 could be loaded" in out, out
    assert "cifar-10-python.tar.gz" in out and not (tmp_path / "smoke").exists()


def test_torchrun_two_processes_on_cpu(tmp_path):
    env = {**os.environ, "CLORG_RUNS": str(tmp_path), "OMP_NUM_THREADS": "1"}
    args = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
            "-m", "clorg.train", "--config", "smoke", "--encoder", "resnet18", "--method", "simclr",
            *[f"--override={k}={json.dumps(v)}" for k, v in {**TINY, "train.contrastive_epochs": 1}.items()]]
    done = subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    (folder,) = run_folders(tmp_path)
    record = json.loads((folder / "record.json").read_text())
    assert record["finished"] and record["processes"] == 2
    # each rank augments with its own stream, and the checkpoint keeps both, in rank order
    streams = load(folder / "checkpoints" / "last.pt")["rng"]["augment"]
    assert len(streams) == 2 and not torch.equal(streams[0], streams[1])

    # resumed by one process (a checkpoint of two): the stream is derived from the seed, and it says so
    state = load(folder / "checkpoints" / "last.pt")
    state["epoch"] = 0
    torch.save(state, folder / "checkpoints" / "last.pt")
    (folder / "record.json").write_text(json.dumps({**record, "finished": False}))
    cfg = load_profile("smoke", {**TINY, "train.contrastive_epochs": 1})
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        again = run(cfg, spec(method="simclr"), runs_root=tmp_path, progress=False)
    assert again.record["finished"] and again.record["processes"] == 1
    assert "written by 2 processes, not 1: the augmentation streams are derived from the seed" in out.getvalue()


def test_run_stopped_by_a_deadline_is_usable_and_resumes(tmp_path, capsys):
    cfg = tiny(**{"train.supervised_epochs": 3})
    stopped = run(cfg, spec(), runs_root=tmp_path, progress=False, stop_after=time.time() - 1)  # past deadline
    assert not stopped.reused and not stopped.record["finished"]
    assert stopped.record["epochs_done"] == 1 and stopped.final_epoch == 1
    assert stopped.stopped_early == "deadline: stopped after epoch 1 of 3"
    assert [e["epoch"] for e in stopped.log] == [1]
    assert load(stopped.folder / "checkpoints" / "last.pt")["epoch"] == 1  # checkpointed where it stopped
    assert (stopped.folder / "checkpoints" / "encoder_e0001.pt").is_file()
    assert "stopped after epoch 1 of 3" in capsys.readouterr().out
    assert not runs.RunFolder(stopped.folder).is_finished() and runs.RunFolder(stopped.folder).is_usable()

    # the analysis can read it as it is, and says so
    usable = load_finished(cfg, spec(), runs_root=tmp_path)
    assert usable.folder == stopped.folder and usable.final_epoch == 1 and usable.stopped_early
    assert usable.load_encoder()(torch.zeros(2, 1, 8, 8)).shape == (2, 512)  # the epoch-1 encoder

    # resumed with its deadline already past, it starts no epoch that could not end in time
    late = run(cfg, spec(), runs_root=tmp_path, progress=False, stop_after=time.time() - 1)
    assert [e["epoch"] for e in late.log] == [1] and late.stopped_early == "deadline: stopped after epoch 1 of 3"
    assert load(late.folder / "checkpoints" / "last.pt")["epoch"] == 1

    # a later run() resumes it to completion, and clears what a process killed mid-write would have left
    leftovers = [stopped.folder / "checkpoints" / ".last.pt.k1ll3d00.tmp", stopped.folder / ".log.jsonl.k1ll3d00.tmp",
                 stopped.folder / "checkpoints" / ".encoder_e0002.pt.k1ll3d00.tmp"]
    features = stopped.folder / ".features_e0001.npz.wr1t1ng0.tmp"  # the analysis writes these, unlocked: not ours
    for path in [*leftovers, features]:
        path.write_bytes(b"half")
    done = run(cfg, spec(), runs_root=tmp_path, progress=False)
    assert not any(path.exists() for path in leftovers) and features.exists()
    assert "resuming" in capsys.readouterr().out
    assert not done.reused and done.record["finished"] and done.stopped_early is None
    assert done.record["epochs_done"] == 3 and done.final_epoch == 3
    assert [e["epoch"] for e in done.log] == [1, 2, 3]
    assert load_finished(cfg, spec(), runs_root=tmp_path).final_epoch == 3
    # and ends where an uninterrupted run ends, bit for bit
    clean = run(cfg, spec(), runs_root=tmp_path / "clean", progress=False)
    a, b = final_state(clean.folder), final_state(done.folder)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_the_command_line_refuses_a_device_this_machine_lacks(capsys):
    """--device is checked before any data is read: a misspelt kind, or a GPU where torch sees none (or an index
    past the count), is a usage error (exit 2) that says what to write, not torch's traceback mid-run."""
    from clorg.train.__main__ import device_problem, main

    assert device_problem("cpu") is None and device_problem("cpu:0") is None  # as torch reads it
    assert device_problem("gpu") == device_problem("cuda:") == device_problem("cuda:x") == "a device is cpu, cuda or cuda:N"
    if not torch.cuda.is_available():
        assert "no GPU" in device_problem("cuda") and "no GPU" in device_problem("cuda:0")
    else:
        assert device_problem("cuda") is None and "GPU(s)" in device_problem(f"cuda:{torch.cuda.device_count()}")
    with pytest.raises(SystemExit) as stop:
        main(["--config", "smoke", "--encoder", "resnet18", "--method", "moco_queue", "--device", "gpu"])
    assert stop.value.code == 2 and "--device gpu: a device is cpu, cuda or cuda:N" in capsys.readouterr().err


def test_the_command_line_refuses_a_gpu_profile_on_the_cpu_unless_asked(monkeypatch, capsys, tmp_path):
    """`python -m clorg.train --config paper` (or gpu10) where torch sees no GPU, or with --device cpu: exit 2
    with the way out (--allow-cpu and a shrunk profile), before any data is read; --allow-cpu or
    $CLORG_ALLOW_CPU=1 lets it go on. --help lists every shipped profile."""
    from clorg.core.config import available_profiles
    from clorg.train import __main__ as cli_main

    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    monkeypatch.delenv("CLORG_ALLOW_CPU", raising=False)
    monkeypatch.setattr(cli_main, "choose_profile_dataset", lambda cfg: pytest.fail("no data may be read"))
    for extra in ([], ["--device", "cpu"]):
        assert cli_main.main(["--config", "paper", "--encoder", "vit", "--method", "moco_queue", *extra]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: profile 'paper' needs a GPU (profile.needs_gpu: true) and ")
        assert "--allow-cpu" in err and "--override" in err
    # allowed: it goes on to read the data (here: none, so the run stops there, exit 2 with the data error)
    monkeypatch.setattr(cli_main, "choose_profile_dataset", lambda cfg: (_ for _ in ()).throw(ValueError("no data")))
    assert cli_main.main(["--config", "gpu10", "--encoder", "resnet18", "--method", "supervised", "--allow-cpu"]) == 2
    assert capsys.readouterr().err == "error: no data\n"
    monkeypatch.setenv("CLORG_ALLOW_CPU", "1")
    assert cli_main.main(["--config", "gpu10", "--encoder", "resnet18", "--method", "supervised"]) == 2
    assert capsys.readouterr().err == "error: no data\n"
    with pytest.raises(SystemExit):
        cli_main.main(["--help"])
    shown = capsys.readouterr().out
    assert all(name in shown for name in available_profiles())
