"""Learning-rate schedules: the rate at each optimizer step of a run.

- ``cosine`` (our default): linear warm-up from 1e-3 x the base rate, then cosine decay to 0 over the
  remaining steps, updated every step.
- ``paper-literal``: the authors' construction exactly (SPEC section 8), stepped once per epoch like
  theirs: ``SequentialLR([LambdaLR(min(1, 1e-3 + e (1 - 1e-3) / warmup)),
  CosineAnnealingWarmRestarts(T_0=restart_epochs, T_mult=2, eta_min)], milestones=[warmup])``, with T_0
  their *configured* epoch count (2400 contrastive, 600 supervised: the profile's
  ``train.<kind>_restart_epochs``) and eta_min from :data:`clorg.core.paper.SCHEDULE` (1e-2 contrastive,
  1e-4 supervised). eta_min lies above their base rate, so this "annealing" raises the rate: to about
  4.0e-3 at contrastive epoch 1200. ``tests/test_schedule.py`` checks it against torch's own schedulers,
  epoch by epoch, to 1e-12.
- ``paper-compressed``: the authors' curve of the run's kind in absolute values (their base rate, their
  warm-up share, their rise from 2.7e-5 towards 4e-3 over their analysed 1200 epochs), squeezed into the
  run's length: step s of a run of S steps gets their rate at epoch floor(s / S x 1200). It ignores the
  profile's learning rate and warm-up. It exists for one experiment: do the paper's training dynamics
  come from this rising rate rather than from the method?
- ``cosine-authors-peak``: the control of that experiment: the cosine shape (the profile's warm-up, then
  decay to 0) with the authors' *final* rate as its peak (about 4.0e-3 for contrastive runs, 8x the
  CPU profiles' cosine peak of 5e-4), so that a rising curve and a larger rate are told apart.
"""

from __future__ import annotations

import math

from ..core import paper
from ..core.config import SCHEDULES, kind_of


def cosine_factor(step: int, total_steps: int, warmup_steps: int) -> float:
    """Multiplier of the base rate at ``step``: linear warm-up from 1e-3, then cosine decay to 0."""
    if step < warmup_steps:
        return paper.WARMUP_START + (1 - paper.WARMUP_START) * step / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def paper_literal_lr(epoch: int, base_lr: float, warmup_epochs: int, restart_epochs: int, eta_min: float) -> float:
    """The authors' learning rate during ``epoch`` (0-based), as their SequentialLR gives it.

    Before the milestone, LambdaLR's factor of the base rate. At the milestone SequentialLR hands over to
    CosineAnnealingWarmRestarts stepped from 0, which anneals from the base rate towards eta_min over
    T_0 epochs, then restarts with periods doubling (T_mult = 2)."""
    if epoch < warmup_epochs:
        return base_lr * min(1.0, paper.WARMUP_START + epoch * (1 - paper.WARMUP_START) / warmup_epochs)
    t, period = epoch - warmup_epochs, restart_epochs
    while t >= period:  # warm restarts with T_mult = 2
        t -= period
        period *= paper.RESTART_MULT
    return eta_min + (base_lr - eta_min) * (1 + math.cos(math.pi * t / period)) / 2


def paper_compressed_lr(step: int, total_steps: int, kind: str) -> float:
    """The authors' ``kind`` curve in absolute values, its analysed epochs mapped onto ``total_steps``."""
    s = paper.SCHEDULE[kind]
    epoch = min(s["analysed_epoch"] - 1, step * s["analysed_epoch"] // max(1, total_steps))
    return paper_literal_lr(epoch, paper.base_lr(kind), s["warmup_epochs"], s["restart_epochs"], s["eta_min"])


def authors_final_rate(kind: str) -> float:
    """The authors' learning rate at the last epoch they analysed (about 4.0e-3 contrastive)."""
    s = paper.SCHEDULE[kind]
    return paper_literal_lr(s["analysed_epoch"] - 1, paper.base_lr(kind), s["warmup_epochs"], s["restart_epochs"],
                            s["eta_min"])


def lr_at(step: int, *, schedule: str, base_lr: float, steps_per_epoch: int, epochs: int, warmup_epochs: int,
          kind: str, restart_epochs: int | None = None) -> float:
    """Learning rate for optimizer step ``step`` (0-based) of a run of ``epochs`` epochs."""
    if schedule == "cosine":
        return base_lr * cosine_factor(step, epochs * steps_per_epoch, warmup_epochs * steps_per_epoch)
    if schedule == "paper-literal":
        if restart_epochs is None:
            raise ValueError("paper-literal needs restart_epochs (train.<kind>_restart_epochs)")
        return paper_literal_lr(step // steps_per_epoch, base_lr, warmup_epochs, restart_epochs,
                                paper.SCHEDULE[kind]["eta_min"])
    if schedule == "paper-compressed":
        return paper_compressed_lr(step, epochs * steps_per_epoch, kind)
    if schedule == "cosine-authors-peak":
        return authors_final_rate(kind) * cosine_factor(step, epochs * steps_per_epoch, warmup_epochs * steps_per_epoch)
    raise ValueError(f"unknown schedule {schedule!r}; valid: {', '.join(SCHEDULES)}")


def epoch_rates(run: dict, steps_per_epoch: int) -> list[float]:
    """The rate at the first step of each epoch of a resolved run (for plots: the rate on a second axis)."""
    return [lr_at(e * steps_per_epoch, schedule=run["schedule"], base_lr=paper.scaled_lr(run["lr_per_256"], run["batch_size"]),
                  steps_per_epoch=steps_per_epoch, epochs=run["epochs"], warmup_epochs=run["warmup_epochs"],
                  kind=kind_of(run["method"]), restart_epochs=run.get("restart_epochs")) for e in range(run["epochs"])]
