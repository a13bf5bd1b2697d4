"""The training loop: the whole uint8 dataset on the training device, batches sampled and augmented
there, AdamW with a per-step schedule, bf16 autocast where the hardware has it (:func:`autocast_dtype`),
channels_last where the profile asks for it, atomic checkpoints
that resume bit-identically, and DistributedDataParallel when started by torchrun."""

from __future__ import annotations

import math
import shutil
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from ..core import locks, paper, paths, provenance
from ..core.atomic import remove_leftovers
from ..core.config import RunSpec, kind_of
from ..core.devices import cpu_has_bf16, default_device
from ..data import DatasetChoice, choose_profile_dataset
from . import bundle, checkpoint, runs
from .runs import RunResult, finished, locate
from .augment import SUPERVISED_VIEW, contrastive_views, supervised_view
from .distributed import buffer_sync_off, convert_batchnorm, rank_and_world
from .methods import build_method
from .models import build_encoder, count_parameters
from .schedule import lr_at


class TrainingDiverged(RuntimeError):
    """The loss or the weights became NaN or infinite; the last good checkpoint is kept."""


def run(cfg: dict, spec: RunSpec, *, data: DatasetChoice | None = None, force: bool = False,
        device: str | torch.device | None = None, runs_root: Path | None = None, progress: bool = True,
        stop_after: float | None = None) -> RunResult:
    """Train ``spec`` (encoder, method, schedule) with profile ``cfg``, or reuse the finished run with
    the same hash.

    An interrupted run resumes from its last checkpoint; ``force=True`` discards it and starts over.
    Everything about the configuration is checked before any training starts. ``stop_after``: a
    ``time.time()`` deadline; training stops at the end of the last epoch that finishes before it,
    checkpointed, and the run stays unfinished (the next call resumes it). Two processes asking for the
    same run: the second waits for the first (:mod:`clorg.core.locks`) and reuses its run.
    """
    data = data or choose_profile_dataset(cfg)
    run_cfg, folder = locate(cfg, spec, data, runs_root)
    command = runs.train_command(cfg, spec)  # what error messages give to train it again
    rank, world = rank_and_world()
    if run_cfg["batch_size"] % world:
        raise ValueError(f"batch size {run_cfg['batch_size']} does not split over {world} processes")
    if runs.RunFolder(folder).is_finished() and not force:
        return finished(folder, run_cfg, command)
    if run_cfg.get("warm_start") and (force or not runs.RunFolder(folder).last_checkpoint.is_file()):
        runs.check_warm_start(run_cfg["warm_start"])  # before any folder is written
    device = torch.device(device) if device is not None else default_device()
    if world > 1:  # one torchrun job: its ranks train together and need no lock among themselves
        if rank == 0:
            _clear(folder, run_cfg, force)
        torch.distributed.barrier()  # no rank may look at the folder while rank 0 clears it
        return replace(_train(run_cfg, data, folder, device, progress, stop_after), command=command)
    with locks.exclusive(runs.RunFolder(folder).lock, f"run {folder.name}"):
        if runs.RunFolder(folder).is_finished() and not force:  # another process finished it while we waited
            return finished(folder, run_cfg, command)
        _clear(folder, run_cfg, force)
        return replace(_train(run_cfg, data, folder, device, progress, stop_after), command=command)


def _clear(folder: Path, run_cfg: dict, force: bool) -> None:
    """Before training: the whole folder when ``force``, else the temporary files that the trainer's writes left
    when a process was killed mid-write (a half last.pt is as large as a checkpoint). Only the trainer's own:
    the analysis writes features into the folder without the run's lock."""
    if force:
        shutil.rmtree(folder, ignore_errors=True)
        return
    for where, names in runs.RunFolder(folder).trainer_files(run_cfg["epochs"]).items():
        remove_leftovers(where, names)


