"""What the analysis reads of a run folder: which encoder snapshots it holds, which epoch is the run's
last, the weights of a snapshot and the per-epoch log.

Versioned, unlike :mod:`clorg.train.runs` (which names and finds runs: see
:data:`clorg.core.code.NOT_VERSIONED`): every result computed from a run records this module's hash, so
that a change to which weights or epochs the analysis reads marks those results as computed by older
code, as a change to a metric does. :class:`clorg.train.runs.RunFolder` and
:class:`clorg.train.runs.RunResult` read through these functions.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from torch import nn

from . import checkpoint
from .models import build_encoder

LOG_NAME = "log.jsonl"
# checkpoints/encoder_eNNNN.pt: the encoder after NNNN epochs (0: the random initialisation)
_SNAPSHOT = re.compile(r"encoder_e(\d+)\.pt")


class UnreadableRunFile(RuntimeError):
    """A run's record or log that exists but cannot be read; the message names it and the fix."""


def snapshot_path(checkpoints: Path, epoch: int) -> Path:
    """Where the encoder after ``epoch`` epochs is kept in a run's ``checkpoints`` folder."""
    return checkpoints / f"encoder_e{epoch:04d}.pt"


def snapshot_epochs(checkpoints: Path) -> list[int]:
    """The epochs whose encoder ``checkpoints`` holds, sorted ([] when none, or no such folder)."""
    matches = [_SNAPSHOT.fullmatch(p.name) for p in checkpoints.glob("encoder_e*.pt")] if checkpoints.is_dir() else []
    return sorted(int(m.group(1)) for m in matches if m)


def read_log(folder: Path) -> list[dict]:
    """A run's per-epoch log; a line cut short by a crash (the last one) is dropped with a message."""
    path = folder / LOG_NAME
    if not path.is_file():
        return []
    out = []
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    for i, line in enumerate(lines):
        try:
            out.append(json.loads(line))
        except ValueError as exc:
            if i == len(lines) - 1:  # an append cut short: the epoch is re-logged when the run resumes
                print(f"{path}: dropped an unreadable last line ({exc})", flush=True)
                break
            raise UnreadableRunFile(f"{path} line {i + 1} cannot be read ({exc}); delete the run folder "
                                    f"{folder} and train it again") from exc
    return out


def final_epoch(config: dict, record: dict | None) -> int:
    """The last trained epoch: the configured count, or where a deadline or a divergence stopped the run."""
    done = (record or {}).get("epochs_done")
    return int(config["epochs"] if done is None else done)


def load_encoder(path: Path, config: dict, fix: str, device="cpu") -> nn.Module:
    """The encoder of the run configured by ``config`` with the weights of the snapshot at ``path``, in
    evaluation mode on ``device``. A snapshot that cannot be read, or is not this encoder's, is an
    UnreadableCheckpoint ending in ``fix``."""
    enc = build_encoder(config["encoder"], width_scale=config["width_scale"],
                        in_channels=config["dataset"]["image_shape"][2], image_size=config["dataset"]["image_shape"][0])
    checkpoint.restore(enc, checkpoint.load(path, keys=("encoder",), fix=fix)["encoder"], path, "encoder", fix)
    return enc.to(device).eval()
