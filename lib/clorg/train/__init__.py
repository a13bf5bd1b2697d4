"""Training: ``run(cfg, encoder, method)`` trains one encoder with one method, or reuses the finished run.

    >>> from clorg.config import load_profile
    >>> from clorg.train import run
    >>> result = run(load_profile("quick"), "resnet18", "moco_queue")
    >>> result.record["knn_accuracy"], result.load_encoder()

The CLI does the same, also under ``torchrun --nproc_per_node=N`` (DistributedDataParallel)::

    python -m clorg.train --config configs/quick.yaml --encoder resnet18 --method moco_queue
"""

from .loop import RunResult, TrainingDiverged, load_finished, run
from .runs import resolve, run_dir, run_hash, runs_root

__all__ = ["run", "load_finished", "RunResult", "TrainingDiverged", "resolve", "run_dir", "run_hash", "runs_root", "summary_table"]


def summary_table(results: dict):
    """One row per run: epochs, wall time, throughput, kNN accuracy; ``results`` maps (encoder, method) -> RunResult."""
    import pandas as pd

    rows = []
    for (encoder, method), r in results.items():
        rows.append({
            "encoder": encoder, "method": method, "epochs": r.config["epochs"], "batch": r.config["batch_size"],
            "parameters": r.record["parameters"], "train time (min)": r.record["train_seconds"] / 60,
            "images/s": r.record["images_per_s"], "kNN accuracy (k=10)": r.record["knn_accuracy"],
            "device": r.record["device"], "run": r.folder.name, "reused": r.reused,
        })
    return pd.DataFrame(rows)
