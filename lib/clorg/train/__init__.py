"""Training: ``run(cfg, encoder, method)`` trains one encoder with one method, or reuses the finished run.

    >>> from clorg.config import load_profile
    >>> from clorg.train import run
    >>> result = run(load_profile("quick"), "resnet18", "moco_queue")
    >>> result.record["knn_accuracy"], result.load_encoder()

The CLI does the same, also under ``torchrun --nproc_per_node=N`` (DistributedDataParallel)::

    python -m clorg.train --config configs/quick.yaml --encoder resnet18 --method moco_queue
"""

from .loop import RunResult, TrainingDiverged, run
from .runs import resolve, run_dir, run_hash, runs_root

__all__ = ["run", "RunResult", "TrainingDiverged", "resolve", "run_dir", "run_hash", "runs_root"]
