"""A run: one (profile, encoder, method, schedule), identified by a hash of everything that shapes its result,
and what the analysis reads of it (:class:`RunResult`, :func:`load_finished`). The training itself is
clorg.train.loop: no module of the analysis imports it (``clorg.train``'s package namespace loads it at
run time, but the code versions follow the source's imports), so a change to the training code marks the
runs, not the results computed from them, as older (see below).

The run's folder, ``<runs root>/<profile>/<encoder>-<method>[-<schedule>]-<hash>/``, holds

- ``config.json``: the resolved configuration that was hashed (the method's kind is derived from the method,
  not stored: :func:`run_hash`);
- ``record.json``: provenance (commit, code version of the training code, libraries, hardware, data
  checksum) and, once finished, the wall time and throughput; ``finished: true`` marks a run that is
  reused, not retrained;
- ``log.jsonl``: one JSON line per epoch (loss, learning rate, seconds, images/s);
- ``checkpoints/last.pt``: everything needed to resume; ``checkpoints/encoder_eNNNN.pt``: encoder
  weights along the run (epoch 0 is the random initialisation), for the training-dynamics chapter;
- beside the folder, ``.<folder name>.lock``: held while a process trains the run (:mod:`clorg.core.locks`).

The hash covers the configuration, not the code. A finished run records the version of the training
code that produced it (:func:`clorg.core.code.code_version` of :data:`TRAINING_CODE`); a run trained
by code that has changed since is still reused (retraining the ``quick`` runs costs about half an
hour), but :func:`stale_files` names the changed files and the book shows them on every page that
reads the run. ``make book FRESH=1`` retrains.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from ..core import code, paths, variants
from ..core.atomic import append_atomic, write_bytes, write_json
from ..core.config import ENCODERS, METHODS, RunSpec, kind_of
from ..data import DatasetChoice, choose_profile_dataset
from . import readers
from .readers import UnreadableRunFile


class RunFolder:
    """A run's folder: the one place that knows the names of its files (listed in the module docstring).
    Every other module asks it for a file's path or contents: it reads and writes the configuration, record
    and log itself; checkpoints go through :mod:`clorg.train.checkpoint` at the paths it gives. All these
    writes are atomic (:mod:`clorg.core.atomic`), so a full disk is reported with the path and nothing
    written before is lost."""

    def __init__(self, path: Path):
        self.path = Path(path)

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def lock(self) -> Path:
        """Held while a process trains the run (:mod:`clorg.core.locks`); beside the folder, so that it
        exists before the folder does."""
        return self.path.parent / f".{self.path.name}.lock"

    @property
    def last_checkpoint(self) -> Path:
        """Everything needed to resume the run."""
        return self.checkpoints / "last.pt"

    def snapshot(self, epoch: int) -> Path:
        """Where the encoder after ``epoch`` epochs is kept (0: the random initialisation)."""
        return readers.snapshot_path(self.checkpoints, epoch)

    def snapshot_epochs(self) -> list[int]:
        """The epochs whose encoder the folder kept, sorted ([] when none)."""
        return readers.snapshot_epochs(self.checkpoints)

    def trainer_files(self, epochs: int) -> dict[Path, set[str]]:
        """The names of the files the trainer writes, by folder (the analysis writes features beside them)."""
        return {self.path: {"config.json", "record.json", readers.LOG_NAME},
                self.checkpoints: {self.last_checkpoint.name, *(self.snapshot(e).name for e in range(epochs + 1))}}

    def write_config(self, run_cfg: dict) -> None:
        write_json(self.path / "config.json", current_config(run_cfg))

    def read_record(self) -> dict | None:
        """The run's record (provenance, and once it ended: how); None before the run started."""
        return _read_json(self.path / "record.json")

    def write_record(self, record: dict) -> None:
        write_json(self.path / "record.json", record)

    def read_log(self) -> list[dict]:
        """The per-epoch log; a line cut short by a crash (the last one) is dropped with a message."""
        return readers.read_log(self.path)

    def append_log(self, entry: dict) -> None:
        """One epoch's line added to the log."""
        append_atomic(self.path / readers.LOG_NAME, (json.dumps(entry) + "\n").encode())

    def write_log(self, entries: list[dict]) -> None:
        """The whole log replaced by ``entries``."""
        write_bytes(self.path / readers.LOG_NAME, "".join(json.dumps(e) + "\n" for e in entries).encode())

    def is_finished(self) -> bool:
        """Trained for all its configured epochs."""
        record = self.read_record()
        return bool(record and record.get("finished"))

    def is_usable(self) -> bool:
        """Finished, or stopped early (a deadline, a divergence) after at least one checkpointed epoch: the
        analysis can read it. A run that stopped before its first epoch has nothing to read."""
        record = self.read_record()
        return bool(record and (record.get("finished") or (record.get("stopped_early") and record.get("epochs_done"))))


