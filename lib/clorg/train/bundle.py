"""Trained weights that travel: a finished run packed into a few files small enough to come back from a
lent GPU machine and to be committed, and unpacked into a run folder that the analysis reads as if it had
been trained here.

A bundle is one run's final encoder (and, for a contrastive run, the predictor or projector that a warm
start needs; the supervised classifier too, it is small) in shards ``<name>.<i>.pt`` of at most
:data:`SHARD_BYTES`. Floating-point weights are stored in bfloat16, the BatchNorm running statistics in
float32 (they are few, and a variance rounded to 8 bits of mantissa would shift every feature). Each shard
carries the run's configuration, record and log, so any one of them says what it belongs to. ``<name>`` is
:func:`bundle_name`: the run's encoder, method and schedule, so that the runs of one profile never share one.

:func:`install` writes the run folder from the shards: ``config.json``, ``record.json`` (the training
record, marked with where the weights came from), ``log.jsonl``, the final encoder in float32 and the
random initialisation (epoch 0), which is regenerated from the seed on the CPU and checked against the
checksum the training machine recorded. The snapshots along the run are not kept: the dynamics chapter is
computed where they exist, on the training machine. :func:`round_final` makes the training machine analyse
the very weights that travel (bfloat16, read back as float32), so that a chapter computed there and one
computed from the committed weights read the same encoder.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
from pathlib import Path

import torch

from ..core import paths
from ..core.atomic import write_bytes
from ..core.config import RunSpec
from . import checkpoint
from .models import build_encoder
from .runs import RunFolder, bundle_name, shard_files

SHARD_BYTES = 15 * 2**20  # the device tool brings back files of at most 16 MiB
FORMAT = 1
# the parts of a method kept beside the encoder: what a warm start of that method loads
_HEADS = {"moco_queue": "predictor.", "simclr": "projector.", "supervised": "classifier."}
_FLOAT32_KEEP = ("running_mean", "running_var")


class BundleError(RuntimeError):
    """Shards that are missing, damaged or do not belong to the run asked for; the message says which."""


def name_of(config: dict) -> str:
    """:func:`bundle_name` of a run's configuration."""
    return bundle_name(RunSpec(config["encoder"], config["method"], config["schedule"]))


def weights_root() -> Path:
    """Committed weights: ``weights/<profile>/`` ($CLORG_WEIGHTS moves it)."""
    return paths.weights_root()


def _travel_dtype(key: str, value: torch.Tensor) -> torch.Tensor:
    if value.is_floating_point() and not key.endswith(_FLOAT32_KEEP):
        return value.to(torch.bfloat16)
    return value


