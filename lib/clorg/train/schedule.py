"""Learning-rate schedules, as the factor that multiplies the base learning rate at a given step.

``cosine`` (the default): linear warm-up from 1e-3 x, then cosine decay to 0 over the remaining steps.

``paper-literal``: what the authors' code does (SPEC section 3). Stepped once per epoch: the warm-up
factor min(1, 1e-3 + e (1 - 1e-3) / warmup), then torch's CosineAnnealingWarmRestarts(T_0 = 2 x the
epochs, T_mult = 2, eta_min) from the base rate. Their eta_min (1e-2 contrastive, 1e-4 supervised)
lies *above* their base rate, so this "annealing" raises the rate: to about 4e-3 at epoch 1200 of
their contrastive run (T_0 = 2400, their configured epochs, of which they analysed 1200). Kept for
comparison only; the book says which one produced each run.
"""

from __future__ import annotations

import math

WARMUP_START = 1e-3
PAPER_ETA_MIN = {"contrastive": 1e-2, "supervised": 1e-4}


def cosine_factor(step: int, total_steps: int, warmup_steps: int) -> float:
    if step < warmup_steps:
        return WARMUP_START + (1 - WARMUP_START) * step / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def paper_literal_lr(epoch: int, base_lr: float, warmup_epochs: int, epochs: int, eta_min: float) -> float:
    """The authors' learning rate during ``epoch`` (absolute, not a factor: eta_min is absolute)."""
    if epoch < warmup_epochs:
        return base_lr * min(1.0, WARMUP_START + epoch * (1 - WARMUP_START) / warmup_epochs)
    t, period = epoch - warmup_epochs, 2 * epochs
    while t >= period:  # warm restarts with T_mult = 2
        t -= period
        period *= 2
    return eta_min + (base_lr - eta_min) * (1 + math.cos(math.pi * t / period)) / 2


def lr_at(step: int, *, schedule: str, base_lr: float, steps_per_epoch: int, epochs: int, warmup_epochs: int,
          kind: str) -> float:
    """Learning rate for optimizer step ``step`` (0-based) of a run."""
    if schedule == "cosine":
        return base_lr * cosine_factor(step, epochs * steps_per_epoch, warmup_epochs * steps_per_epoch)
    if schedule == "paper-literal":
        return paper_literal_lr(step // steps_per_epoch, base_lr, warmup_epochs, epochs, PAPER_ETA_MIN[kind])
    raise ValueError(f"unknown schedule {schedule!r}; valid: cosine, paper-literal")