# knobs of the train section that do not change what a run computes, so are left out of its hash
_NOT_HASHED = ("checkpoint_every",)
# the module whose transitive imports are "the training code" of a run
TRAINING_CODE = ("clorg.train.loop",)


class RunNotFound(FileNotFoundError):
    """A run the analysis reads that is not trained (or not to its end) on this machine: the message says how to
    produce it, in a notebook and on a command line."""


class SnapshotNotFound(FileNotFoundError):
    """An encoder snapshot the analysis reads that the run's folder does not hold: the message names the epochs
    it holds and the command that saves them, in a notebook and on a command line."""


def runs_root() -> Path:
    return paths.runs_root()


def resolve(cfg: dict, spec: RunSpec, dataset: dict) -> dict:
    """The flat configuration of one run: what is hashed and what the trainer reads.

    ``dataset`` is :meth:`clorg.data.DatasetChoice.summary`: the data is identified by its checksum
    and subset, not by the profile's name, so two profiles with the same setup share runs.
    """
    if spec.encoder not in ENCODERS:
        raise ValueError(f"unknown encoder {spec.encoder!r}; valid encoders: {list(ENCODERS)}")
    if spec.method not in METHODS:
        raise ValueError(f"unknown method {spec.method!r}; valid methods: {list(METHODS)}")
    t, kind = cfg["train"], kind_of(spec.method)
    run = {
        "encoder": spec.encoder, "method": spec.method, "width_scale": t["width_scale"],
        "epochs": t[f"{kind}_epochs"], "batch_size": t[f"{kind}_batch_size"],
        "lr_per_256": t[f"{kind}_lr"], "warmup_epochs": t[f"{kind}_warmup_epochs"],
        "weight_decay": t["weight_decay"], "schedule": spec.schedule, "seed": t["seed"], "compile": t["compile"],
        "precision": t["precision"], "channels_last": t["channels_last"],
        "checkpoint_every": t["checkpoint_every"],
        "dataset": {k: dataset[k] for k in ("name", "sha256", "train_images", "image_shape")},
        "subset": {"train_per_class": cfg["data"]["train_per_class"], "subset_seed": cfg["data"]["subset_seed"]},
        "num_classes": len(dataset["classes"]),
    }
    if continues_warm_start(cfg, spec):
        run["warm_start"] = warm_start_of(t["warm_start"], bundle_name(spec))
    if spec.schedule == "paper-literal":
        run["restart_epochs"] = t[f"{kind}_restart_epochs"]
    if spec.method == "moco_queue":
        run.update(moco_momentum=t["moco_momentum"], moco_temperature=t["moco_temperature"],
                   moco_queue_size=t["moco_queue_size"])
    elif spec.method == "simclr":
        run.update(simclr_temperature=t["simclr_temperature"])
    else:
        run.update(label_smoothing=t["label_smoothing"], crop_scale=list(t["supervised_crop_scale"]))
    if run["batch_size"] > dataset["train_images"]:
        raise ValueError(f"batch size {run['batch_size']} is larger than the {dataset['train_images']} training "
                         f"images of {dataset['name']}; lower train.{kind}_batch_size or raise data.train_per_class")
    return run