def _views(run_cfg: dict, x: torch.Tensor, generator: torch.Generator):
    if kind_of(run_cfg["method"]) == "contrastive":
        return contrastive_views(x, generator)
    recipe = replace(SUPERVISED_VIEW, crop_scale=tuple(run_cfg["crop_scale"]))
    return (supervised_view(x, generator, recipe=recipe),)


def build_training(run_cfg: dict, channels: int, image_size: int, device: torch.device):
    """The method (encoder and heads) on ``device`` and its AdamW optimizer, for a resolved run config."""
    encoder = build_encoder(run_cfg["encoder"], width_scale=run_cfg["width_scale"], in_channels=channels,
                            image_size=image_size)
    method = build_method(run_cfg, encoder)
    if rank_and_world()[1] > 1:
        method = convert_batchnorm(method)  # statistics over the global batch, as with one process
    method.to(device)
    if run_cfg["channels_last"]:
        method.to(memory_format=torch.channels_last)
    base_lr = paper.scaled_lr(run_cfg["lr_per_256"], run_cfg["batch_size"])
    # fused: one kernel for all parameters on a GPU (the CPU keeps the reference implementation)
    optimizer = torch.optim.AdamW([p for p in method.parameters() if p.requires_grad], lr=base_lr,
                                  weight_decay=run_cfg["weight_decay"], fused=device.type == "cuda")
    return method, optimizer


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of ``train.precision`` on ``device``: "bf16" always, "fp32" never, "auto" bf16 on
    a GPU and on a CPU with native bf16 (:func:`cpu_has_bf16`), else float32 (None)."""
    if precision == "bf16" or (precision == "auto" and (device.type == "cuda" or cpu_has_bf16())):
        return torch.bfloat16
    return None


def train_step(model: nn.Module, method: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor,
               y: torch.Tensor, generator: torch.Generator, run_cfg: dict, dtype: torch.dtype | None) -> torch.Tensor:
    """One optimizer step on the uint8 batch ``x``: augment on its device, forward (autocast to ``dtype``
    when given), backward, update.

    Returns the loss as a detached tensor on the batch's device: reading it would make the host wait for
    the GPU at every step, so the loop reads the running sum every :data:`CHECK_EVERY` steps and stops on a
    non-finite one (a NaN loss poisons the weights through its update; they are never checkpointed).
    ``model`` is ``method`` or its DDP / compiled wrapper.
    """
    views = _views(run_cfg, x, generator)
    if run_cfg["channels_last"]:
        views = tuple(v.contiguous(memory_format=torch.channels_last) for v in views)
    with torch.autocast(x.device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
        loss = model(views, y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.detach()


# optimizer steps between two reads of the loss (each read waits for the GPU to finish the queued work)
CHECK_EVERY = 25


def _all_ranks(flag: bool, device: torch.device) -> bool:
    """Whether ``flag`` holds on every torchrun rank (a collective: every rank must call it)."""
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MIN)
    return bool(t.item())


def _rng_state(sampler: torch.Generator, augment: torch.Generator) -> dict:
    """The random state to resume from; a collective under torchrun, where each rank augments with its own
    stream and all of them are kept (``augment``: one state per rank, in rank order)."""
    states = [augment.get_state()]
    world = rank_and_world()[1]
    if world > 1:
        states = [None] * world
        torch.distributed.all_gather_object(states, augment.get_state())
    state = {"sampler": sampler.get_state(), "augment": states, "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict, sampler: torch.Generator, augment: torch.Generator, seed: int, epoch: int) -> None:
    """Restore :func:`_rng_state`. A checkpoint written by a different number of processes has no stream
    for this rank: it is derived from the seed, the rank and the epoch (the run goes on, no longer
    bit-identical to an uninterrupted one), and the run's log says so."""
    rank, world = rank_and_world()
    sampler.set_state(state["sampler"])
    states = state["augment"]
    states = [states] if isinstance(states, torch.Tensor) else states  # checkpoints of one process before
    if len(states) == world:
        augment.set_state(states[rank])
    else:
        augment.manual_seed(seed * 1000 + rank + 1 + 1_000_003 * epoch)
        if rank == 0:
            print(f"the checkpoint was written by {len(states)} processes, not {world}: the augmentation streams "
                  f"are derived from the seed from epoch {epoch} on", flush=True)
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def _diverged(files: runs.RunFolder, kind: str, what: str, where: str):
    """Stop a run whose loss or weights stopped being finite: record it (rank 0) and raise."""
    kept = f"the last good checkpoint ({files.last_checkpoint}) is kept" if files.last_checkpoint.is_file() else \
        "no checkpoint had been written yet"
    if rank_and_world()[0] == 0:
        _record_divergence(files, f"diverged: {what} at {where}")
    # resuming replays the same random streams and diverges again at the same step: the fix is a new run
    raise TrainingDiverged(
        f"{what} at {where} of {files.path.name}; training stopped and {kept}. Lower train.{kind}_lr or lengthen "
        f"the warm-up: that is a new configuration, trained from the start in its own folder (running this "
        f"one again unchanged resumes it and diverges at the same step)")


