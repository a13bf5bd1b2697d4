"""A run: one (profile, encoder, method), identified by a hash of everything that shapes its result.

The run's folder, ``<runs root>/<profile>/<encoder>-<method>-<hash>/``, holds

- ``config.json``: the resolved configuration that was hashed;
- ``record.json``: provenance (commit, libraries, hardware, data checksum) and, once finished, the
  wall time, throughput and kNN accuracy; ``finished: true`` marks a run that is reused, not retrained;
- ``log.jsonl``: one JSON line per epoch (loss, learning rate, seconds, images/s);
- ``checkpoints/last.pt``: everything needed to resume; ``checkpoints/encoder_eNNNN.pt``: encoder
  weights along the run (epoch 0 is the random initialisation), for the training-dynamics chapter.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from ..methods import METHODS
from ..models import ENCODERS

PROJECT_ROOT = Path(__file__).resolve().parents[3]
_CONTRASTIVE = ("moco_queue", "simclr")
# knobs of the train section that do not change what a run computes, so are left out of its hash
_NOT_HASHED = ("checkpoint_every",)


def runs_root() -> Path:
    env = os.environ.get("CLORG_RUNS")
    return Path(env).expanduser() if env else PROJECT_ROOT / "runs"


def kind_of(method: str) -> str:
    return "contrastive" if method in _CONTRASTIVE else "supervised"


def resolve(cfg: dict, encoder: str, method: str, dataset: dict) -> dict:
    """The flat configuration of one run: what is hashed and what the trainer reads.

    ``dataset`` is :meth:`clorg.data.DatasetChoice.summary`: the data is identified by its checksum
    and subset, not by the profile's name, so two profiles with the same setup share runs.
    """
    if encoder not in ENCODERS:
        raise ValueError(f"unknown encoder {encoder!r}; valid encoders: {list(ENCODERS)}")
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; valid methods: {list(METHODS)}")
    t, kind = cfg["train"], kind_of(method)
    run = {
        "encoder": encoder, "method": method, "width_scale": t["width_scale"],
        "epochs": t[f"{kind}_epochs"], "batch_size": t[f"{kind}_batch_size"],
        "lr_per_256": t[f"{kind}_lr"], "warmup_epochs": t[f"{kind}_warmup_epochs"],
        "weight_decay": t["weight_decay"], "schedule": t["schedule"], "seed": t["seed"], "compile": t["compile"],
        "checkpoint_every": t["checkpoint_every"],
        "dataset": {k: dataset[k] for k in ("name", "sha256", "train_images", "image_shape")},
        "subset": {"train_per_class": cfg["data"]["train_per_class"], "subset_seed": cfg["data"]["subset_seed"]},
        "num_classes": len(dataset["classes"]),
    }
    if method == "moco_queue":
        run.update(moco_momentum=t["moco_momentum"], moco_temperature=t["moco_temperature"],
                   moco_queue_size=t["moco_queue_size"])
    elif method == "simclr":
        run.update(simclr_temperature=t["simclr_temperature"])
    else:
        run.update(label_smoothing=t["label_smoothing"])
    if run["batch_size"] > dataset["train_images"]:
        raise ValueError(f"batch size {run['batch_size']} is larger than the {dataset['train_images']} training "
                         f"images of {dataset['name']}; lower train.{kind}_batch_size or raise data.train_per_class")
    return run


def run_hash(run: dict) -> str:
    hashed = {k: v for k, v in run.items() if k not in _NOT_HASHED}
    return hashlib.sha256(json.dumps(hashed, sort_keys=True).encode()).hexdigest()[:12]


def run_dir(profile: str, run: dict, root: Path | None = None) -> Path:
    return Path(root or runs_root()) / profile / f"{run['encoder']}-{run['method']}-{run_hash(run)}"


def write_json(path: Path, payload: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(payload, indent=1))
    os.replace(tmp, path)


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def is_finished(folder: Path) -> bool:
    record = read_json(folder / "record.json")
    return bool(record and record.get("finished"))


def read_log(folder: Path) -> list[dict]:
    path = folder / "log.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