def continues_warm_start(cfg: dict, spec: RunSpec) -> bool:
    """Whether the run of ``spec`` starts from ``train.warm_start``: one is set and ``train.warm_start_methods``
    (null: every method) names the run's method. A method it leaves out resolves to the run it is without a
    warm start, so that run, trained before and installed from the committed weights, is kept."""
    t = cfg["train"]
    return bool(t["warm_start"]) and (t["warm_start_methods"] is None or spec.method in t["warm_start_methods"])


def bundle_name(spec: RunSpec) -> str:
    """The name of a run's bundle of weights (:mod:`clorg.train.bundle`), "resnet18-moco_queue-cosine": a
    profile's runs differ by encoder (the paper profile trains two with moco_queue), method or schedule
    (its variants), so a name by method alone would let one run's export delete another's shards."""
    return f"{spec.encoder}-{spec.method}-{spec.schedule}"


def warm_start_of(weights: str, name: str) -> dict:
    """What a run warm-started from ``weights`` (``train.warm_start``) starts from, as hashed with the run:
    the folder of committed weights (relative to the project root) and the checksum of its shard files
    (:func:`weights_sha256`). ``weights`` is the folder as it is now (``weights/gpu10``), or pinned to the
    state it had when a job started from it (``weights/gpu10@<checksum>``, :func:`pin_warm_start`): a job
    brings back weights that replace those it started from, and the profile then names its runs by the pin,
    which still resolves once the folder holds the new weights. ``name`` (:func:`bundle_name`) must have
    shards there unless the weights are pinned."""
    folder, _, pinned = weights.partition("@")
    folder = folder.removeprefix("./").rstrip("/")  # one spelling, one run name
    if pinned:
        return {"weights": folder, "sha256": pinned}
    if not shard_files(paths.ROOT / folder, name):
        raise ValueError(f"train.warm_start: no shards {name}.<i>.pt(.gz) in {paths.ROOT / folder}; name a folder "
                         f"of weights brought back from a GPU job (weights/<profile>/), or null")
    return {"weights": folder, "sha256": weights_sha256(paths.ROOT / folder)}


def weights_sha256(folder: Path) -> str:
    """A checksum of the shard files of every bundle in a weights folder (their names and bytes), 16 hex
    digits: one value says which state of the folder, all its runs' weights, a warm start read."""
    sha = hashlib.sha256()
    for shard in shard_files(folder):
        sha.update(f"{shard.name} {hashlib.sha256(shard.read_bytes()).hexdigest()}\n".encode())
    return sha.hexdigest()[:16]


def pin_warm_start(weights: str) -> str:
    """``train.warm_start`` pinned to the folder's present weights, ``weights/gpu10@<checksum>``: the value a
    profile keeps for the runs a job trains from them (already pinned: returned as it is)."""
    if "@" in weights:
        return weights
    start = warm_start_of(weights, "*")  # refuses a folder without shards
    return f"{start['weights']}@{start['sha256']}"


def check_warm_start(start: dict) -> None:
    """Refuse to train from ``start`` (a run configuration's ``warm_start``) when its folder no longer holds
    the weights it names: a pinned start whose weights a later job's have replaced (an unpinned one always
    names the present weights). The message says how to get them back, or how to continue from the present
    ones instead."""
    now = weights_sha256(paths.ROOT / start["weights"])
    if now != start["sha256"]:
        w = start["weights"]
        raise ValueError(f"train.warm_start: {w}/ no longer holds the weights these runs start from (checksum "
                         f"{start['sha256']}; the folder's now: {now}): a later job's replaced them. To train "
                         f"them again, restore them: `git log --oneline -- {w}` lists the imports; then `git "
                         f"restore --source=<the commit before the later import> -- {w}`. To continue from the "
                         f"present weights instead, set train.warm_start: {w} (unpinned)")