def _record_divergence(files: runs.RunFolder, why: str) -> None:
    """Mark a diverged run as stopped early at its last checkpoint, so that the analysis can still read
    what it learnt before (and says that it diverged); a later run() resumes it from that checkpoint."""
    last = files.last_checkpoint
    done = checkpoint.load(last, keys=("epoch",))["epoch"] if last.is_file() else 0
    record = files.read_record() or {}
    log = _keep_log_until(files, done)
    record.update(finished=False, epochs_done=done, stopped_early=f"{why}; it ends at its last checkpoint, epoch {done}",
                  **_log_summary(log))
    files.write_record(record)


def _keep_log_until(files: runs.RunFolder, epoch: int) -> list[dict]:
    """Drop the log's epochs after ``epoch`` (trained after the checkpoint that is resumed from: they are
    trained again) and return what is kept."""
    log = [e for e in files.read_log() if e["epoch"] <= epoch]
    files.write_log(log)
    return log


def _log_summary(log: list[dict]) -> dict:
    """Wall time, throughput and last loss of the epochs a run's log holds (across sessions)."""
    seconds = sum(e["seconds"] for e in log)
    images = sum(e["seconds"] * e["images_per_s"] for e in log)
    return {"train_seconds": round(seconds, 1), "images_per_s": round(images / max(seconds, 1e-9), 1),
            "final_loss": log[-1]["loss"] if log else None}


def _warm_start(method: nn.Module, run_cfg: dict, main: bool) -> dict:
    """Start from committed weights (``train.warm_start``): the encoder and the method's head from the
    bundle, the momentum encoder a copy of the encoder; the queue starts empty and the optimizer fresh, with
    the run's own warm-up. Epoch 0's snapshot stays the seeded random initialisation (the reference).
    Returns what the run continues: ``{"run", "epochs_before", "jobs_before"}``."""
    start = run_cfg["warm_start"]
    weights, name = paths.ROOT / start["weights"], bundle.name_of(run_cfg)
    meta, tensors = bundle.read(weights, name)
    fix = (f"The weights were trained with other settings ({weights}/{name}.json lists them): point "
           f"train.warm_start at weights of this run's encoder and method, or remove it")
    shards = Path(f"{weights}/{name}.*")
    checkpoint.restore(method.encoder, bundle.encoder_state(tensors), shards, "encoder", fix)
    head = {"moco_queue": "predictor", "simclr": "projector", "supervised": "classifier"}[run_cfg["method"]]
    checkpoint.restore(getattr(method, head), bundle.head_state(tensors, run_cfg["method"]), shards, head, fix)
    if hasattr(method, "momentum_encoder"):
        method.momentum_encoder.load_state_dict(method.encoder.state_dict())
    origin = {"run": meta["run"], "epochs_before": meta["record"].get("epochs_before", 0) + meta["epoch"],
              "jobs_before": meta["record"].get("jobs", 1)}
    if main:
        print(f"warm start from {start['weights']} ({origin['run']}, {origin['epochs_before']} epochs "
              f"in {origin['jobs_before']} job(s) before this one)", flush=True)
    return origin


