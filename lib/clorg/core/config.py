"""Run profiles: the one source of truth for every knob.

A profile is a YAML file in ``configs/`` (``smoke``, ``quick``, ``gpu10``, ``paper``) or any path to
such a file. Every key of :data:`SCHEMA` must be present, and nothing else may be: a typo in a profile or
an override is an error that names the key and lists the valid ones, never a silently ignored knob.
Notebooks receive ``profile`` (and optional ``overrides``) through papermill parameters; the CLI
receives ``--config``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
import numbers
from pathlib import Path
from typing import Any, Callable

import yaml

from . import variants
from .paths import CONFIG_DIR


# --- value checks: each returns an error message, or None when the value is fine -------------------

def _is_int(v):
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _is_num(v):
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _str(v):
    return None if isinstance(v, str) and v else "a non-empty string"


def _pos_int(v):
    return None if _is_int(v) and v > 0 else "a positive integer"


def _bool(v):
    return None if isinstance(v, bool) else "true or false"


def _nonneg_int(v):
    return None if _is_int(v) and v >= 0 else "an integer >= 0"


def _opt_pos_int(v):
    return None if v is None or (_is_int(v) and v > 0) else "a positive integer or null (= all)"


def _pos_float(v):
    return None if _is_num(v) and v > 0 else "a positive number"


def _nonneg_float(v):
    return None if _is_num(v) and v >= 0 else "a number >= 0"


def _unit_interval(v):
    return None if _is_num(v) and 0 <= v < 1 else "a number in [0, 1)"


def _list_of(check: Callable[[Any], str | None], allowed: tuple[str, ...] | None = None):
    def validate(v):
        what = f"a non-empty list of {check(None) or 'values'}"
        if allowed:
            what = f"a non-empty list drawn from {list(allowed)}"
        if not isinstance(v, list) or not v:
            return what
        for item in v:
            if check(item) is not None or (allowed and item not in allowed):
                return what
        return None
    return validate


def _datasets(v):
    # a name or a list of names in order of preference; the names are checked by clorg.data
    items = v if isinstance(v, list) else [v]
    if not items or any(not isinstance(i, str) or not i for i in items):
        return "a dataset name or a non-empty list of them (cifar10, fashion-mnist, digits, imagefolder:<path>)"
    return None


ENCODERS = ("resnet18", "resnet101", "vit")
METHODS = ("moco_queue", "simclr", "supervised")
CONTRASTIVE_METHODS = ("moco_queue", "simclr")  # methods trained without labels on two augmented views
SCHEDULES = ("cosine", "paper-literal", "paper-compressed", "cosine-authors-peak")


def kind_of(method: str) -> str:
    """``"contrastive"`` or ``"supervised"``: which of a profile's per-kind training keys a method reads."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; valid methods: {list(METHODS)}")
    return "contrastive" if method in CONTRASTIVE_METHODS else "supervised"

def _pair(low: float, high: float):
    """A [lo, hi] pair with low <= lo <= hi <= high (a range of a uniform draw)."""
    def validate(v):
        ok = (isinstance(v, list) and len(v) == 2 and all(_is_num(x) for x in v)
              and low <= v[0] <= v[1] <= high)
        return None if ok else f"a pair [lo, hi] with {low:g} <= lo <= hi <= {high:g}"
    return validate


def _variants(v):
    """Extra runs: a list (maybe empty) of {encoder, method, schedule} mappings."""
    what = (f"a list (maybe empty) of mappings {{encoder, method, schedule}} with encoder in {list(ENCODERS)}, "
            f"method in {list(METHODS)} and schedule in {list(SCHEDULES)}")
    if not isinstance(v, list):
        return what
    for item in v:
        if not (isinstance(item, dict) and set(item) == {"encoder", "method", "schedule"}
                and item["encoder"] in ENCODERS and item["method"] in METHODS and item["schedule"] in SCHEDULES):
            return what
    return None