def shard_files(folder: Path, name: str = "*") -> list[Path]:
    """The shard files ``<name>.<i>.pt`` (as a job writes them) or ``.pt.gz`` (as committed) of the bundle
    ``name`` in ``folder``, of every bundle by default; sorted by file name."""
    return sorted(p for p in folder.glob(f"{name}.*.pt*") if p.name.endswith((".pt", ".pt.gz")))


# what older run configurations stored and this code derives: the method's kind (core.config.kind_of)
_DERIVED = ("kind",)


def current_config(run: dict) -> dict:
    """A run configuration as this code writes it: without what older configurations stored that is now
    derived (bundles brought back from a GPU job before carry it)."""
    return {k: v for k, v in run.items() if k not in _DERIVED}


def run_hash(run: dict) -> str:
    """The run's identity: a hash of its configuration without :data:`_NOT_HASHED`. The method's kind is
    hashed though the configuration no longer stores it (:func:`kind_of` derives it from the method): runs
    were named with it, and their folders (those the committed GPU weights install into among them) keep
    their names."""
    hashed = {k: v for k, v in run.items() if k not in _NOT_HASHED} | {"kind": kind_of(run["method"])}
    return hashlib.sha256(json.dumps(hashed, sort_keys=True).encode()).hexdigest()[:12]


def run_dir(profile: str, run: dict, root: Path | None = None) -> Path:
    schedule = "" if run["schedule"] == "cosine" else f"-{run['schedule']}"
    return Path(root or runs_root()) / profile / f"{run['encoder']}-{run['method']}{schedule}-{run_hash(run)}"


def training_code() -> dict:
    """The version of the code that trains a run, as a finished run records it."""
    return code.code_version(TRAINING_CODE)


def stale_files(record: dict | None) -> list[str]:
    """The training-code files changed since the run was trained ([] when it is current)."""
    return code.changed_files((record or {}).get("code"), training_code())


def _read_json(path: Path) -> dict | None:
    """A run's JSON file; None when it does not exist. A file that exists but cannot be read is an
    error naming it and the fix: the run is then retrained from its last checkpoint."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise UnreadableRunFile(f"{path} cannot be read ({exc}); delete it and run the training again: the run "
                                f"resumes from its last checkpoint") from exc


# ============================================ a run's result ==========================================


@dataclass
class RunResult:
    folder: Path
    config: dict
    record: dict
    log: list[dict]
    reused: bool
    # the command that trains it, with its profile's file or name and overrides (:func:`train_command`); None
    # where only the folder is known, and the command is then the profile's with a caveat
    command: str | None = None

    @property
    def spec(self) -> RunSpec:
        return RunSpec(self.config["encoder"], self.config["method"], self.config["schedule"])

    @property
    def final_epoch(self) -> int:
        """The last trained epoch: the configured count, or where a deadline stopped the run."""
        return readers.final_epoch(self.config, self.record)

    @property
    def stopped_early(self) -> str | None:
        """Why the run ended before its configured epochs (a deadline), or None."""
        return self.record.get("stopped_early")

    @property
    def files(self) -> RunFolder:
        """The run's folder and its files."""
        return RunFolder(self.folder)

    @property
    def stale_files(self) -> list[str]:
        """Training-code files changed since this run was trained ([] when the code is the same)."""
        return stale_files(self.record)

    def retrain_command(self) -> str:
        """The command that trains this run again from the start, saving its snapshots, as code (run from the
        project root on the same data); where the profile's overrides are not known, a caveat says to add them."""
        if self.command:  # the data is found as it was ($CLORG_DATA), and decides the run as its settings do
            return f"`{self.command} --force` (on the same data)"
        c = self.config
        return (f"`python -m clorg.train --config {self.folder.parent.name} --encoder {c['encoder']} "
                f"--method {c['method']} --schedule {c['schedule']} --force` (with the same overrides and data)")

    def snapshots_missing(self, epochs) -> SnapshotNotFound:
        """The error for encoder snapshots ``epochs`` this folder lacks: the epochs it holds, and the command
        that saves them where retraining would (epoch 0, every train.checkpoint_every and the last), else which
        epochs a run saves."""
        epochs, every, last = sorted(epochs), self.config.get("checkpoint_every"), int(self.config["epochs"])
        which = f"epoch {epochs[0]}" if len(epochs) == 1 else f"epoch(s) {epochs}"
        message = f"no encoder snapshot for {which} in {self.folder}; saved epochs: {self.files.snapshot_epochs()}"
        if every and all(0 <= e <= last and (e % every == 0 or e == last) for e in epochs):
            return SnapshotNotFound(f"{message}. Retrain the run to save {'it' if len(epochs) == 1 else 'them'}: "
                                    f"{self.retrain_command()}")
        grid = f"every {every} epochs (train.checkpoint_every)" if every else "every train.checkpoint_every epochs"
        return SnapshotNotFound(f"{message}. A run saves its encoder at epoch 0, {grid} and at its last, {last}: "
                                f"ask for one of those")

    def load_encoder(self, epoch: int | None = None, device="cpu") -> nn.Module:
        """The trained encoder (``epoch=None``: the final one; ``0``: its random initialisation)."""
        epoch = self.final_epoch if epoch is None else epoch
        path = self.files.snapshot(epoch)
        if not path.is_file():
            raise self.snapshots_missing([epoch])
        # a run installed from committed weights: "<folder>/<name>.* (<their precision>)" (clorg.train.bundle)
        weights = self.record.get("weights")
        fix = (f"Delete the run folder {self.folder}: `python -m clorg.book --profile {self.folder.parent.name}` "
               f"installs it again from {weights.rsplit(' (', 1)[0]}" if weights
               else f"Delete it and train the run again: {self.retrain_command()}")
        return readers.load_encoder(path, self.config, fix, device)