@dataclass
class _Session:
    """What one training process holds while it trains a run: the data on the device, the method and its
    optimizer (``model``: the method as stepped, wrapped for DDP or compiled), the generators, the sizes."""

    run_cfg: dict
    folder: Path
    device: torch.device
    rank: int
    world: int
    images: torch.Tensor
    labels: torch.Tensor
    method: nn.Module
    model: nn.Module
    optimizer: torch.optim.Optimizer
    dtype: torch.dtype | None
    sampler: torch.Generator
    augment: torch.Generator
    start_epoch: int

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def files(self) -> runs.RunFolder:
        return runs.RunFolder(self.folder)

    @property
    def global_batch(self) -> int:
        return self.run_cfg["batch_size"]

    @property
    def steps_per_epoch(self) -> int:
        return len(self.images) // self.global_batch  # the last incomplete batch is dropped


def _start(run_cfg: dict, data: DatasetChoice, folder: Path, device: torch.device) -> _Session:
    """A fresh run (its folder, config and epoch-0 snapshot; a warm start if the profile asks) or the
    resumption of one from ``last.pt``; then its record, and the model as it is stepped."""
    rank, world = rank_and_world()
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed shapes: the fastest convolution is picked once
    torch.manual_seed(run_cfg["seed"])  # same initial weights on every rank
    h, _, channels = data.train.images.shape[1:]
    method, optimizer = build_training(run_cfg, channels, h, device)
    s = _Session(run_cfg, folder, device, rank, world, images=torch.from_numpy(data.train.images).to(device),
                 labels=torch.from_numpy(data.train.labels).to(device), method=method, model=method,
                 optimizer=optimizer, dtype=autocast_dtype(run_cfg["precision"], device),
                 # identical on every rank: one global order; the augmentation draws differ by rank
                 sampler=torch.Generator().manual_seed(run_cfg["seed"]),
                 augment=torch.Generator(device=device).manual_seed(run_cfg["seed"] * 1000 + rank + 1), start_epoch=0)
    run_id = runs.run_hash(run_cfg)
    if s.files.last_checkpoint.is_file():
        # on the CPU: the random states must stay CPU byte tensors; load_state_dict moves the rest
        state = checkpoint.load(s.files.last_checkpoint, map_location="cpu",
                                keys=("run_hash", "epoch", "method", "optimizer", "rng"))
        if state["run_hash"] != run_id:
            raise checkpoint.UnreadableCheckpoint(f"{s.files.last_checkpoint} belongs to run {state['run_hash']}, "
                                                  f"not {run_id}; delete it to start that run afresh")
        checkpoint.restore(method, state["method"], s.files.last_checkpoint, "model")
        checkpoint.restore(optimizer, state["optimizer"], s.files.last_checkpoint, "optimizer")
        s.start_epoch = state["epoch"]
        _set_rng_state(state["rng"], s.sampler, s.augment, run_cfg["seed"], s.start_epoch)
        if s.main:
            print(f"resuming {folder.name} after epoch {s.start_epoch} of {run_cfg['epochs']}", flush=True)
    elif s.main:
        folder.mkdir(parents=True, exist_ok=True)
        s.files.write_config(run_cfg)
        checkpoint.save({"encoder": method.encoder.state_dict(), "epoch": 0}, s.files.snapshot(0))
    origin = _warm_start(method, run_cfg, s.main) if s.start_epoch == 0 and run_cfg.get("warm_start") else None
    if s.main:
        _write_start_record(s, data, run_id, origin)
    if world > 1:
        s.model = nn.parallel.DistributedDataParallel(method, device_ids=[device.index] if device.type == "cuda"
                                                      else None, **buffer_sync_off())
    if run_cfg["compile"]:
        s.model = torch.compile(s.model)
    return s


