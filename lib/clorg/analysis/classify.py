"""Classifier heads on frozen features under two protocols, as records (SPEC 2.4, 2.5).

Protocols:

- **honest** (our primary numbers): a stratified validation split is carved from the training
  features; early stopping and the choice of weights use it; the test set is scored once. Repeated
  over seeds (split and initialisation), reported as mean and standard deviation.
- **authors'**: every training label, the authors' stopping rule (train accuracy), and the *best test
  accuracy over all training steps*, i.e. selected on the test set. Reported for comparison only.

Heads: the linear head, the GCN at each of the profile's temperatures, and label spreading (nothing
trained: fitted on the training split, scored once). Settings follow the authors' saved runs: label
smoothing 0.1 and GCN masks of 5-60 % on trained features, 0 and 5-50 % on the random initialisation
(the profile's ``heads`` section). The GCN's graph is the authors' dense one wherever it has at most
``heads.dense_max_nodes`` nodes, else the top-``heads.graph_k`` graph; one graph per feature set and
temperature serves every seed and both protocols (the nodes are the same: all training and test images).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

from ..core import paper
from ..core.devices import default_device, dense_dtype
from . import records as R
from .heads import GCNFit, GCNHead, LabelSpreadingHead, LinearHead, fit_gcn_heads


def validation_split(labels, fraction: float = 0.1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Indices (fit, validation) of a stratified split: ``fraction`` of each class, at least one image,
    goes to validation. Sorted indices; the same seed gives the same split."""
    labels = np.asarray(labels)
    if not 0 < fraction < 1:
        raise ValueError(f"the validation fraction must be in (0, 1), got {fraction}")
    rng = np.random.default_rng(seed)
    val = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        if len(members) < 2:
            raise ValueError(f"class {c} has {len(members)} training image(s); a validation split needs at "
                             f"least 2 per class (one to fit, one to validate)")
        take = min(len(members) - 1, max(1, round(fraction * len(members))))
        val.append(rng.choice(members, size=take, replace=False))
    val = np.sort(np.concatenate(val))
    fit = np.setdiff1d(np.arange(len(labels)), val)
    return fit, val


def head_settings(heads: dict, random_init: bool) -> dict:
    """Label smoothing and GCN mask range for a feature set, per the authors' saved runs."""
    prefix = "random_init_" if random_init else ""
    return {"label_smoothing": heads[f"{prefix}label_smoothing"], "mask_range": tuple(heads[f"{prefix}mask_range"])}


def honest_cap(heads: dict) -> int:
    """The honest protocol's safety cap on a fit's optimizer steps (``heads.honest_max_steps``; each fit's
    steps and whether it hit the cap are recorded); the authors' protocol has none, as their code has none:
    patience alone stops it (SPEC 8)."""
    return heads["honest_max_steps"]


def graph_k(heads: dict, n_nodes: int) -> int | None:
    """The GCN graph for ``n_nodes`` nodes: None (dense) when it fits, else the profile's top-k."""
    return None if n_nodes <= heads["dense_max_nodes"] else heads["graph_k"]


def graph_name(k: int | None) -> str | int:
    """A graph as a record parameter: "dense", or its k."""
    return "dense" if k is None else int(k)


class _Nodes:
    """All training then all test features of one feature set: the nodes of every transductive head."""

    def __init__(self, f):
        self.f = f
        self.n_train, self.n = len(f.train), len(f.train) + len(f.test)
        self.X = np.concatenate([f.train, f.test])
        self.test_idx = np.arange(self.n_train, self.n)
        self.num_classes = int(max(f.train_labels.max(), f.test_labels.max())) + 1


@dataclass(frozen=True)
class Fits:
    """Which fits of a head to make on one feature set, all with ``settings`` (label smoothing and GCN masks,
    as :func:`head_settings` gives them): the honest protocol's, one per seed (``honest``), and the authors',
    with the first seed (``authors``)."""
    settings: dict
    honest: bool = True
    authors: bool = True


