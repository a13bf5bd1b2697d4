"""Stage 2, training: encoders (``models``), augmentations (``augment``), methods and their losses
(``methods``), the learning-rate schedules, the training loop and its runs, and the encoding step.

``run(cfg, spec)`` trains one encoder with one method under one schedule, or reuses the finished run::

    >>> from clorg.core.config import load_profile, main_runs
    >>> from clorg.train import run
    >>> cfg = load_profile("quick")
    >>> result = run(cfg, main_runs(cfg)[0])
    >>> result.record["final_loss"], result.load_encoder()

The CLI does the same, also under ``torchrun --nproc_per_node=N`` (DistributedDataParallel)::

    python -m clorg.train --config quick --encoder resnet18 --method moco_queue [--schedule paper-compressed]
"""

from .loop import TrainingDiverged, run
from .runs import RunResult, load_finished, locate, resolve, run_dir, run_hash, train_command

__all__ = ["run", "load_finished", "locate", "train_command", "RunResult", "TrainingDiverged", "resolve",
           "run_dir", "run_hash"]
