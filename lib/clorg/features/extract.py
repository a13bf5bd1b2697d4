"""Features for analysis: the encoder's 512-d output (before any projector or predictor), computed with
the deterministic view (no augmentation) in fp32 and L2-normalised, as the paper analyses them.

:func:`run_features` extracts them for a training run at any saved epoch (epoch 0 is the run's own
random initialisation, the reference the paper compares against) and keeps them next to the run, in
``features_eNNNN.npz``, with the provenance that says which data and weights produced them.
:func:`profile_features` gives every feature set a profile's chapters analyse.

A feature set is identified by what it is (encoder, method, schedule, epoch), never by a display
label: labels are made where something is shown (:func:`label`).
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass

import numpy as np
import torch

from ..core import paper
from ..core.atomic import write_atomic
from ..core.config import RunSpec, kind_of, main_runs
from ..core.devices import default_device
from ..train.encode import encode
from ..train.runs import RunResult, load_finished


@dataclass(frozen=True, eq=False)
class Features:
    """Train and test features of one encoder at one epoch, with labels and where they came from.

    Checked on construction: one label per row and finite values, since every later number would be
    meaningless otherwise."""

    encoder: str
    method: str
    schedule: str
    epoch: int
    train: np.ndarray
    train_labels: np.ndarray
    test: np.ndarray
    test_labels: np.ndarray
    provenance: dict

    def __post_init__(self):
        for split in ("train", "test"):
            X, y = getattr(self, split), getattr(self, f"{split}_labels")
            if len(X) != len(y):
                raise ValueError(f"{label(self)}: {len(X)} {split} features but {len(y)} labels; re-extract them "
                                 f"(delete features_e*.npz in the run folder and run notebooks/03_embeddings.ipynb)")
            if not np.isfinite(X).all():
                raise ValueError(f"{label(self)}: the {split} features contain NaN or inf: the encoder diverged; "
                                 f"retrain it (notebooks/02_train.ipynb, or `python -m clorg.train ... --force`)")

    @property
    def random_init(self) -> bool:
        return self.epoch == 0

    @property
    def identity(self) -> dict:
        """encoder, method, schedule and epoch: the fields of a result record (clorg.analysis.records)."""
        return {"encoder": self.encoder, "method": self.method, "schedule": self.schedule, "epoch": self.epoch}


def label(f) -> str:
    """A feature set's name for display: "resnet18 moco_queue", "resnet18 random init"; a schedule other
    than cosine is added ("... (paper-compressed)"). ``f``: Features or a record-like mapping."""
    get = f.get if isinstance(f, dict) else (lambda k: getattr(f, k))
    if get("epoch") == 0:
        return f"{get('encoder')} random init"
    schedule = get("schedule")
    return f"{get('encoder')} {get('method')}" + ("" if schedule in (None, "cosine") else f" ({schedule})")


def _provenance(result: RunResult, data, epoch: int) -> dict:
    return {"run": result.folder.name, "encoder": result.config["encoder"], "method": result.config["method"],
            "schedule": result.config["schedule"], "epoch": epoch, "data_sha256": data.train.checksum,
            "train_images": len(data.train), "test_images": len(data.test), "normalised": True,
            "view": "deterministic (no augmentation)", "trained_at": result.record.get("finished_at")}


def _from(p: dict, train, train_labels, test, test_labels) -> Features:
    return Features(p["encoder"], p["method"], p["schedule"], p["epoch"], train, train_labels, test, test_labels, p)


def run_features(result: RunResult, data, *, epoch: int | None = None,
                 device: str | torch.device | None = None) -> Features:
    """Features of ``result``'s encoder at ``epoch`` (None: the final one; 0: its random initialisation)
    on ``data`` (a :class:`clorg.data.DatasetChoice`), extracted once and then read from the run folder.

    A saved file whose provenance does not match (other data, subset or a retrained run) is recomputed,
    not reused; an unreadable one too, with a message. ``device``: where the encoder runs (default: the
    GPU when there is one).
    """
    device = default_device() if device is None else device
    epoch = result.final_epoch if epoch is None else epoch
    path = result.folder / f"features_e{epoch:04d}.npz"
    wanted = _provenance(result, data, epoch)
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as saved:
                if json.loads(str(saved["provenance"])) == wanted:
                    arrays = {k: saved[k] for k in ("train", "train_labels", "test", "test_labels")}
                    if np.isfinite(arrays["train"]).all() and np.isfinite(arrays["test"]).all():
                        return _from(wanted, **arrays)
                    print(f"{path} holds NaN or infinite values (a damaged file); extracting the features again",
                          flush=True)
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:  # empty, truncated, not a zip
            print(f"{path} cannot be read ({type(exc).__name__}: {exc}); extracting the features again", flush=True)
    encoder = result.load_encoder(epoch=epoch, device=device)
    train = encode(encoder, data.train.images, device=device).cpu().numpy()
    test = encode(encoder, data.test.images, device=device).cpu().numpy()
    if not (np.isfinite(train).all() and np.isfinite(test).all()):
        raise ValueError(f"the encoder of {result.folder.name} at epoch {epoch} gives non-finite features; "
                         f"its training diverged: retrain it with `python -m clorg.train ... --force`")
    arrays = {"train": train, "train_labels": data.train.labels, "test": test, "test_labels": data.test.labels}
    write_atomic(path, lambda fh: np.savez(fh, provenance=np.array(json.dumps(wanted)), **arrays))
    return _from(wanted, train, data.train.labels, test, data.test.labels)


def profile_runs(cfg: dict, data, specs: list[RunSpec] | None = None) -> list[RunResult]:
    """The finished runs ``specs`` (default: the profile's main runs); a missing one says how to train it."""
    return [load_finished(cfg, s, data=data) for s in (specs if specs is not None else main_runs(cfg))]


def analysed_features_epoch(result: RunResult) -> int:
    """The epoch of a run that the chapters analyse (:func:`clorg.core.paper.analysed_epoch`): the last,
    but the authors' epoch of a supervised run that trained past it (ResNet-18: 120 of the `paper`
    profile's 600), which the run must have kept."""
    c = result.config
    epoch = paper.analysed_epoch(c["encoder"], kind_of(c["method"]), result.final_epoch)
    if epoch != result.final_epoch and not result.files.snapshot(epoch).is_file():
        raise ValueError(f"the authors analysed {c['encoder']} {c['method']} at epoch {epoch}, but run "
                         f"{result.folder.name} did not keep that snapshot: set train.checkpoint_every to a divisor "
                         f"of {epoch} and retrain it (python -m clorg.train ... --force)")
    return epoch


def profile_features(cfg: dict, data, *, device: str | torch.device | None = None,
                     random_init: bool = True) -> list[Features]:
    """The analysed features of every main run of a profile (:func:`analysed_features_epoch`: the last
    epoch, the authors' epoch for a supervised run trained past it), then, with ``random_init``, each
    encoder's random initialisation (epoch 0 of its first run: every method of an encoder starts from the
    same seeded weights). Without it, the random initialisations are not extracted at all (at 60,000
    images on two CPU cores, one extraction of a full-width ResNet-18 took 21 minutes)."""
    runs = profile_runs(cfg, data)
    out = [run_features(r, data, epoch=analysed_features_epoch(r), device=device) for r in runs]
    if not random_init:
        return out
    first = {}
    for r in runs:
        first.setdefault(r.config["encoder"], r)
    out += [run_features(r, data, epoch=0, device=device) for r in first.values()]
    return out


def find(features: list[Features], *, encoder: str, method: str | None = None, epoch: str | int = "final"
         ) -> Features | None:
    """The feature set of ``encoder`` with ``method`` at its analysed epoch (``epoch="final"``: the one
    :func:`profile_features` gives) or its random initialisation (``epoch=0``, any method); None when the
    list has none."""
    for f in features:
        if f.encoder != encoder:
            continue
        if epoch == 0 and f.random_init:
            return f
        if epoch != 0 and not f.random_init and f.method == method:
            return f
    return None
