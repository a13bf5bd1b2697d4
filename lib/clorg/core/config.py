"""Run profiles: the one source of truth for every knob.

A profile is a YAML file in ``configs/`` (``smoke``, ``quick``, ``gpu10``, ``paper``) or any path to
such a file. Every key of :data:`SCHEMA` must be present, and nothing else may be: a typo in a profile or
an override is an error that names the key and lists the valid ones, never a silently ignored knob.
Notebooks receive ``profile`` (and optional ``overrides``) through papermill parameters; the CLI
receives ``--config``.
"""

from __future__ import annotations

import copy
import difflib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import yaml

from . import paths, variants
from .checks import (BOOLEAN, MASK_RANGE, NON_EMPTY_STRING, NON_NEGATIVE_INT, NON_NEGATIVE_NUMBER, OPEN_UNIT_INTERVAL,
                     POSITIVE_INT, POSITIVE_NUMBER, UNIT_INTERVAL, Rule, list_of, one_of, pair)
from .paths import CONFIG_DIR


# --- value checks: the rules of clorg.core.checks (each returns what the value must be, or None) --------

OPTIONAL_POSITIVE_INT = Rule("a positive integer or null (= all)", lambda v: v is None or POSITIVE_INT(v) is None)
# a folder, or a folder pinned to one state of its weights (clorg.train.runs.pin_warm_start: 16 hex digits)
WEIGHTS_FOLDER = Rule("null, a folder such as weights/gpu10, or one pinned as weights/gpu10@<16 hex digits>",
                      lambda v: v is None or (isinstance(v, str)
                                              and re.fullmatch(r"[^@\s]+(@[0-9a-f]{16})?", v) is not None))