def _deviations(v):
    """{dotted key: why this profile departs from the authors' value}."""
    if not isinstance(v, dict) or any(not isinstance(k, str) or not isinstance(w, str) or not w for k, w in v.items()):
        return "a mapping {section.key: reason} (may be empty)"
    return None


def _extra_epochs(v):
    """Extra snapshots to measure: a list (maybe empty) of {encoder, method, epoch}."""
    what = "a list (maybe empty) of mappings {encoder, method, epoch} (epoch: a positive integer)"
    if not isinstance(v, list):
        return what
    for item in v:
        if not (isinstance(item, dict) and set(item) == {"encoder", "method", "epoch"} and item["encoder"] in ENCODERS
                and item["method"] in METHODS and _is_int(item["epoch"]) and item["epoch"] > 0):
            return what
    return None


def _schedule(v):
    return None if v in SCHEDULES else f"one of {list(SCHEDULES)}"


# section -> key -> (check, meaning). The meaning is shown in error messages and documents the key.
SCHEMA: dict[str, dict[str, tuple[Callable[[Any], str | None], str]]] = {
    "profile": {
        "name": (_str, "short name of the profile"),
        "description": (_str, "what the profile is for and what it costs"),
        "needs_gpu": (_bool, "true: train with ci/train_profile.py on a GPU; on a machine without one the "
                             "book renders the stored results/<profile>/ and marks the chapters that lack them"),
        "deviations": (_deviations, "why each setting that differs from the authors' does: the fidelity page "
                                    "shows these reasons beside the values"),
    },
    "data": {
        "dataset": (_datasets, "dataset name, or list in order of preference: the first that loads is used"),
        "train_per_class": (_opt_pos_int, "training images per class (stratified, seeded subset); null = all"),
        "test_per_class": (_opt_pos_int, "test images per class; null = all"),
        "subset_seed": (_nonneg_int, "seed of the stratified subsets"),
    },
    "train": {
        "encoders": (_list_of(_str, ENCODERS), "encoders to train"),
        "width_scale": (_pos_float, "width multiplier of the encoders (1.0 = the paper's size)"),
        "methods": (_list_of(_str, METHODS), "training methods"),
        "contrastive_epochs": (_pos_int, "epochs of the contrastive methods"),
        "supervised_epochs": (_pos_int, "epochs of the supervised baseline"),
        "contrastive_batch_size": (_pos_int, "batch size of the contrastive methods"),
        "supervised_batch_size": (_pos_int, "batch size of the supervised baseline"),
        "contrastive_lr": (_pos_float, "AdamW learning rate of the contrastive methods per 256 images (x batch/256)"),
        "supervised_lr": (_pos_float, "AdamW learning rate of the supervised baseline per 256 images"),
        "contrastive_warmup_epochs": (_nonneg_int, "linear warm-up epochs of the contrastive methods"),
        "supervised_warmup_epochs": (_nonneg_int, "linear warm-up epochs of the supervised baseline"),
        "weight_decay": (_nonneg_float, "AdamW weight decay (torch's default 0.01 in the paper)"),
        "schedule": (_schedule, "learning-rate schedule after warm-up: cosine decay to 0; paper-literal, the "
                                "authors' warm restarts (clorg.train.schedule); paper-compressed, the authors' "
                                "contrastive curve in absolute values squeezed into the run's length"),
        "contrastive_restart_epochs": (_pos_int, "T_0 of paper-literal's warm restarts for the contrastive "
                                                 "methods: the authors' configured epoch count (2400)"),
        "supervised_restart_epochs": (_pos_int, "T_0 of paper-literal's warm restarts for the supervised "
                                                "baseline: the authors' configured epoch count (600)"),
        "variants": (_variants, "extra runs that differ from the profile's run of that encoder and method in "
                                "their schedule only, e.g. [{encoder: vit, method: moco_queue, schedule: cosine}]; "
                                "trained beside the main runs and followed by the dynamics chapter"),
        "moco_momentum": (_unit_interval, "EMA momentum m of the key encoder (paper: 0.99)"),
        "moco_temperature": (_pos_float, "temperature tau of the queue contrastive loss (paper: 0.2)"),
        "moco_queue_size": (_pos_int, "negatives kept per view; the queue holds ceil(size / batch) batches (paper: 128000)"),
        "simclr_temperature": (_pos_float, "temperature of SimCLR's NT-Xent loss (0.5 by default)"),
        "label_smoothing": (_unit_interval, "label smoothing of the supervised cross-entropy (paper: 0.1)"),
        "supervised_crop_scale": (_pair(0.01, 1.0), "area range of the supervised view's RandomResizedCrop "
                                                    "(paper: [0.2, 1.0])"),
        "checkpoint_every": (_pos_int, "epochs between checkpoints (the last epoch is always saved)"),
        "compile": (_bool, "wrap the model in torch.compile"),
        "precision": (lambda v: None if v in ("auto", "fp32", "bf16") else "one of ['auto', 'fp32', 'bf16']",
                      "autocast of the training steps: auto = bf16 on a GPU and on CPUs with native bf16 "
                      "(AVX-512 BF16, AMX), else fp32"),
        "channels_last": (_bool, "channels_last memory format for the images and convolutions"),
        "seed": (_nonneg_int, "training seed"),
        "warm_start": (lambda v: None if v is None or (isinstance(v, str) and v) else "null or a folder such as weights/gpu10",
                       "null, or a folder of committed weights (weights/<profile>/) each run starts from: the "
                       "encoder and its head loaded, the momentum encoder copied, a fresh optimizer and warm-up"),
    },
    "metrics": {
        "rld_temperatures": (_list_of(_pos_float), "temperatures T of RLD on image features"),
        "chi_ks": (_list_of(_pos_int), "neighbourhood sizes k of CHI (capped below the smallest class)"),
        "extra_epochs": (_extra_epochs, "snapshots measured beside each run's analysed epoch, e.g. the last "
                                        "epoch of a supervised ResNet-18 analysed at the authors' 120: [{encoder: "
                                        "resnet18, method: supervised, epoch: 600}] (the snapshot must be saved: "
                                        "checkpoint_every)"),
    },
    "embeddings": {
        "knn_ks": (_list_of(_pos_int), "k of the kNN probe (majority vote of the k most similar training images)"),
        "neighbour_queries": (_pos_int, "query images in the nearest-neighbour picture"),
        "neighbours_shown": (_pos_int, "training neighbours shown per query in that picture"),
    },
    "toy": {
        "points_per_class": (_pos_int, "points per class in the 2-D toy figure"),
        "seeds": (_pos_int, "number of seeds of the toy figure (mean and spread)"),
    },
    "tsne": {
        "sample_size": (_pos_int, "training features embedded by t-SNE"),
        "perplexity_ratios": (_list_of(_pos_float), "perplexity / sample size (the paper: 25, 2500, 24900 of 25,000)"),
        "iterations": (_pos_int, "optimisation steps in all, early exaggeration included (the authors: 1000)"),
        "exaggeration_iterations": (_nonneg_int, "steps of early exaggeration at the start (the authors: 101, steps 0-100)"),
        "exaggeration": (_pos_float, "early exaggeration factor (the authors: 4)"),
        "learning_rate": (_pos_float, "gradient step size (the authors: 500)"),
        "max_affinities": (_pos_int, "cap on n x neighbours affinity entries (memory: ~50 bytes each while built)"),
        "start": (lambda v: None if v in ("normal", "rescaled") else "one of ['normal', 'rescaled']",
                  "the random start: 'normal' N(0, 1) as drawn (the authors'), 'rescaled' to sd 1e-4 (openTSNE's)"),
        "neighbours": (lambda v: None if v in ("all", "3P") else "one of ['all', '3P']",
                       "affinities over 'all' other points (the authors') or the '3P' nearest (openTSNE's rule)"),
        "sample": (lambda v: None if v in ("per map", "shared") else "one of ['per map', 'shared']",
                   "a fresh random sample for every map ('per map', the authors') or one for all ('shared')"),
        "gradient": (lambda v: None if v in ("exact", "fft") else "one of ['exact', 'fft']",
                     "the exact O(n^2) gradient (the authors') or openTSNE's FFT-approximated repulsion"),
    },
    "heads": {
        "temperatures": (_list_of(_pos_float), "temperatures of the GCN head's graph"),
        "seeds": (_pos_int, "seeds per classifier (mean and std)"),
        "validation_fraction": (lambda v: None if _is_num(v) and 0 < v < 1 else "a number in (0, 1)",
                                "share of each class held out for validation under the honest protocol"),
        "label_smoothing": (_unit_interval, "label smoothing of both heads on trained features (the authors' "
                                            "saved contrastive-ViT runs: 0.1)"),
        "mask_range": (_pair(0.0, 1.0), "range of the share of training labels the GCN hides each step "
                                        "(the authors' saved contrastive-ViT run: [0.05, 0.6])"),
        "random_init_label_smoothing": (_unit_interval, "label smoothing on random-init features (the authors: 0)"),
        "random_init_mask_range": (_pair(0.0, 1.0), "the GCN's mask range on random-init features "
                                                    "(the authors: [0.05, 0.5])"),
        "dense_max_nodes": (_pos_int, "the GCN uses the authors' dense graph up to this many nodes (n^2 float32: "
                                      "12,000 nodes = 0.58 GB, 60,000 = 14.4 GB), a top-k graph beyond"),
        "graph_k": (_pos_int, "edges kept per node by the top-k graph used beyond heads.dense_max_nodes"),
        "dense_dtype": (lambda v: None if v in ("auto", "float32", "bfloat16") else "one of ['auto', 'float32', 'bfloat16']",
                        "dtype the dense graph is held in: auto = bfloat16 on CPUs with native bf16 (the same "
                        "accuracy at a quarter of the time, bench/heads.py), float32 elsewhere"),
        "spreading_k": (_pos_int, "neighbours of label spreading's kNN graph (the baseline without trained weights)"),
        "graph_ks_compared": (_list_of(_pos_int), "top-k graphs compared with the dense one in the "
                                                  "classifier chapter"),
        "lr": (_pos_float, "AdamW learning rate of the linear head and the GCN (the authors: 0.1)"),
        "linear_patience": (_pos_int, "steps without a better score before the linear head stops (the authors: 30)"),
        "gcn_patience": (_pos_int, "steps without a better score before the GCN stops (the authors: 50)"),
        "gcn_width": (_pos_int, "the GCN's label-embedding and hidden width (the authors: 16)"),
        "honest_max_steps": (_pos_int, "safety cap on a fit's steps under the honest protocol (each fit's steps and "
                                       "whether it hit the cap are recorded; the authors' protocol has none)"),
        "spreading_alpha": (_unit_interval, "label spreading's clamping factor (scikit-learn's alpha)"),
        "spreading_max_iter": (_pos_int, "label spreading's iterations"),
    },
    "dynamics": {
        "rld_temperatures": (_list_of(_pos_float), "temperatures of RLD along training (the authors' figure: 1, 0.5, 0.1)"),
        "knn_k": (_pos_int, "k of the kNN probe along training"),
        "heads": (_bool, "true: the linear head's and the GCN's test accuracy at every snapshot too (the authors' "
                         "Feateval; one honest fit of each per snapshot)"),
        "set_loss": (_bool, "true: the contrastive loss on the whole training set at every snapshot too (the "
                            "authors' Losseval; two views of every training image through each snapshot)"),
    },
    "near_duplicates": {
        "search": (_pos_int, "most similar cross-class pairs searched per contrastive run"),
        "show": (_pos_int, "pairs kept for the chapter's table and pictures"),
        "augment_draws": (_pos_int, "Monte-Carlo draws of the augmentation on each run's top pair: are its two "
                                    "views ever pixel-identical? (the authors: 100,000,000)"),
    },
}