def chapter_fits(heads: dict, f) -> Fits:
    """Chapter 06's fits of a feature set: both protocols, with the settings of its initialisation."""
    return Fits(head_settings(heads, f.random_init))


def _gcn_records(nodes: _Nodes, heads: dict, temperature: float, k, seeds, parameter, device,
                 *groups: Fits) -> list[tuple[list[dict], list[dict]]]:
    """(records, predictions) of each group of GCN fits, all on one graph, built once and trained side by side
    (:func:`fit_gcn_heads`: they share each product with the graph)."""
    f = nodes.f

    def head(seed, settings, max_steps):
        return GCNHead(num_classes=nodes.num_classes, temperature=temperature, k=k, seed=seed, device=device,
                       dense_max_nodes=heads["dense_max_nodes"], dense_dtype=dense_dtype(heads["dense_dtype"], device),
                       max_steps=max_steps, lr=heads["lr"], patience=heads["gcn_patience"],
                       embed_dim=heads["gcn_width"], **settings)

    fits, honest_seeds = [], [seeds if g.honest else [] for g in groups]
    for g, group_seeds in zip(groups, honest_seeds):
        for seed in group_seeds:
            fit, val = validation_split(f.train_labels, heads["validation_fraction"], seed)
            fits.append(GCNFit(head(seed, g.settings, honest_cap(heads)),
                               np.concatenate([f.train_labels[fit], f.train_labels[val]]), fit, val,
                               nodes.test_idx, f.test_labels, nodes.num_classes))
        if g.authors:
            fits.append(GCNFit(head(seeds[0], g.settings, None), f.train_labels, np.arange(nodes.n_train), [],
                               nodes.test_idx, f.test_labels, nodes.num_classes))
    fitted = iter(fit_gcn_heads(fits[0].head.graph(nodes.X), fits))  # the graph depends on none of the settings
    results = []
    for g, group_seeds in zip(groups, honest_seeds):
        out, predictions = [], []
        for seed, h in zip(group_seeds, fitted):
            out += [R.record(f.identity, R.head_metric("gcn", R.TEST), h.test_accuracy_, parameter, seed),
                    R.record(f.identity, R.head_metric("gcn", R.VALIDATION), h.val_accuracy_, parameter, seed),
                    *step_records(f.identity, "gcn", h, parameter, seed)]
            predictions.append(prediction_record(f.identity, "gcn", parameter, seed, h.predictions_))
        if g.authors:
            theirs = next(fitted)
            out += [R.record(f.identity, R.head_metric("gcn", R.AUTHORS), theirs.best_test_accuracy_, parameter),
                    R.record(f.identity, R.head_metric("gcn", R.PARAMETERS), theirs.n_parameters_, parameter),
                    *step_records(f.identity, "gcn", theirs, parameter, None)]
        results.append((out, predictions))
    return results


def _linear_records(f, heads: dict, seeds, device, fits: Fits) -> tuple[list[dict], list[dict]]:
    """(records, predictions) of the linear head's ``fits``."""
    settings = {"label_smoothing": fits.settings["label_smoothing"], "lr": heads["lr"],
                "patience": heads["linear_patience"]}
    C = int(max(f.train_labels.max(), f.test_labels.max())) + 1
    out, predictions = [], []
    for seed in seeds if fits.honest else []:
        fit, val = validation_split(f.train_labels, heads["validation_fraction"], seed)
        h = LinearHead(num_classes=C, seed=seed, device=device, max_steps=honest_cap(heads), **settings).fit(
            f.train[fit], f.train_labels[fit], X_val=f.train[val], y_val=f.train_labels[val],
            X_test=f.test, y_test=f.test_labels)
        out += [R.record(f.identity, R.head_metric("linear", R.TEST), h.test_accuracy_, seed=seed),
                R.record(f.identity, R.head_metric("linear", R.VALIDATION), h.val_accuracy_, seed=seed),
                *step_records(f.identity, "linear", h, None, seed)]
        predictions.append(prediction_record(f.identity, "linear", None, seed, h.predict(f.test)))
    if not fits.authors:
        return out, predictions
    theirs = LinearHead(num_classes=C, seed=seeds[0], device=device, max_steps=None, **settings).fit(
        f.train, f.train_labels, X_test=f.test, y_test=f.test_labels)
    out += [R.record(f.identity, R.head_metric("linear", R.AUTHORS), theirs.best_test_accuracy_),
            R.record(f.identity, R.head_metric("linear", R.PARAMETERS), theirs.n_parameters_),
            *step_records(f.identity, "linear", theirs, None, None)]
    return out, predictions