def load_finished(cfg: dict, spec: RunSpec, *, data: DatasetChoice | None = None,
                  runs_root: Path | None = None) -> RunResult:
    """The finished run ``spec`` under profile ``cfg``, never training one.

    For the analysis chapters: a missing or unfinished run is an error that says how to produce it. A
    run stopped early by a deadline is returned as it is (``stopped_early`` says so, ``final_epoch``
    where it stopped): the analysis then uses what exists, and the book says so.
    """
    data = data or choose_profile_dataset(cfg)
    run_cfg, folder = locate(cfg, spec, data, runs_root)
    if not RunFolder(folder).is_usable():
        state = "is unfinished" if folder.exists() else "does not exist"
        raise RunNotFound(
            f"run {folder} {state}. Produce it with notebooks/02_train.ipynb, its parameters "
            f"{variants.notebook_parameters(cfg)}, or `{train_command(cfg, spec)}` (on the same data)")
    return finished(folder, run_cfg, train_command(cfg, spec))


def train_command(cfg: dict, spec: RunSpec) -> str:
    """The shell command that trains ``spec`` of this profile: its file or name and its overrides, as given
    (a variant's run has the variant's settings, and a profile file's name is not a shipped profile's)."""
    schedule = "" if spec.schedule == cfg["train"]["schedule"] else f" --schedule {spec.schedule}"
    profile = variants.profile_args(cfg).removeprefix("--profile ")  # "P --override K=V ..."
    return f"python -m clorg.train --config {profile} --encoder {spec.encoder} --method {spec.method}{schedule}"


def locate(cfg: dict, spec: RunSpec, data: DatasetChoice, runs_root: Path | None = None) -> tuple[dict, Path]:
    """(resolved run configuration, run folder) of ``spec`` under ``cfg`` on ``data``."""
    run_cfg = resolve(cfg, spec, data.summary())
    return run_cfg, run_dir(cfg["profile"]["name"], run_cfg, runs_root)


def finished(folder: Path, run_cfg: dict, command: str | None = None) -> RunResult:
    """The RunResult of a run folder that exists (reused, not trained now); ``command`` trains it."""
    files = RunFolder(folder)
    return RunResult(folder, run_cfg, files.read_record(), files.read_log(), reused=True, command=command)
