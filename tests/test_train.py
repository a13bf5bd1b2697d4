"""The trainer on real (tiny) runs: reuse, resume after SIGKILL, divergence, safe checkpoints, torchrun."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from clorg.config import load_profile
from clorg.train import TrainingDiverged, resolve, run, run_hash
from clorg.train.checkpoint import load, save_atomic
from clorg.train.schedule import lr_at, paper_literal_lr

ROOT = Path(__file__).resolve().parents[1]
# 8x8 digits, 60 images per class, a 1/8-width ResNet-18: a real run in seconds
TINY = {"data.dataset": "digits", "data.train_per_class": 60, "data.test_per_class": 10,
        "train.contrastive_batch_size": 64, "train.supervised_batch_size": 64, "train.moco_queue_size": 256,
        "train.contrastive_epochs": 4, "train.supervised_epochs": 2, "train.checkpoint_every": 1}


def tiny(**more):
    return load_profile("smoke", {**TINY, **more})


def cli(args, runs_root, **kwargs):
    env = {**os.environ, "CLORG_RUNS": str(runs_root), "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "clorg.train", "--config", "smoke",
                             *[f"--override={k}={json.dumps(v)}" for k, v in TINY.items()], *args],
                            env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)


def test_resolve_checks_the_configuration_before_training():
    cfg = tiny()
    summary = {"name": "digits", "sha256": "x", "train_images": 600, "image_shape": [8, 8, 1], "classes": list("0123456789")}
    with pytest.raises(ValueError, match=r"unknown encoder 'resnet50'; valid encoders: \['resnet18', 'resnet101', 'vit'\]"):
        resolve(cfg, "resnet50", "simclr", summary)
    with pytest.raises(ValueError, match=r"unknown method 'byol'; valid methods: \['moco_queue', 'simclr', 'supervised'\]"):
        resolve(cfg, "resnet18", "byol", summary)
    with pytest.raises(ValueError, match=r"batch size 64 is larger than the 40 training images"):
        resolve(cfg, "resnet18", "simclr", {**summary, "train_images": 40})
    a = resolve(cfg, "resnet18", "simclr", summary)
    assert run_hash(a) == run_hash(resolve(tiny(**{"train.checkpoint_every": 3}), "resnet18", "simclr", summary))
    assert run_hash(a) != run_hash(resolve(tiny(**{"train.contrastive_epochs": 5}), "resnet18", "simclr", summary))


def test_schedules():
    kw = dict(schedule="cosine", base_lr=1.0, steps_per_epoch=10, epochs=10, warmup_epochs=2, kind="contrastive")
    assert lr_at(0, **kw) == pytest.approx(1e-3)
    assert lr_at(20, **kw) == pytest.approx(1.0)  # end of warm-up
    assert lr_at(60, **kw) == pytest.approx(0.5)  # half-way through the cosine
    assert lr_at(99, **kw) < 0.01
    # the authors' literal schedule: their eta_min above the base rate makes the rate climb
    base = 1e-5 * 700 / 256
    assert paper_literal_lr(1200, base, 150, 1200, 1e-2) == pytest.approx(4.04e-3, rel=1e-3)
    assert paper_literal_lr(300, base, 150, 1200, 1e-2) > base


def test_finished_run_is_reused_and_records_provenance(tmp_path):
    first = run(tiny(), "resnet18", "supervised", runs_root=tmp_path, progress=False)
    assert not first.reused and first.record["finished"]
    assert [e["epoch"] for e in first.log] == [1, 2]
    assert 0.1 < first.record["knn_accuracy"] <= 1.0
    for key in ("commit", "libraries", "hardware", "data", "parameters", "images_per_s"):
        assert key in first.record
    assert first.record["data"]["name"] == "digits" and len(first.record["data"]["sha256"]) == 64
    again = run(tiny(), "resnet18", "supervised", runs_root=tmp_path, progress=False)
    assert again.reused and again.folder == first.folder
    enc = again.load_encoder()
    assert enc(torch.zeros(2, 1, 8, 8)).shape == (2, 512)
    assert again.load_encoder(epoch=0) is not None  # the random initialisation is kept too


def final_state(folder):
    return load(folder / "checkpoints" / "last.pt")["method"]


def test_resume_after_sigkill_is_bit_identical(tmp_path):
    clean = cli(["--encoder", "resnet18", "--method", "moco_queue"], tmp_path / "clean")
    out, _ = clean.communicate(timeout=600)
    assert clean.returncode == 0, out

    victim = cli(["--encoder", "resnet18", "--method", "moco_queue"], tmp_path / "killed")
    (folder,) = _wait_for_folder(tmp_path / "killed")
    log = folder / "log.jsonl"
    while not log.exists() or len(log.read_text().splitlines()) < 2:
        assert victim.poll() is None, victim.stdout.read()
        time.sleep(0.05)
    epoch_seconds = json.loads(log.read_text().splitlines()[-1])["seconds"]
    time.sleep(epoch_seconds / 2)  # into the middle of epoch 3
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert len(log.read_text().splitlines()) < 4, "the run finished before it could be killed"
    resumed = cli(["--encoder", "resnet18", "--method", "moco_queue"], tmp_path / "killed")
    out, _ = resumed.communicate(timeout=600)
    assert resumed.returncode == 0 and "resuming" in out, out

    (clean_folder,) = (tmp_path / "clean" / "smoke").iterdir()
    a, b = final_state(clean_folder), final_state(folder)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key  # bit-identical, queue and momentum encoder included
    assert [e["epoch"] for e in json.loads("[" + ",".join(log.read_text().splitlines()) + "]")] == [1, 2, 3, 4]


def _wait_for_folder(root, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = list((root / "smoke").glob("*")) if (root / "smoke").exists() else []
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"no run folder appeared under {root}")


def test_analysis_never_trains_a_missing_run(tmp_path):
    from clorg.train import load_finished

    with pytest.raises(FileNotFoundError, match=r"does not exist. Produce it with notebooks/02_train.ipynb.*"
                                                r"--encoder resnet18 --method simclr"):
        load_finished(tiny(), "resnet18", "simclr", runs_root=tmp_path)
    done = run(tiny(), "resnet18", "supervised", runs_root=tmp_path, progress=False)
    assert load_finished(tiny(), "resnet18", "supervised", runs_root=tmp_path).folder == done.folder


def test_nan_loss_stops_with_a_clear_message(tmp_path):
    with pytest.raises(TrainingDiverged, match=r"loss became (nan|inf).*Lower train.supervised_lr"):
        run(tiny(**{"train.supervised_lr": 1e30}), "resnet18", "supervised", runs_root=tmp_path, progress=False)


def test_divergence_keeps_the_last_good_checkpoint(tmp_path):
    done = run(tiny(), "resnet18", "supervised", runs_root=tmp_path, progress=False)
    last = done.folder / "checkpoints" / "last.pt"
    state = load(last)
    state["epoch"] = 1  # pretend the run stopped after epoch 1 with weights that have gone bad
    state["method"] = {k: (v * float("nan") if v.is_floating_point() else v) for k, v in state["method"].items()}
    save_atomic(state, last)
    record = json.loads((done.folder / "record.json").read_text())
    (done.folder / "record.json").write_text(json.dumps({**record, "finished": False}))
    before = last.read_bytes()
    with pytest.raises(TrainingDiverged, match=r"the last good checkpoint .*last.pt\) is kept"):
        run(tiny(), "resnet18", "supervised", runs_root=tmp_path, progress=False)
    assert last.read_bytes() == before


def test_checkpoints_never_execute_code(tmp_path):
    evil = tmp_path / "evil.pt"
    torch.save({"payload": os.system}, evil)
    with pytest.raises(RuntimeError, match="cannot read checkpoint"):
        load(evil)


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
    proc = cli(["--encoder", "resnet18", "--method", "simclr", "--override", "data.dataset=cifar10"], tmp_path)
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
    (folder,) = (tmp_path / "smoke").iterdir()
    record = json.loads((folder / "record.json").read_text())
    assert record["finished"] and record["processes"] == 2