def tensors_sha256(state: dict) -> str:
    """A checksum of a state dict's names, dtypes, shapes and bytes (independent of the file format)."""
    h = hashlib.sha256()
    for key in sorted(state):
        v = state[key].detach().cpu().contiguous()
        h.update(f"{key} {v.dtype} {tuple(v.shape)}\n".encode())
        h.update(v.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _final_parts(result) -> dict:
    """The tensors that travel: ``encoder.*`` from the final snapshot, the method's head from last.pt."""
    epoch = result.final_epoch
    encoder = checkpoint.load(result.files.snapshot(epoch), keys=("encoder",))["encoder"]
    out = {f"encoder.{k}": v for k, v in encoder.items()}
    last = result.files.last_checkpoint
    head = _HEADS[result.config["method"]]
    if last.is_file():
        state = checkpoint.load(last, keys=("epoch", "method"))
        if state["epoch"] == epoch:
            out.update({k: v for k, v in state["method"].items() if k.startswith(head)})
    return out


def export(result, out_dir: Path) -> list[Path]:
    """Write ``result``'s bundle into ``out_dir`` as ``<name>.<i>.pt`` (:func:`name_of` its configuration);
    returns the shard paths."""
    tensors = {k: _travel_dtype(k, v) for k, v in _final_parts(result).items()}
    init = checkpoint.load(result.files.snapshot(0), keys=("encoder",))["encoder"]
    groups, size = [[]], 0
    for key in sorted(tensors):
        nbytes = tensors[key].numel() * tensors[key].element_size()
        if groups[-1] and size + nbytes > SHARD_BYTES - 2**20:  # 1 MiB for the pickled metadata
            groups.append([])
            size = 0
        groups[-1].append(key)
        size += nbytes
    meta = {"format": FORMAT, "run": result.folder.name, "profile": result.folder.parent.name,
            "config": result.config, "record": result.record, "log": result.log, "epoch": result.final_epoch,
            "init_sha256": tensors_sha256(init), "parts": len(groups)}
    name = name_of(result.config)
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in shards_of(out_dir, name):
        old.unlink()
    written = []
    for i, keys in enumerate(groups):
        path = out_dir / f"{name}.{i}.pt"
        checkpoint.save({"meta": meta, "part": i, "tensors": {k: tensors[k] for k in keys}}, path)
        if path.stat().st_size > SHARD_BYTES:
            raise BundleError(f"{path} is {path.stat().st_size} bytes, over the {SHARD_BYTES} allowed")
        written.append(path)
    return written


def shards_of(folder: Path, name: str) -> list[Path]:
    """The shard files of the bundle ``name`` in ``folder``: ``<name>.<i>.pt`` as a job writes them, or
    ``<name>.<i>.pt.gz`` as they are committed (gzip: a fifth smaller, so that the committed weights, the
    data and the tree still travel to the next GPU job within its 64 MiB)."""
    return sorted(shard_files(folder, name), key=lambda p: int(p.name.split(".")[1]))


def _load_shard(path: Path) -> dict:
    if path.name.endswith(".gz"):
        try:
            data = gzip.decompress(path.read_bytes())
        except (OSError, EOFError) as exc:
            raise BundleError(f"{path} cannot be read ({exc}); fetch the weights again (git checkout {path})") from exc
        try:
            return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        except checkpoint.NOT_THE_FILE:
            raise
        except Exception as exc:  # damaged inside the gzip stream
            raise BundleError(f"{path} cannot be read ({exc}); fetch the weights again (git checkout {path})") from exc
    try:
        return checkpoint.load(path)
    except checkpoint.UnreadableCheckpoint as exc:
        raise BundleError(f"{path} cannot be read ({exc}); fetch the weights again (git checkout {path})") from exc


def compress(folder: Path, name: str) -> list[Path]:
    """Replace the ``.pt`` shards of the bundle ``name`` in ``folder`` by ``.pt.gz`` ones (as committed)."""
    out = []
    for path in shards_of(folder, name):
        if path.name.endswith(".pt"):
            target = path.with_name(path.name + ".gz")
            write_bytes(target, gzip.compress(path.read_bytes(), compresslevel=6, mtime=0))
            path.unlink()
            path = target
        out.append(path)
    return out


def read(folder: Path, name: str) -> tuple[dict, dict]:
    """(metadata, tensors) of the bundle ``name`` in ``folder``; every shard checked to be there and to
    belong to the same run."""
    shards = shards_of(folder, name)
    if not shards:
        raise BundleError(f"no shards {name}.<i>.pt in {folder}")
    meta, tensors, seen = None, {}, []
    for path in shards:
        part = _load_shard(path)
        if meta is None:
            meta = part["meta"]
        elif part["meta"]["run"] != meta["run"]:
            raise BundleError(f"{path} belongs to run {part['meta']['run']}, the other shards to {meta['run']}")
        seen.append(part["part"])
        tensors.update(part["tensors"])
    if sorted(seen) != list(range(meta["parts"])):
        raise BundleError(f"{folder}: the bundle {name} has parts {sorted(seen)} of {meta['parts']}; "
                          f"one is missing: fetch the weights again")
    return meta, tensors


def _split(tensors: dict, prefix: str) -> dict:
    return {k[len(prefix):]: v.float() if v.is_floating_point() else v
            for k, v in tensors.items() if k.startswith(prefix)}


def encoder_state(tensors: dict) -> dict:
    """The encoder's state dict in float32 from a bundle's tensors."""
    return _split(tensors, "encoder.")


def head_state(tensors: dict, method: str) -> dict:
    """The method's head (predictor, projector or classifier) in float32 from a bundle's tensors."""
    return _split(tensors, _HEADS[method])


def random_init(config: dict) -> dict:
    """The run's encoder at epoch 0, regenerated as the training loop builds it: seeded, on the CPU."""
    torch.manual_seed(config["seed"])
    shape = config["dataset"]["image_shape"]
    enc = build_encoder(config["encoder"], width_scale=config["width_scale"], in_channels=shape[2],
                        image_size=shape[0])
    return enc.state_dict()


def install(weights: Path, name: str, folder: Path) -> Path:
    """Write the run folder ``folder`` from the bundle ``name`` in ``weights``; returns it."""
    meta, tensors = read(weights, name)
    if meta["run"] != folder.name:
        raise BundleError(f"{weights}/{name}.*.pt holds run {meta['run']}, but this profile asks for {folder.name}: "
                          f"the profile's training settings differ from those the weights were trained with "
                          f"({weights}/{name}.json lists them)")
    init = random_init(meta["config"])
    if tensors_sha256(init) != meta["init_sha256"]:
        raise BundleError(f"the random initialisation of {meta['run']} regenerated here differs from the one "
                          f"it was trained from (another torch version builds other initial weights?); its "
                          f"random-init features cannot be reproduced on this machine")
    files = RunFolder(folder)
    files.checkpoints.mkdir(parents=True, exist_ok=True)
    checkpoint.save({"encoder": init, "epoch": 0}, files.snapshot(0))
    checkpoint.save({"encoder": encoder_state(tensors), "epoch": meta["epoch"]}, files.snapshot(meta["epoch"]))
    files.write_log(meta["log"])
    files.write_config(meta["config"])
    # the training machine's record, unchanged but for where the weights are now read from: the results
    # computed there recorded its finish time and code, and stay current against it
    files.write_record({**meta["record"], "weights": f"{paths.shown(weights)}/{name}.* "
                                                      f"(bfloat16, the BatchNorm statistics float32)"})
    return folder


def round_final(result) -> None:
    """Replace ``result``'s final snapshot by the weights that travel (bfloat16 read back as float32), so
    that what is analysed on the training machine is what the committed bundle gives elsewhere."""
    path = result.files.snapshot(result.final_epoch)
    state = checkpoint.load(path, keys=("encoder",))
    state["encoder"] = {k: _travel_dtype(k, v).to(v.dtype) for k, v in state["encoder"].items()}
    checkpoint.save(state, path)


def committed_run(folder: Path, name: str) -> str | None:
    """The run whose bundle ``name`` is in ``folder``, as its ``<name>.json`` (:func:`describe`) says, without
    reading the shards; None when there are no shards or no readable description."""
    try:
        return json.loads((folder / f"{name}.json").read_text())["run"] if shards_of(folder, name) else None
    except (OSError, ValueError, KeyError):
        return None


def describe(folder: Path, name: str) -> dict:
    """What a committed bundle is, for its ``<name>.json`` beside the shards: run, epochs, record, log and
    the sha256 of every shard file."""
    meta, _ = read(folder, name)
    shards = shards_of(folder, name)
    return {"run": meta["run"], "epoch": meta["epoch"], "config": meta["config"], "record": meta["record"],
            "log": meta["log"], "shards": {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in shards}}