def _spreading_records(f, heads: dict) -> list[dict]:
    fit, val = validation_split(f.train_labels, heads["validation_fraction"], 0)
    h = LabelSpreadingHead(k=heads["spreading_k"], alpha=heads["spreading_alpha"],
                           max_iter=heads["spreading_max_iter"])
    h.fit(f.train[fit], f.train_labels[fit], X_val=f.train[val], y_val=f.train_labels[val], X_test=f.test,
          y_test=f.test_labels)
    return [R.record(f.identity, R.head_metric("label_spreading", R.TEST), h.test_accuracy_, seed=0),
            R.record(f.identity, R.head_metric("label_spreading", R.VALIDATION), h.val_accuracy_, seed=0)]


def snapshot_head_records(f, heads: dict, protocols=("ours",)) -> list[dict]:
    """The heads at one snapshot of a run, as records of the snapshot's epoch, under each of ``protocols``:

    - "ours": the honest protocol's linear head and GCN (at the authors' T = 0.1 when the profile has it,
      else its first temperature), seed 0, with chapter 06's settings: test and validation accuracy and the
      fit's steps. One seed: a curve along the run, not an interval.
    - "feateval": the authors' ``Feateval`` as their notebook runs it at every snapshot: their protocol
      (every training label, the best test accuracy over the steps, no cap on steps) for the linear head and
      a GCN at each of ``heads.temperatures``, seed 0, with the random-init settings at every epoch (their
      notebook fits label smoothing 0 and masks of 5-50 % throughout: ``heads.random_init_label_smoothing``
      and ``heads.random_init_mask_range``): the best test accuracy and the fit's steps.

    Where both protocols fit a GCN at one temperature, they share its graph, built once, and train side by
    side (:func:`fit_gcn_heads`)."""
    unknown = set(protocols) - {"ours", "feateval"}
    if unknown:
        raise ValueError(f"unknown head protocol(s) {sorted(unknown)}: use 'ours' and/or 'feateval'")
    device, seeds = default_device(), [0]
    nodes = _Nodes(f)
    k = graph_k(heads, nodes.n)
    ours = Fits(head_settings(heads, f.random_init), authors=False)
    feateval = Fits(head_settings(heads, random_init=True), honest=False)  # theirs at every epoch
    gcn = {}  # temperature -> the GCN fits on its graph, by protocol
    if "ours" in protocols:
        theirs = paper.HEADS_VIT_GCN_TEMPERATURE
        gcn.setdefault(theirs if theirs in heads["temperatures"] else heads["temperatures"][0], {})["ours"] = ours
    if "feateval" in protocols:
        for temperature in heads["temperatures"]:
            gcn.setdefault(temperature, {})["feateval"] = feateval
    by_protocol = {"ours": [], "feateval": []}
    for protocol, fits in (("ours", ours), ("feateval", feateval)):
        if protocol in protocols:
            by_protocol[protocol] += _linear_records(f, heads, seeds, device, fits)[0]
    for temperature, groups in gcn.items():  # one graph for both protocols' fits at a temperature
        done = _gcn_records(nodes, heads, temperature, k, seeds, temperature, device, *groups.values())
        for protocol, (records, _) in zip(groups, done):
            by_protocol[protocol] += records
    return by_protocol["ours"] + by_protocol["feateval"]