class ConfigError(ValueError):
    """A profile or override that does not fit :data:`SCHEMA`."""


def available_profiles(config_dir: Path = CONFIG_DIR) -> list[str]:
    return sorted(p.stem for p in Path(config_dir).glob("*.yaml"))


def _profile_path(profile: str | Path, config_dir: Path) -> Path:
    as_path = Path(profile)
    if as_path.suffix in (".yaml", ".yml"):
        if not as_path.is_file():
            raise ConfigError(f"profile file {as_path} does not exist")
        return as_path
    path = Path(config_dir) / f"{profile}.yaml"
    if not path.is_file():
        raise ConfigError(
            f"unknown profile {str(profile)!r}: valid profiles are {available_profiles(config_dir)} "
            f"(files in {config_dir}), or give the path of a .yaml file"
        )
    return path


def _valid_keys() -> str:
    return ", ".join(f"{s}.{k}" for s, keys in SCHEMA.items() for k in keys)


def validate(cfg: dict, origin: str = "profile") -> dict:
    """Check ``cfg`` against :data:`SCHEMA`; return it unchanged or raise :class:`ConfigError`."""
    if not isinstance(cfg, dict):
        raise ConfigError(f"{origin}: expected a mapping of sections {list(SCHEMA)}, got {type(cfg).__name__}")
    problems = []
    for section in cfg:
        if section not in SCHEMA:
            problems.append(f"unknown section {section!r} (valid sections: {list(SCHEMA)})")
    for section, keys in SCHEMA.items():
        values = cfg.get(section)
        if not isinstance(values, dict):
            problems.append(f"missing section {section!r} with keys {list(keys)}")
            continue
        for key in values:
            if key not in keys:
                problems.append(f"unknown key {section}.{key} (valid keys of {section}: {list(keys)})")
        for key, (check, meaning) in keys.items():
            if key not in values:
                problems.append(f"missing key {section}.{key}: {meaning}")
                continue
            expected = check(values[key])
            if expected is not None:
                problems.append(f"{section}.{key} = {values[key]!r} must be {expected} ({meaning})")
    for key in (cfg.get("profile") or {}).get("deviations") or {}:
        section, _, name = str(key).partition(".")
        if section not in SCHEMA or name not in SCHEMA[section]:
            problems.append(f"profile.deviations names {key!r}, which is no key; valid keys: {_valid_keys()}")
    if problems:
        raise ConfigError(f"{origin} is invalid:\n  - " + "\n  - ".join(problems))
    return cfg