# the profile's name names its folders (runs/<name>/, results/<name>/): one plain folder name, never a path
PROFILE_NAME = Rule("a plain folder name (letters, digits, '_', '-', '.'; not starting with '.')",
                    lambda v: isinstance(v, str) and re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", v) is not None)


def _datasets(v):
    # a name or a list of names in order of preference; the names are checked by clorg.data
    items = v if isinstance(v, list) else [v]
    if not items or any(not isinstance(i, str) or not i for i in items):
        return "a dataset name or a non-empty list of them (cifar10, fashion-mnist, digits, imagefolder:<path>)"
    return None


ENCODERS = ("resnet18", "resnet101", "vit")
METHODS = ("moco_queue", "simclr", "supervised")
CONTRASTIVE_METHODS = ("moco_queue", "simclr")  # methods trained without labels on two augmented views
METHOD_LIST = list_of(NON_EMPTY_STRING, METHODS)
# train.warm_start_methods: which methods' runs a warm start continues
WARM_START_METHODS = Rule(f"null (= every method) or {METHOD_LIST.what}", lambda v: v is None or METHOD_LIST(v) is None)
SCHEDULES = ("cosine", "paper-literal", "paper-compressed", "cosine-authors-peak")


def kind_of(method: str) -> str:
    """``"contrastive"`` or ``"supervised"``: which of a profile's per-kind training keys a method reads."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; valid methods: {list(METHODS)}")
    return "contrastive" if method in CONTRASTIVE_METHODS else "supervised"

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
                and item["method"] in METHODS and POSITIVE_INT(item["epoch"]) is None):
            return what
    return None


# section -> key -> (check, meaning). The meaning is shown in error messages and documents the key.
SCHEMA: dict[str, dict[str, tuple[Callable[[Any], str | None], str]]] = {
    "profile": {
        "name": (PROFILE_NAME, "short name of the profile, the name of its runs' and results' folders"),
        "description": (NON_EMPTY_STRING, "what the profile is for and what it costs"),
        "needs_gpu": (BOOLEAN, "true: train with ci/train_profile.py on a GPU; on a machine without one the "
                             "book renders the stored results/<profile>/ and marks the chapters that lack them"),
        "deviations": (_deviations, "why each setting that differs from the authors' does: the fidelity page "
                                    "shows these reasons beside the values"),
    },
    "data": {
        "dataset": (_datasets, "dataset name, or list in order of preference: the first that loads is used"),
        "train_per_class": (OPTIONAL_POSITIVE_INT, "training images per class (stratified, seeded subset); null = all"),
        "test_per_class": (OPTIONAL_POSITIVE_INT, "test images per class; null = all"),
        "subset_seed": (NON_NEGATIVE_INT, "seed of the stratified subsets"),
    },
    "train": {
        "encoders": (list_of(NON_EMPTY_STRING, ENCODERS), "encoders to train"),
        "width_scale": (POSITIVE_NUMBER, "width multiplier of the encoders (1.0 = the paper's size)"),
        "methods": (METHOD_LIST, "training methods"),
        "contrastive_epochs": (POSITIVE_INT, "epochs of the contrastive methods"),
        "supervised_epochs": (POSITIVE_INT, "epochs of the supervised baseline"),
        "contrastive_batch_size": (POSITIVE_INT, "batch size of the contrastive methods"),
        "supervised_batch_size": (POSITIVE_INT, "batch size of the supervised baseline"),
        "contrastive_lr": (POSITIVE_NUMBER, "AdamW learning rate of the contrastive methods per 256 images (x batch/256)"),
        "supervised_lr": (POSITIVE_NUMBER, "AdamW learning rate of the supervised baseline per 256 images"),
        "contrastive_warmup_epochs": (NON_NEGATIVE_INT, "linear warm-up epochs of the contrastive methods"),
        "supervised_warmup_epochs": (NON_NEGATIVE_INT, "linear warm-up epochs of the supervised baseline"),
        "weight_decay": (NON_NEGATIVE_NUMBER, "AdamW weight decay (torch's default 0.01 in the paper)"),
        "schedule": (one_of(*SCHEDULES), "learning-rate schedule after warm-up: cosine decay to 0; paper-literal, the "
                                "authors' warm restarts (clorg.train.schedule); paper-compressed, the authors' "
                                "contrastive curve in absolute values squeezed into the run's length; "
                                "cosine-authors-peak, a cosine whose peak is the authors' final rate"),
        "contrastive_restart_epochs": (POSITIVE_INT, "T_0 of paper-literal's warm restarts for the contrastive "
                                                 "methods: the authors' configured epoch count (2400)"),
        "supervised_restart_epochs": (POSITIVE_INT, "T_0 of paper-literal's warm restarts for the supervised "
                                                "baseline: the authors' configured epoch count (600)"),
        "variants": (_variants, "extra runs that differ from the profile's run of that encoder and method in "
                                "their schedule only, e.g. [{encoder: vit, method: moco_queue, schedule: cosine}]; "
                                "trained beside the main runs and followed by the dynamics chapter"),
        "moco_momentum": (UNIT_INTERVAL, "EMA momentum m of the key encoder (paper: 0.99)"),
        "moco_temperature": (POSITIVE_NUMBER, "temperature tau of the queue contrastive loss (paper: 0.2)"),
        "moco_queue_size": (POSITIVE_INT, "negatives kept per view; the queue holds ceil(size / batch) batches (paper: 128000)"),
        "simclr_temperature": (POSITIVE_NUMBER, "temperature of SimCLR's NT-Xent loss (0.5 by default)"),
        "label_smoothing": (UNIT_INTERVAL, "label smoothing of the supervised cross-entropy (paper: 0.1)"),
        "supervised_crop_scale": (pair(0.01, 1.0), "area range of the supervised view's RandomResizedCrop "
                                                    "(paper: [0.2, 1.0])"),
        "checkpoint_every": (POSITIVE_INT, "epochs between checkpoints (the last epoch is always saved)"),
        "compile": (BOOLEAN, "wrap the model in torch.compile"),
        "precision": (one_of("auto", "fp32", "bf16"),
                      "autocast of the training steps: auto = bf16 on a GPU and on CPUs with native bf16 "
                      "(AVX-512 BF16, AMX), else fp32"),
        "channels_last": (BOOLEAN, "channels_last memory format for the images and convolutions"),
        "seed": (NON_NEGATIVE_INT, "training seed"),
        "warm_start": (WEIGHTS_FOLDER,
                       "null, or a folder of committed weights (weights/<profile>/) each run starts from: the "
                       "encoder and its head loaded, the momentum encoder copied, a fresh optimizer and warm-up; "
                       "pinned (weights/gpu10@<checksum>, as ci/import_device_run.py prints it) for the runs a "
                       "job trained from weights that its own have replaced since"),
        "warm_start_methods": (WARM_START_METHODS,
                               "the methods whose runs train.warm_start continues (null: every method); the "
                               "others start from the seeded random initialisation as without a warm start, so a "
                               "run already trained with the same settings (installed from the committed weights) "
                               "is kept and not trained again: [moco_queue] spends a GPU job on the contrastive "
                               "run alone"),
    },
    "metrics": {
        "rld_temperatures": (list_of(POSITIVE_NUMBER), "temperatures T of RLD on image features"),
        "chi_ks": (list_of(POSITIVE_INT), "neighbourhood sizes k of CHI (capped below the smallest class)"),
        "extra_epochs": (_extra_epochs, "snapshots measured beside each run's analysed epoch, e.g. the last "
                                        "epoch of a supervised ResNet-18 analysed at the authors' 120: [{encoder: "
                                        "resnet18, method: supervised, epoch: 600}] (the snapshot must be saved: "
                                        "checkpoint_every)"),
    },
    "embeddings": {
        "knn_ks": (list_of(POSITIVE_INT), "k of the kNN probe (majority vote of the k most similar training images)"),
        "neighbour_queries": (POSITIVE_INT, "query images in the nearest-neighbour picture"),
        "neighbours_shown": (POSITIVE_INT, "training neighbours shown per query in that picture"),
    },
    "toy": {
        "points_per_class": (POSITIVE_INT, "points per class in the 2-D toy figure"),
        "seeds": (POSITIVE_INT, "number of seeds of the toy figure (mean and spread)"),
    },
    "tsne": {
        "sample_size": (POSITIVE_INT, "training features embedded by t-SNE"),
        "perplexity_ratios": (list_of(POSITIVE_NUMBER), "perplexity / sample size (the paper: 25, 2500, 24900 of 25,000)"),
        "iterations": (POSITIVE_INT, "optimisation steps in all, early exaggeration included (the authors: 1000)"),
        "exaggeration_iterations": (NON_NEGATIVE_INT, "steps of early exaggeration at the start (the authors: 101, steps 0-100)"),
        "exaggeration": (POSITIVE_NUMBER, "early exaggeration factor (the authors: 4)"),
        "learning_rate": (POSITIVE_NUMBER, "gradient step size (the authors: 500)"),
        "max_affinities": (POSITIVE_INT, "cap on n x neighbours affinity entries (memory: ~50 bytes each while built)"),
        "start": (one_of("normal", "rescaled"),
                  "the random start: 'normal' N(0, 1) as drawn (the authors'), 'rescaled' to sd 1e-4 (openTSNE's)"),
        "neighbours": (one_of("all", "3P"),
                       "affinities over 'all' other points (the authors') or the '3P' nearest (openTSNE's rule)"),
        "sample": (one_of("per map", "shared"),
                   "a fresh random sample for every map ('per map', the authors') or one for all ('shared')"),
        "gradient": (one_of("exact", "fft"),
                     "the exact O(n^2) gradient (the authors') or openTSNE's FFT-approximated repulsion"),
    },
    "heads": {
        "temperatures": (list_of(POSITIVE_NUMBER), "temperatures of the GCN head's graph"),
        "seeds": (POSITIVE_INT, "seeds per classifier (mean and std)"),
        "validation_fraction": (OPEN_UNIT_INTERVAL,
                                "share of each class held out for validation under the honest protocol"),
        "label_smoothing": (UNIT_INTERVAL, "label smoothing of both heads on trained features (the authors' "
                                            "saved contrastive-ViT runs: 0.1)"),
        "mask_range": (MASK_RANGE, "range of the share of training labels the GCN hides each step "
                                        "(the authors' saved contrastive-ViT run: [0.05, 0.6])"),
        "random_init_label_smoothing": (UNIT_INTERVAL, "label smoothing on random-init features (the authors: 0)"),
        "random_init_mask_range": (MASK_RANGE, "the GCN's mask range on random-init features "
                                                    "(the authors: [0.05, 0.5])"),
        "dense_max_nodes": (POSITIVE_INT, "the GCN uses the authors' dense graph up to this many nodes (n^2 float32: "
                                      "12,000 nodes = 0.58 GB, 60,000 = 14.4 GB), a top-k graph beyond"),
        "graph_k": (POSITIVE_INT, "edges kept per node by the top-k graph used beyond heads.dense_max_nodes"),
        "dense_dtype": (one_of("auto", "float32", "bfloat16"),
                        "dtype the dense graph is held in: auto = bfloat16 on CPUs with native bf16 (the same "
                        "accuracy at a quarter of the time, bench/heads.py), float32 elsewhere"),
        "spreading_k": (POSITIVE_INT, "neighbours of label spreading's kNN graph (the baseline without trained weights)"),
        "graph_ks_compared": (list_of(POSITIVE_INT), "top-k graphs compared with the dense one in the "
                                                  "classifier chapter"),
        "lr": (POSITIVE_NUMBER, "AdamW learning rate of the linear head and the GCN (the authors: 0.1)"),
        "linear_patience": (POSITIVE_INT, "steps without a better score before the linear head stops (the authors: 30)"),
        "gcn_patience": (POSITIVE_INT, "steps without a better score before the GCN stops (the authors: 50)"),
        "gcn_width": (POSITIVE_INT, "the GCN's label-embedding and hidden width (the authors: 16)"),
        "honest_max_steps": (POSITIVE_INT, "safety cap on a fit's steps under the honest protocol (each fit's steps and "
                                       "whether it hit the cap are recorded; the authors' protocol has none)"),
        "spreading_alpha": (OPEN_UNIT_INTERVAL, "label spreading's clamping factor (scikit-learn's alpha)"),
        "spreading_max_iter": (POSITIVE_INT, "label spreading's iterations"),
    },
    "dynamics": {
        "rld_temperatures": (list_of(POSITIVE_NUMBER), "temperatures of RLD along training (the authors' figure: 1, 0.5, 0.1)"),
        "knn_k": (POSITIVE_INT, "k of the kNN probe along training"),
        "heads": (BOOLEAN, "true: the linear head's and the GCN's test accuracy at every snapshot too, under our "
                         "protocol (one honest fit of each per snapshot; the authors' own is dynamics.feateval)"),
        "set_loss": (BOOLEAN, "true: the contrastive loss on the whole training set at every snapshot too (the "
                            "authors' Losseval; two views of every training image through each snapshot)"),
        "feateval": (BOOLEAN, "true: the authors' Feateval at every snapshot too: their protocol (every training "
                            "label, the best test accuracy over the steps, no cap on steps) for the linear head and a "
                            "GCN at each of heads.temperatures, with the random-init settings at every epoch"),
    },
    # what the pages draw, not what they compute: no chapter reads this section into a stored result
    "figures": {
        "examples_per_class": (POSITIVE_INT, "training images per class in the data chapter's picture"),
    },
    "near_duplicates": {
        "search": (POSITIVE_INT, "most similar cross-class pairs searched per contrastive run"),
        "show": (POSITIVE_INT, "pairs kept for the chapter's table and pictures"),
        "augment_draws": (POSITIVE_INT, "Monte-Carlo draws of the augmentation on each run's top pair: are its two "
                                    "views ever pixel-identical? (the authors: 100,000,000)"),
    },
}


# Switches added after results had been stored, each with the value at which it does what the code did before
# it existed (nothing more): a stored result's fingerprint leaves a switch out at that value
# (:func:`clorg.book.store.fingerprint`), so that the results stored before it stay current (those stored
# since, with the switch present, hash anew once: recomputed where the machine can). This matters for results
# no machine here can recompute: gpu10's dynamics, computed by the GPU job from snapshots it did not keep,
# hash to gpu10's sections without these switches (tests/test_store.py checks it).
ADDED_SWITCHES = {("dynamics", "heads"): False, ("dynamics", "set_loss"): False,
                  ("train", "warm_start_methods"): None, ("dynamics", "feateval"): False}


class ConfigError(ValueError):
    """A profile or override that does not fit :data:`SCHEMA`."""


def available_profiles(config_dir: Path = CONFIG_DIR) -> list[str]:
    return sorted(p.stem for p in Path(config_dir).glob("*.yaml"))


def _profile_path(profile: str | Path, config_dir: Path) -> Path:
    as_path = Path(profile)
    if as_path.suffix in (".yaml", ".yml"):
        if as_path.is_dir():
            raise ConfigError(f"profile file {as_path} is a folder: give the path of a profile's .yaml file")
        if not as_path.is_file():
            raise ConfigError(f"profile file {as_path} does not exist{_where_else(as_path)}")
        return as_path
    path = Path(config_dir) / f"{profile}.yaml"
    if not path.is_file():
        raise ConfigError(
            f"unknown profile {str(profile)!r}: valid profiles are {available_profiles(config_dir)} "
            f"(files in {config_dir}), or give the path of a .yaml file"
        )
    return path


def _where_else(path: Path) -> str:
    """Where a relative profile path that is not in the working folder was looked for, and the file of the same
    path under the project root, when there is one (a notebook's kernel runs in notebooks/, a shell anywhere)."""
    if path.is_absolute():
        return ""
    here = f" in the working folder {Path.cwd()}"
    if (paths.ROOT / path).is_file():
        return (f"{here}; the project's {path} is {os.path.relpath(paths.ROOT / path)} from there: give that, or "
                f"{paths.ROOT / path}")
    return here


def _valid_keys() -> str:
    return ", ".join(f"{s}.{k}" for s, keys in SCHEMA.items() for k in keys)


def _unknown_key(dotted: str) -> str:
    """What is wrong with an override key that names no setting: the nearest keys, then the keys of its section
    (or the sections), not all 80-odd keys on one line."""
    section = dotted.partition(".")[0]
    near = difflib.get_close_matches(dotted, [f"{s}.{k}" for s, keys in SCHEMA.items() for k in keys], n=1, cutoff=0.8)
    hint = f" (did you mean {near[0]!r}?)" if near else ""
    if section in SCHEMA:
        return f"unknown override key {dotted!r}{hint}; valid keys of {section}: {', '.join(SCHEMA[section])}"
    return (f"unknown override key {dotted!r}{hint}: a key is SECTION.KEY, and the sections are "
            f"{', '.join(SCHEMA)} (configs/*.yaml show each one's keys)")


# A number with an exponent that YAML 1.1 (PyYAML) reads as text: 2e-3, 1.5e3 (its floats need a dot and a signed
# exponent); the loader below reads them as numbers, as YAML 1.2 does
_EXPONENT_NUMBER = re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$")


def _text_for_number(value) -> str:
    """A hint where a value that must be a number holds such text (itself or in its list): papermill's ``-y``,
    a YAML 1.1 reader, passes 2e-3 as the string '2e-3'."""
    texts = [v for v in (value if isinstance(value, list) else [value]) if isinstance(v, str)]
    for text in texts:
        if _EXPONENT_NUMBER.match(text):
            return (f"; {text!r} is text, not a number: a YAML 1.1 reader (papermill's -y) reads a number with an "
                    f"exponent as text unless it has a dot and a signed exponent (2.0e-3), so write it as {float(text)!r}")
    return ""


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
                problems.append(f"{section}.{key} = {values[key]!r} must be {expected} ({meaning})"
                                + _text_for_number(values[key]))
    train = cfg.get("train") or {}
    if isinstance(train.get("warm_start_methods"), list) and isinstance(train.get("methods"), list):
        # a variant (train.variants) may train a method the main runs do not; a warm start can continue it too
        trained = list(train["methods"])
        if _variants(train.get("variants")) is None:
            trained += [v["method"] for v in train["variants"] if v["method"] not in trained]
        strays = [m for m in train["warm_start_methods"] if m not in trained]
        if strays:
            problems.append(f"train.warm_start_methods names {strays}, which neither train.methods nor "
                            f"train.variants trains ({trained}); name methods among those, or null for every one")
    # settings that pass one by one but not together: a warm-up longer than the run, which would quietly never
    # reach the peak rate (tsne.exaggeration_iterations past tsne.iterations is allowed: the tiny test profiles
    # use it, and the map then is exaggerated throughout, which its settings box shows)
    for kind in ("contrastive", "supervised"):
        epochs, warmup = train.get(f"{kind}_epochs"), train.get(f"{kind}_warmup_epochs")
        if all(isinstance(v, int) and not isinstance(v, bool) for v in (epochs, warmup)) and warmup > epochs:
            problems.append(f"train.{kind}_warmup_epochs = {warmup} is longer than train.{kind}_epochs = {epochs}: "
                            f"the learning rate would never reach its peak; lower the warm-up (the CPU profiles warm up "
                            f"for about 5 % of the epochs, the authors for 150 of 1,200)")
    if (cfg.get("toy") or {}).get("points_per_class") == 1:  # each class one point: no spread to score
        problems.append("toy.points_per_class = 1: the toy figure's Calinski-Harabasz score needs more points than "
                        "classes; give it 2 or more (the profiles use 300)")
    # an extra snapshot of a run the profile does not train, or past the run's last epoch, would be found missing
    # by chapter 04 only, after the runs trained
    extra = (cfg.get("metrics") or {}).get("extra_epochs")
    if _extra_epochs(extra) is None and all(isinstance(train.get(k), list) for k in ("encoders", "methods")):
        for e in extra:
            epochs = train.get(f"{kind_of(e['method'])}_epochs")
            if e["encoder"] not in train["encoders"] or e["method"] not in train["methods"]:
                problems.append(f"metrics.extra_epochs names {e['encoder']} {e['method']}, which the profile does not "
                                f"train (train.encoders {train['encoders']}, train.methods {train['methods']})")
            elif isinstance(epochs, int) and e["epoch"] > epochs:
                problems.append(f"metrics.extra_epochs asks for {e['encoder']} {e['method']} at epoch {e['epoch']}, "
                                f"past its train.{kind_of(e['method'])}_epochs = {epochs}")
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
    out, given = {}, {}
    for item in items:
        key, sep, value = str(item).partition("=")
        key = key.strip()  # "data.train_per_class =50": the space is a typing slip, not part of the key
        if not sep or not key:
            raise ConfigError(f"--override needs KEY=VALUE (e.g. data.train_per_class=50), got {item!r}")
        if key in out:  # as in a profile file: which of two values is meant is not for us to guess
            raise ConfigError(f"--override sets {key} twice ({given[key]} and {value}, as typed); keep one")
        given[key] = value
        try:
            out[key] = yaml.load(value, Loader=_UniqueKeyLoader)  # as a profile file reads it: 2e-3 is a number
        except yaml.YAMLError as exc:
            raise ConfigError(f"--override {key}: {value!r} is not a valid YAML value (a list is written "
                              f"[1, 10], a string with spaces in quotes): {exc}") from None
    return out


def apply_overrides(cfg: dict, overrides: dict | None) -> dict:
    """Return a copy of ``cfg`` with dotted keys (``"data.train_per_class": 100``) replaced."""
    cfg = copy.deepcopy(cfg)
    for dotted, value in (overrides or {}).items():
        section, _, key = str(dotted).partition(".")
        if section not in SCHEMA or key not in SCHEMA[section]:
            raise ConfigError(_unknown_key(str(dotted)))
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


# YAML 1.1 (PyYAML) reads a number with an exponent but no dot (2e-3, 1e4) as text, so a profile's learning rate
# written so was refused as "must be a positive number"; YAML 1.2 reads it as the number it is, and so does this
# loader (profile files and --override values alike)
_UniqueKeyLoader.add_implicit_resolver("tag:yaml.org,2002:float", _EXPONENT_NUMBER, list("-+.0123456789"))


def _read_profile(path: Path):
    """The YAML of profile file ``path``, or a ConfigError naming the file and what is wrong with it."""
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)  # safe: plain values only
    except yaml.YAMLError as exc:
        fix = ("\nA profile holds plain values only: a tag such as !!python/object is refused, never run; "
               "remove it" if isinstance(exc, yaml.constructor.ConstructorError) and "twice" not in str(exc) else "")
        raise ConfigError(f"profile {path} is not valid YAML: {exc}{fix}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"profile {path} is not UTF-8 text ({exc.reason} at byte {exc.start}): save it as "
                          f"UTF-8 YAML") from None
    except OSError as exc:
        raise ConfigError(f"profile {path} cannot be read: {exc.strerror or exc}") from None


def check_own_name(cfg: dict, config_dir: Path = CONFIG_DIR) -> None:
    """Refuse to compute a profile file of the user's (a path outside ``config_dir``) that keeps a shipped
    profile's name with other settings (an edited copy of configs/gpu10.yaml) while results go to the project's
    own results/: its results would replace the shipped profile's committed ones in results/<name>/. Called by
    what writes results (a chapter's setup, the notebook executor), not by every reader of a profile. A scratch
    results folder ($CLORG_RESULTS, as the device rehearsal and README's reduced GPU runs use) keeps them apart."""
    path, name = Path(str(cfg["profile"]["base"])), cfg["profile"]["name"]
    shipped = Path(config_dir) / f"{name}.yaml"
    if (path.suffix not in (".yaml", ".yml") or path.resolve().parent == Path(config_dir).resolve()
            or not shipped.is_file() or paths.results_root().resolve() != (paths.ROOT / "results").resolve()):
        return
    mine, theirs = _read_profile(path), _read_profile(shipped)
    differ = [f"{section}.{key}" for section, keys in SCHEMA.items() if section != "profile" for key in keys
              if (mine.get(section) or {}).get(key) != (theirs.get(section) or {}).get(key)]
    if differ:
        raise ConfigError(
            f"profile {path} keeps the name {name!r} of the shipped profile {paths.shown(shipped)} with other settings "
            f"({', '.join(differ)}): its results would replace that profile's in {paths.shown(paths.results_root())}"
            f"/{name}/. Give it a name of its own (profile.name: my-{name}), or point $CLORG_RESULTS and $CLORG_RUNS "
            f"at a scratch folder")


def load_profile(profile: str | Path = "quick", overrides: dict | None = None,
                 config_dir: Path = CONFIG_DIR) -> dict:
    """Load, override and validate a profile by name (``configs/<name>.yaml``), path, or variant name.

    With overrides that change a setting, the profile is a variant (:mod:`clorg.core.variants`):
    ``profile.variant`` is ``<name>+<overrides>-<hash>``, the folder of its results (and builds);
    ``profile.base`` (what ``--profile`` takes) and ``profile.overrides`` (the effective ones) say what it
    is. Without overrides ``profile.variant`` is the profile's name. ``profile.name`` stays the profile's:
    runs stay under ``runs/<name>/``, keyed by their resolved settings, so a variant that changes no
    run's settings reuses the profile's runs. A variant's name loads it again from its recorded overrides."""
    if not isinstance(profile, (str, Path)):  # papermill's -p profile with no value, a notebook's None
        raise ConfigError(f"profile must be a profile's name ({', '.join(available_profiles(config_dir))}) or the "
                          f"path of a .yaml file, got {profile!r}")
    recorded = {}
    if variants.is_variant(profile):
        try:
            profile, recorded = variants.read_record(str(profile))
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    path = _profile_path(profile, config_dir)
    cfg = validate(_read_profile(path), origin=f"profile {path}")
    if overrides is not None and not isinstance(overrides, dict):  # papermill's -p passes a string
        raise ConfigError(f"overrides must be a mapping of KEY: VALUE, got the {type(overrides).__name__} "
                          f"{overrides!r}; with papermill, pass it as YAML: -y 'overrides: {{data.train_per_class: 50}}'")
    wanted = {**recorded, **(overrides or {})}
    out = validate(apply_overrides(cfg, wanted), origin=f"profile {path} with overrides {wanted}")
    changed = variants.effective(wanted, lambda key: _get(cfg, key))
    # a profile file by its absolute path: a notebook's kernel (in notebooks/) and a command (in the project root, or
    # anywhere) read it alike, as the variant's record does later; commands and notebooks show it from where they run
    base = cfg["profile"]["name"] if Path(str(profile)).suffix not in (".yaml", ".yml") else str(path.resolve())
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