def step_records(identity: dict, head: str, fitted, parameter, seed) -> list[dict]:
    """How long a fit ran: its optimizer steps, and whether it stopped at the safety cap on steps (the
    authors' heads have none: they stop on patience alone, so a fit that hit the cap is not theirs)."""
    capped = fitted.max_steps is not None and fitted.n_steps_ >= fitted.max_steps
    return [R.record(identity, R.head_metric(head, R.STEPS), fitted.n_steps_, parameter, seed),
            R.record(identity, R.head_metric(head, R.CAP_HIT), float(capped), parameter, seed)]


def prediction_record(identity: dict, head: str, parameter, seed: int, predicted) -> dict:
    """A head's honest test predictions (class indices, in test order) for one seed: what the paired
    comparison of two heads on the same test images needs (claim 4's interval)."""
    return {**{k: identity.get(k) for k in ("encoder", "method", "schedule", "epoch")}, "head": head,
            "parameter": parameter, "seed": seed, "predicted": np.asarray(predicted).astype(int).tolist()}


def classifier_records(features, heads: dict, parts=None) -> tuple[list[dict], list[dict]]:
    """Every head on every feature set: records of honest test and validation accuracy per seed, the
    authors'-protocol accuracy and the parameter count (the GCN's parameter is its temperature); and the
    honest test predictions of the linear head and the GCN per seed (:func:`prediction_record`).

    ``parts`` (a :class:`clorg.book.store.Parts`, optional): each head's records are saved there when it
    is done, and a head found there is not fitted again, so that an interrupted computation resumes."""
    seeds, device = tuple(range(heads["seeds"])), str(default_device())
    jobs = [(f, "linear", None) for f in features] + [(f, "gcn", t) for f in features for t in heads["temperatures"]]
    jobs += [(f, "label_spreading", None) for f in features]
    out, predictions = [], []
    for f, kind, t in tqdm(jobs, desc="classifier heads", unit="head"):
        key = head_job_key(f, kind, t)
        done = parts.get(key) if parts is not None else None
        if done is None:
            done = dict(zip(("records", "predictions"), _head_job(f, kind, t, heads, seeds, device)))
            if parts is not None:
                parts.save(key, done)
        out += done["records"]
        predictions += done["predictions"]
    return out, predictions


def head_job_key(f, kind: str, temperature) -> str:
    """One head's name among the parts of chapter 06: its feature set, kind and temperature."""
    return (f"{f.encoder}/{f.method}/{f.schedule}/epoch {f.epoch}/{kind}"
            + ("" if temperature is None else f"/T={temperature:g}"))


def _head_job(f, kind: str, t, heads: dict, seeds, device) -> tuple[list[dict], list[dict]]:
    """(records, predictions) of one head of :func:`classifier_records` on the feature set ``f``."""
    if kind == "label_spreading":
        return _spreading_records(f, heads), []
    if kind == "linear":
        return _linear_records(f, heads, seeds, device, chapter_fits(heads, f))
    nodes = _Nodes(f)
    return _gcn_records(nodes, heads, t, graph_k(heads, nodes.n), seeds, t, device, chapter_fits(heads, f))[0]