def parse_overrides(items: list[str]) -> dict:
    """Command-line overrides ``["data.train_per_class=50"]`` as ``{"data.train_per_class": 50}``, each
    value parsed as YAML; used by every script that takes ``--override KEY=VALUE``."""
    out = {}
    for item in items:
        key, sep, value = str(item).partition("=")
        if not sep or not key:
            raise ConfigError(f"--override needs KEY=VALUE (e.g. data.train_per_class=50), got {item!r}")
        parsed = yaml.safe_load(value)
        if isinstance(parsed, str):  # YAML 1.1 reads 1e-3 (no dot) as a string; a number is meant
            try:
                parsed = float(parsed)
            except ValueError:
                pass
        out[key] = parsed
    return out


def apply_overrides(cfg: dict, overrides: dict | None) -> dict:
    """Return a copy of ``cfg`` with dotted keys (``"data.train_per_class": 100``) replaced."""
    cfg = copy.deepcopy(cfg)
    for dotted, value in (overrides or {}).items():
        section, _, key = str(dotted).partition(".")
        if section not in SCHEMA or key not in SCHEMA[section]:
            raise ConfigError(f"unknown override key {dotted!r}; valid keys: {_valid_keys()}")
        cfg[section][key] = value
    return cfg


class _UniqueKeyLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses a key written twice in one mapping (PyYAML keeps the last silently,
    so the first would be an ignored knob)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"the key {key!r} is written twice (line {key_node.start_mark.line + 1}); keep one",
                    key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def load_profile(profile: str | Path = "quick", overrides: dict | None = None,
                 config_dir: Path = CONFIG_DIR) -> dict:
    """Load, override and validate a profile by name (``configs/<name>.yaml``), path, or variant name.

    With overrides that change a setting, the profile is a variant (:mod:`clorg.core.variants`):
    ``profile.variant`` is ``<name>+<overrides>-<hash>``, the folder of its results (and builds);
    ``profile.base`` (what ``--profile`` takes) and ``profile.overrides`` (the effective ones) say what it
    is. Without overrides ``profile.variant`` is the profile's name. ``profile.name`` stays the profile's:
    runs stay under ``runs/<name>/``, keyed by their resolved settings, so a variant that changes no
    run's settings reuses the profile's runs. A variant's name loads it again from its recorded overrides."""
    recorded = {}
    if variants.is_variant(profile):
        try:
            profile, recorded = variants.read_record(str(profile))
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    path = _profile_path(profile, config_dir)
    try:
        cfg = yaml.load(path.read_text(), Loader=_UniqueKeyLoader)  # safe: a SafeLoader, plain values only
    except yaml.YAMLError as exc:
        fix = ("\nA profile holds plain values only: a tag such as !!python/object is refused, never run; "
               "remove it" if isinstance(exc, yaml.constructor.ConstructorError) and "twice" not in str(exc) else "")
        raise ConfigError(f"profile {path} is not valid YAML: {exc}{fix}") from exc
    validate(cfg, origin=f"profile {path}")
    wanted = {**recorded, **(overrides or {})}
    out = validate(apply_overrides(cfg, wanted), origin=f"profile {path} with overrides {wanted}")
    changed = variants.effective(wanted, lambda key: _get(cfg, key))
    base = cfg["profile"]["name"] if Path(str(profile)).suffix not in (".yaml", ".yml") else str(profile)
    out["profile"].update(variant=variants.variant_name(cfg["profile"]["name"], changed), base=base, overrides=changed)
    return out


