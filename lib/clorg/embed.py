"""Features for analysis: the encoder's 512-d output (before any projector or predictor), computed with
the deterministic view (no augmentation) and L2-normalised, as the paper analyses them.

:func:`run_features` extracts them for a training run at any saved epoch (epoch 0 is the run's own
random initialisation, the reference the paper compares against) and keeps them next to the run,
in ``features_eNNNN.npz``, with the provenance that says which data and weights produced them.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .augment import eval_view
from .devices import default_device


@torch.no_grad()
def encode(encoder: nn.Module, images: np.ndarray | torch.Tensor, *, device: str | torch.device = "cpu",
           batch_size: int = 1024) -> torch.Tensor:
    """L2-normalised float32 features (N, D) of uint8 images (N, H, W, C), on ``device``."""
    device = torch.device(device)
    was_training = encoder.training
    encoder.eval()
    try:
        out = []
        for start in range(0, len(images), batch_size):
            batch = torch.as_tensor(images[start:start + batch_size]).to(device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                feats = encoder(eval_view(batch))
            out.append(F.normalize(feats.float(), dim=1))
        return torch.cat(out)
    finally:
        encoder.train(was_training)


@dataclass(frozen=True, eq=False)
class Features:
    """Train and test features of one encoder, with labels and where they came from."""

    train: np.ndarray
    train_labels: np.ndarray
    test: np.ndarray
    test_labels: np.ndarray
    provenance: dict


def _provenance(result, data, epoch: int) -> dict:
    return {"run": result.folder.name, "encoder": result.config["encoder"], "method": result.config["method"],
            "epoch": epoch, "data_sha256": data.train.checksum, "train_images": len(data.train),
            "test_images": len(data.test), "normalised": True, "view": "deterministic (no augmentation)"}


def _save_npz(path: Path, arrays: dict, provenance: dict) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, provenance=np.array(json.dumps(provenance)), **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def run_features(result, data, *, epoch: int | None = None, device: str | torch.device | None = None) -> Features:
    """Features of ``result``'s encoder at ``epoch`` (None: the final one; 0: its random initialisation)
    on ``data`` (a :class:`clorg.data.DatasetChoice`), extracted once and then read from the run folder.

    A saved file whose provenance does not match (other data or subset) is recomputed, not reused.
    ``device``: where the encoder runs (default: the GPU when there is one).
    """
    device = default_device() if device is None else device
    epoch = result.config["epochs"] if epoch is None else epoch
    path = result.folder / f"features_e{epoch:04d}.npz"
    wanted = _provenance(result, data, epoch)
    if path.is_file():
        with np.load(path, allow_pickle=False) as saved:
            if json.loads(str(saved["provenance"])) == wanted:
                return Features(saved["train"], saved["train_labels"], saved["test"], saved["test_labels"], wanted)
    encoder = result.load_encoder(epoch=epoch, device=device)
    train = encode(encoder, data.train.images, device=device).cpu().numpy()
    test = encode(encoder, data.test.images, device=device).cpu().numpy()
    if not (np.isfinite(train).all() and np.isfinite(test).all()):
        raise ValueError(f"the encoder of {result.folder.name} at epoch {epoch} gives non-finite features; "
                         f"its training diverged: retrain it with `python -m clorg.train ... --force`")
    arrays = {"train": train, "train_labels": data.train.labels, "test": test, "test_labels": data.test.labels}
    _save_npz(path, arrays, wanted)
    return Features(train, data.train.labels, test, data.test.labels, wanted)


def profile_features(cfg: dict, data, *, device: str | torch.device | None = None) -> dict[str, Features]:
    """Final features of every (encoder, method) run of a profile, plus each encoder's random
    initialisation (``"<encoder> random init"``); runs must have been trained (see clorg.train)."""
    from .train import load_finished

    out = {}
    for encoder in cfg["train"]["encoders"]:
        runs = {m: load_finished(cfg, encoder, m, data=data) for m in cfg["train"]["methods"]}
        for method, r in runs.items():
            out[f"{encoder} {method}"] = run_features(r, data, device=device)
        # every method of an encoder starts from the same seeded weights: one reference per encoder
        out[f"{encoder} random init"] = run_features(next(iter(runs.values())), data, epoch=0, device=device)
    return out