def paired_gain_interval(correct_a, correct_b, resamples: int, seed: int, level: float) -> tuple[float, float, float]:
    """The gain of head a over head b in accuracy, ``mean(correct_a - correct_b)``, with a percentile
    interval from a paired bootstrap. ``correct_*``: (seeds, test images) arrays of 0/1, row s of both
    from the same seed (same validation split), column i the same test image.

    Each resample draws the test images with replacement and, independently, the seeds with replacement,
    and averages the paired differences over the drawn (seed, image) cells: the images are the sampling
    unit of a test set, and the seeds add the spread of the heads' training. Returns (point estimate,
    lower end, upper end) of the ``level`` interval."""
    a, b = np.asarray(correct_a, dtype=np.float64), np.asarray(correct_b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 2 or a.size == 0:
        raise ValueError(f"correct_a and correct_b must be non-empty (seeds, images) arrays of one shape, "
                         f"got {a.shape} and {b.shape}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    resamples = int(resamples)
    if resamples < 1:
        raise ValueError(f"resamples must be a positive integer, got {resamples}")
    d = a - b
    n_seeds, n_images = d.shape
    rng = np.random.default_rng(seed)
    gains = np.empty(resamples)
    for r in range(resamples):
        rows = rng.integers(0, n_seeds, n_seeds)
        cols = rng.integers(0, n_images, n_images)
        gains[r] = d[rows][:, cols].mean()
    tail = (1 - level) / 2
    low, high = np.quantile(gains, [tail, 1 - tail])
    return float(d.mean()), float(low), float(high)


def graph_records(f, heads: dict, temperature: float, fitted: list[dict] | None = None) -> list[dict]:
    """The GCN at ``temperature`` on the dense graph and on each top-k graph of
    ``heads.graph_ks_compared``, same features, both protocols: what the top-k approximation costs.
    The record parameter is the graph ("dense" or k). The dense graph is skipped (with no record) when
    the nodes exceed ``heads.dense_max_nodes``.

    ``fitted``: the records of :func:`classifier_records` with these heads' settings. Where they hold the
    GCN of ``f`` at ``temperature``, it was fitted on this dense graph with these seeds and splits: its
    records are taken, not fitted again (at 12,000 nodes, quick's chapter 06 took 148.6 s instead of 167.5 s;
    at 60,000 nodes an estimated 6 of its 58 minutes on two cores, not measured)."""
    seeds, device = tuple(range(heads["seeds"])), str(default_device())
    nodes = _Nodes(f)
    graphs = ([None] if nodes.n <= heads["dense_max_nodes"] else []) + list(heads["graph_ks_compared"])
    out = []
    for k in tqdm(graphs, desc=f"GCN graphs (T={temperature:g})", unit="graph"):
        fitted_here = _dense_gcn_records(f, temperature, fitted or []) if k is None else []
        out += fitted_here or _gcn_records(nodes, heads, temperature, k, seeds, graph_name(k), device,
                                           chapter_fits(heads, f))[0][0]
    return out


def _dense_gcn_records(f, temperature: float, records: list[dict]) -> list[dict]:
    """The GCN's records of ``f`` at ``temperature`` among the classifier chapter's ``records`` (fitted on
    the dense graph wherever :func:`graph_records` draws one), their parameter the graph's name."""
    gcn = {R.head_metric("gcn", q) for q in (R.TEST, R.VALIDATION, R.AUTHORS, R.PARAMETERS, R.STEPS, R.CAP_HIT)}
    return [{**r, "parameter": graph_name(None)} for r in R.select(records, parameter=temperature, **f.identity)
            if r["metric"] in gcn]


def summary(records: list[dict], head: str, parameter=None, **identity) -> dict:
    """Mean and std over seeds of a head's honest test accuracy, its mean validation accuracy, the
    authors'-protocol accuracy and the parameter count, for one feature set (``identity`` fields)."""
    test = [r["value"] for r in R.select(records, metric=R.head_metric(head, R.TEST), parameter=parameter, **identity)]
    val = [r["value"] for r in R.select(records, metric=R.head_metric(head, R.VALIDATION), parameter=parameter,
                                        **identity)]
    if not test:
        return {}
    out = {"test_mean": float(np.mean(test)), "test_std": float(np.std(test)), "seeds": len(test),
           "val_mean": float(np.mean(val)) if val else None}
    for key, quantity in (("authors", R.AUTHORS), ("parameters", R.PARAMETERS)):
        found = R.select(records, metric=R.head_metric(head, quantity), parameter=parameter, **identity)
        out[key] = found[0]["value"] if found else None
    return out


def best_gcn_temperature(records: list[dict], **identity) -> float | None:
    """The GCN temperature with the best mean validation accuracy for a feature set (ties: the first)."""
    temps = R.parameters(records, metric=R.head_metric("gcn", R.VALIDATION), **identity)
    if not temps:
        return None
    return max(temps, key=lambda t: summary(records, "gcn", t, **identity)["val_mean"])