def _get(cfg: dict, dotted: str):
    section, _, key = dotted.partition(".")
    return cfg[section][key]


def dataset_candidates(cfg: dict) -> list[str]:
    """The profile's datasets in order of preference."""
    ds = cfg["data"]["dataset"]
    return list(ds) if isinstance(ds, list) else [ds]


@dataclass(frozen=True)
class RunSpec:
    """One training run of a profile: an encoder trained with a method under a learning-rate schedule."""

    encoder: str
    method: str
    schedule: str

    @property
    def kind(self) -> str:
        return kind_of(self.method)


def main_runs(cfg: dict) -> list[RunSpec]:
    """Every (encoder, method) of the profile under its schedule, encoder by encoder: what the chapters analyse."""
    t = cfg["train"]
    return [RunSpec(e, m, t["schedule"]) for e in t["encoders"] for m in t["methods"]]


def variant_runs(cfg: dict) -> list[RunSpec]:
    """The profile's extra runs (``train.variants``) that are not already main runs."""
    main = set(main_runs(cfg))
    out = []
    for v in cfg["train"]["variants"]:
        spec = RunSpec(v["encoder"], v["method"], v["schedule"])
        if spec not in main and spec not in out:
            out.append(spec)
    return out


def all_runs(cfg: dict) -> list[RunSpec]:
    """Main runs, then variants: everything ``ci/train_profile.py`` trains."""
    return main_runs(cfg) + variant_runs(cfg)