def _write_start_record(s: _Session, data: DatasetChoice, run_id: str, origin: dict | None) -> None:
    """The run's record as training starts (or resumes): provenance, and what a warm start continues."""
    _keep_log_until(s.files, s.start_epoch)
    record = {
        "run": run_id, "finished": False, "config": s.run_cfg, "commit": provenance.git_commit(),
        "code": runs.training_code(),
        "libraries": provenance.library_versions(), "hardware": provenance.hardware(), "device": str(s.device),
        "processes": s.world, "data": data.summary(), "parameters": count_parameters(s.method.encoder),
        "autocast": str(s.dtype).removeprefix("torch.") if s.dtype else "none (float32)",
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        # a warm start continues earlier jobs: their epochs and count, for the book's totals (kept
        # from the first session's record when the run resumes)
        "jobs": 1 + (origin["jobs_before"] if origin else 0),
        "epochs_before": origin["epochs_before"] if origin else 0, "warm_start_from": origin and origin["run"],
    }
    if s.start_epoch > 0:
        earlier = s.files.read_record() or {}
        record.update({k: earlier[k] for k in ("jobs", "epochs_before", "warm_start_from") if k in earlier})
    s.files.write_record(record)


def _one_epoch(s: _Session, epoch: int, bar) -> dict:
    """The steps of ``epoch``; the loss is read every CHECK_EVERY steps (the one wait for the GPU), where
    every rank stops together if any one's is not finite. Returns its log entry."""
    run_cfg, steps, batch = s.run_cfg, s.steps_per_epoch, s.global_batch
    kind, local = kind_of(run_cfg["method"]), batch // s.world
    base_lr = paper.scaled_lr(run_cfg["lr_per_256"], batch)
    s.method.train()
    order = torch.randperm(len(s.images), generator=s.sampler).to(s.device)
    t0, loss_sum, checked, read = time.time(), 0.0, 0, torch.zeros((), device=s.device)
    for step_in_epoch in range(steps):
        lr = lr_at(epoch * steps + step_in_epoch, schedule=run_cfg["schedule"], base_lr=base_lr, steps_per_epoch=steps,
                   epochs=run_cfg["epochs"], warmup_epochs=run_cfg["warmup_epochs"], kind=kind,
                   restart_epochs=run_cfg.get("restart_epochs"))
        for group in s.optimizer.param_groups:
            group["lr"] = lr
        idx = order[step_in_epoch * batch:(step_in_epoch + 1) * batch][s.rank * local:(s.rank + 1) * local]
        loss = train_step(s.model, s.method, s.optimizer, s.images[idx], s.labels[idx], s.augment, run_cfg, s.dtype)
        read = read + loss.float()
        if (step_in_epoch + 1) % CHECK_EVERY and step_in_epoch + 1 < steps:
            continue
        value = float(read)  # the one wait for the GPU in CHECK_EVERY steps
        finite = math.isfinite(value)
        if s.world > 1:  # the ranks stop together when any one's loss is not finite
            finite = _all_ranks(finite, s.device)
        if not finite:
            what = f"the loss became {value}" if not math.isfinite(value) else \
                "the loss became non-finite on another process"
            _diverged(s.files, kind, what,
                      f"epoch {epoch + 1}, steps {checked + 1}-{step_in_epoch + 1}")
        loss_sum += value
        bar.update(step_in_epoch + 1 - checked)
        bar.set_postfix(epoch=epoch + 1, loss=f"{value / (step_in_epoch + 1 - checked):.4f}", lr=f"{lr:.2e}",
                        img_s=f"{(step_in_epoch + 1) * batch / (time.time() - t0):.0f}", refresh=False)
        checked, read = step_in_epoch + 1, torch.zeros((), device=s.device)
    if s.world > 1:
        total = torch.tensor([loss_sum], device=s.device)
        torch.distributed.all_reduce(total)
        loss_sum = float(total) / s.world
    seconds = time.time() - t0
    return {"epoch": epoch + 1, "loss": loss_sum / steps, "lr": lr, "seconds": round(seconds, 3),
            "images_per_s": round(steps * batch / seconds, 1)}


def _save(s: _Session, epoch: int) -> None:
    """The snapshot after ``epoch`` epochs and ``last.pt`` (to resume from), never over a good checkpoint
    with NaN weights (a last step can leave them behind a finite loss)."""
    if not all(bool(torch.isfinite(p).all()) for p in s.method.parameters()):
        _diverged(s.files, kind_of(s.run_cfg["method"]), "the weights became NaN or infinite",
                  f"the end of epoch {epoch}")
    rng = _rng_state(s.sampler, s.augment)  # a collective under torchrun
    if s.main:
        checkpoint.save({"encoder": s.method.encoder.state_dict(), "epoch": epoch}, s.files.snapshot(epoch))
        checkpoint.save({"run_hash": runs.run_hash(s.run_cfg), "epoch": epoch, "method": s.method.state_dict(),
                         "optimizer": s.optimizer.state_dict(), "rng": rng}, s.files.last_checkpoint)
    if s.world > 1:
        torch.distributed.barrier()


def _finish(s: _Session, train_seconds: float) -> dict:
    """The record of a run that ended: finished, or stopped by the deadline after its last logged epoch."""
    if not s.main:
        return {}
    epochs = s.run_cfg["epochs"]
    record = s.files.read_record()
    log = s.files.read_log()
    done = log[-1]["epoch"] if log else 0
    record.update(
        finished=done == epochs, epochs_done=done,
        stopped_early=None if done == epochs else f"deadline: stopped after epoch {done} of {epochs}",
        finished_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        train_seconds_this_session=round(train_seconds, 1), **_log_summary(log),
    )
    s.files.write_record(record)
    if done < epochs:
        print(f"{s.folder.name}: {record['stopped_early']}; its checkpoints are kept, and training it again "
              f"resumes from epoch {done}", flush=True)
    return record


def _no_epoch_fits(s: _Session, stop_after: float | None) -> bool:
    """Whether a resumed run's next epoch would end past the deadline (timed by its last logged epoch), so
    that it starts none: training stops at the end of the last epoch that finishes in time. A run without
    an epoch trains its first whatever the deadline, since before it there is nothing to read."""
    if stop_after is None or s.start_epoch == 0:
        return False
    log = s.files.read_log() if s.main else []
    late = bool(log) and time.time() + log[-1]["seconds"] > stop_after
    if s.world > 1:  # the main rank's log decides for all
        late = not _all_ranks(not late, s.device)
    return late


def _train(run_cfg: dict, data: DatasetChoice, folder: Path, device: torch.device, progress: bool,
           stop_after: float | None) -> RunResult:
    """Start or resume, then epoch by epoch: train, log, save when a snapshot is due or the deadline
    is near (the ranks stop together when any one would overrun), and finish."""
    s = _start(run_cfg, data, folder, device)
    epochs = run_cfg["epochs"]
    bar = tqdm(total=(epochs - s.start_epoch) * s.steps_per_epoch, desc=f"{run_cfg['encoder']}/{run_cfg['method']}",
               disable=not (progress and s.main), mininterval=2.0, unit="step")
    t_start = time.time()
    for epoch in range(epochs if _no_epoch_fits(s, stop_after) else s.start_epoch, epochs):
        entry = _one_epoch(s, epoch, bar)
        if s.main:
            s.files.append_log(entry)
        cut = stop_after is not None and epoch + 1 < epochs and time.time() + entry["seconds"] > stop_after
        if s.world > 1:
            cut = not _all_ranks(not cut, device)
        if cut or (epoch + 1) % run_cfg["checkpoint_every"] == 0 or epoch + 1 == epochs:
            _save(s, epoch + 1)
        if cut:
            break
    bar.close()
    record = _finish(s, time.time() - t_start)
    if s.world > 1:
        torch.distributed.barrier()
    return RunResult(folder, run_cfg, record, s.files.read_log() if s.main else [], reused=False)
