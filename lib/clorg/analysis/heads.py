"""Classifier heads on frozen, L2-normalised features (SPEC 2.4, 2.5), scikit-learn style.

Every knob is an ``__init__`` argument (nothing is computed there), ``fit`` returns self, fitted
attributes end in ``_``; ``n_parameters_`` counts the trainable parameters (BatchNorm's affine ones
included, its running statistics not). Every head is fitted the same way::

    head.fit(X, y, X_val=None, y_val=None, X_test=None, y_test=None)

- :class:`LinearHead` — full-batch Linear(D, C), AdamW (section 2.5). Inductive: ``predict(X)``.
- :class:`GCNHead` — the authors' transductive GCN on the RLD graph, label embeddings as inputs
  (section 2.4): the test nodes are part of the graph, so ``X_test`` is required and ``predict()`` /
  ``score(y_test)`` are about those nodes.
- :class:`LabelSpreadingHead` — scikit-learn's kNN label spreading, transductive like the GCN.
- :class:`KNNClassifier` — cosine kNN, majority vote (``weights="uniform"``) or exp(sim / T) votes.

Protocols (SPEC, "Protocol flaw to fix"). The authors keep the best *test* accuracy over all
training steps, i.e. they select on the test set. Here the fitted model never depends on test labels:
early stopping and the choice of weights use a validation split (``X_val, y_val``, carved from train
by the caller) when one is given, else the authors' train-accuracy criterion. Test labels, when given
to ``fit``, are only read to record ``test_curve_`` (test accuracy at every step) and its maximum
``best_test_accuracy_``: the authors' number, for comparison. The honest number is ``test_accuracy_``,
measured once with the selected weights.
"""

from __future__ import annotations

import copy
import itertools
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..core import checks
from .metrics import DENSE_MAX_NODES, rld_graph, top_neighbours

# ============================================ input checks ============================================


_NUM_CLASSES = checks.Rule("an integer >= 2", lambda v: checks.INTEGER(v) is None and v >= 2)


def _train_set(X, y, num_classes: int | None) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Checked training features (float32, CPU) and labels, and the number of classes C (given, or max + 1)."""
    _NUM_CLASSES.require(num_classes, "num_classes", allow_none=True)
    X = checks.features(X, "X", dtype=torch.float32).cpu()
    y = checks.labels(y, len(X), "y", num_classes=num_classes).cpu()
    if len(torch.unique(y)) < 2:
        raise ValueError(f"y must contain at least 2 classes, got {len(torch.unique(y))}")
    return X, y, int(num_classes) if num_classes is not None else int(y.max()) + 1


def _optional_set(X, y, name: str, dim: int, num_classes: int, need_labels: bool):
    """(features, labels or None) for an optional split, or (None, None) when X is None."""
    if X is None:
        if y is not None:
            raise ValueError(f"y_{name} was given without X_{name}")
        return None, None
    if need_labels and y is None:
        raise ValueError(f"X_{name} was given without y_{name}")
    X = checks.features(X, f"X_{name}", dim=dim, dtype=torch.float32).cpu()
    return X, (None if y is None else checks.labels(y, len(X), f"y_{name}", num_classes=num_classes).cpu())


@dataclass(eq=False)  # a head is one object: equal only to itself, as it is fitted in place
class _Trained:
    """The training settings the linear head and the GCN share (AdamW at ``lr``, label smoothing, stopping
    after ``patience`` steps without a better score, an optional cap on the steps, a seed, a device), and
    their check by the core's rules (:mod:`clorg.core.checks`). Settings are keyword fields; what a fit
    learns is set by ``fit`` as attributes ending in ``_``."""

    num_classes: int | None = None
    lr: float = 0.1
    label_smoothing: float = 0.0
    patience: int = 30
    max_steps: int | None = 2000
    seed: int = 0
    device: str | torch.device = "cpu"

    def _training_settings(self) -> None:
        checks.positive_number(self.lr, "lr")
        checks.positive_int(self.patience, "patience")
        checks.positive_int(self.max_steps, "max_steps", allow_none=True)  # None: no cap, patience alone stops
        checks.UNIT_INTERVAL.require(self.label_smoothing, "label_smoothing")


def _steps(max_steps: int | None):
    """The step numbers of a fit: up to the safety cap, or without end when there is none (patience always
    ends a fit: the best score can rise only so many times)."""
    return itertools.count() if max_steps is None else range(max_steps)


def _accuracy(logits: torch.Tensor, y: torch.Tensor) -> float:
    return int((logits.argmax(dim=1) == y).sum()) / len(y)  # exact: a Python float, not float32


def _n_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


class _BestWeights:
    """Early stopping. Says stop after `patience` steps without a strictly better score (the authors'
    rule), and keeps a copy of the weights of the *latest* step with the best score: accuracies
    saturate (train accuracy hits 100 % within a few steps on easy data), and the later of two equally
    scored steps has trained longer."""

    def __init__(self, patience: int):
        self.patience, self.score, self.step, self.improved_at, self.state = patience, -1.0, -1, -1, None

    def update(self, score: float, step: int, model: nn.Module) -> bool:
        if score > self.score:
            self.improved_at = step
        if score >= self.score:
            self.score, self.step, self.state = score, step, copy.deepcopy(model.state_dict())
        return step - self.improved_at >= self.patience


# ============================================= linear head ============================================


@dataclass(eq=False)
class LinearHead(_Trained):
    """Full-batch Linear(D, C) trained with AdamW and cross-entropy (SPEC 2.5).

    One step per "epoch" on the whole training set. With a validation set, training stops after
    `patience` steps without a new best validation accuracy and keeps the weights of the best step
    (the honest protocol); without one, the same on training accuracy (the authors' criterion).
    Accuracies at step t are those of the weights before the t-th update, so the kept weights are
    exactly the ones that were scored.

    Fitted: ``model_``, ``n_parameters_`` (D*C + C), ``num_classes_``, ``n_steps_``, ``best_step_``,
    ``best_score_`` (validation or train accuracy), ``val_accuracy_`` / ``test_accuracy_`` (None
    without that split), ``test_curve_`` and ``best_test_accuracy_`` (authors' protocol; None without
    test labels).
    """

    def fit(self, X, y, X_val=None, y_val=None, X_test=None, y_test=None) -> "LinearHead":
        self._training_settings()
        X, y, C = _train_set(X, y, self.num_classes)
        X_val, y_val = _optional_set(X_val, y_val, "val", X.shape[1], C, need_labels=True)
        X_test, y_test = _optional_set(X_test, y_test, "test", X.shape[1], C, need_labels=True)
        dev = torch.device(self.device)
        X, y = X.to(dev), y.to(dev)
        with torch.random.fork_rng(devices=[]):  # seeded init without touching the global RNG
            torch.manual_seed(self.seed)
            model = nn.Linear(X.shape[1], C).to(dev)
        opt = torch.optim.AdamW(model.parameters(), lr=self.lr)
        loss_fn = nn.CrossEntropyLoss(label_smoothing=self.label_smoothing)
        best, curve = _BestWeights(self.patience), []
        for step in _steps(self.max_steps):
            logits = model(X)
            with torch.no_grad():
                score = _accuracy(model(X_val.to(dev)), y_val.to(dev)) if X_val is not None \
                    else _accuracy(logits, y)
                if y_test is not None:  # read only for the authors' curve
                    curve.append(_accuracy(model(X_test.to(dev)), y_test.to(dev)))
            if best.update(score, step, model):
                break
            opt.zero_grad(set_to_none=True)
            loss_fn(logits, y).backward()
            opt.step()
        model.load_state_dict(best.state)
        self.model_ = model.eval()
        self.num_classes_ = C
        self.n_parameters_ = _n_parameters(model)
        self.n_steps_, self.best_step_, self.best_score_ = step + 1, best.step, best.score
        self.val_accuracy_ = None if X_val is None else self.score(X_val, y_val)
        self.test_accuracy_ = None if y_test is None else self.score(X_test, y_test)
        self.test_curve_ = np.array(curve) if y_test is not None else None
        self.best_test_accuracy_ = float(max(curve)) if curve else None
        return self

    def predict(self, X) -> np.ndarray:
        X = checks.features(X, "X", dim=self.model_.in_features, dtype=torch.float32)
        with torch.no_grad():
            return self.model_(X.to(torch.device(self.device))).argmax(dim=1).cpu().numpy()

    def score(self, X, y) -> float:
        pred = self.predict(X)
        return float((pred == checks.labels(y, len(pred), "y", num_classes=self.num_classes_).numpy()).mean())


# ============================================== GCN head ==============================================


class _SymmetricSpMM(torch.autograd.Function):
    """A @ z for a constant, symmetric sparse CSR matrix A, whose gradient A^T @ g = A @ g reuses the
    fast CSR product (autograd's own sparse backward is ~10x slower on the CPU: 44 ms against ~5 ms
    per forward + backward at n = 12,000, k = 50, 16 columns)."""

    @staticmethod
    def forward(ctx, A, z):
        ctx.A = A
        return A @ z

    @staticmethod
    def backward(ctx, grad):
        return None, ctx.A @ grad


class _SymmetricDenseMM(torch.autograd.Function):
    """A @ z for a constant, symmetric dense A, possibly held in bfloat16 to halve the memory each product
    reads (the product then runs in bfloat16 with float32 accumulation): the dense graph's cost is reading
    A, n^2 entries, several times a step. The gradient A^T g = A g reuses the same product."""

    @staticmethod
    def forward(ctx, A, z):
        ctx.A = A
        return _dense_product(A, z)

    @staticmethod
    def backward(ctx, grad):
        return None, _dense_product(ctx.A, grad)


def _dense_product(A: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """A @ z in A's dtype, returned in z's, with z's columns zero-padded to a multiple of 16: the CPU's
    matrix kernels read A at the same cost for 16 columns as for 10 or 11 (the GCN's classes and labels),
    but handle an odd remainder of columns by a slower path (2-core EPYC, 12,000 nodes: 0.25 s for 10
    columns, 0.15 s for 16). The padding's zero columns change no other column."""
    width = z.shape[1]
    padded = -width % 16
    if padded:
        z = nn.functional.pad(z, (0, padded))
    return (A @ z.to(A.dtype))[:, :width].to(z.dtype)


def _propagate(A: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    if A.layout == torch.sparse_csr:
        return _SymmetricSpMM.apply(A, z)
    return _SymmetricDenseMM.apply(A, z)


class _GCNLayer(nn.Module):
    """h' = act(A (h Theta) + lambda (h Theta) + b) [+ h if in == out], A = D^-1/2 W D^-1/2, with the product
    A (h Theta) made by the caller. lambda (init 0) lets a node weigh its own input against its neighbours'
    (W has no self-loops)."""

    def __init__(self, in_dim: int, out_dim: int, hidden: bool):
        super().__init__()
        self.theta = nn.Parameter(nn.init.xavier_uniform_(torch.empty(in_dim, out_dim)))
        self.lam = nn.Parameter(torch.zeros(()))
        self.bias = nn.Parameter(torch.zeros(out_dim))
        # Batch statistics always: the batch is the whole graph in training and evaluation alike (the
        # authors' code never switches to eval mode); running averages would lag the fast full-batch
        # training and spoil the early-stopped weights.
        self.norm = nn.BatchNorm1d(out_dim, track_running_stats=False) if hidden else None
        self.residual = in_dim == out_dim

    def forward(self, h: torch.Tensor, propagated: torch.Tensor) -> torch.Tensor:
        """``propagated``: A (h Theta); the caller makes the products with the graph (see :class:`_GCN`)."""
        z = h @ self.theta
        out = propagated + self.lam * z + self.bias
        if self.norm is not None:
            out = nn.functional.selu(self.norm(out))
        return out + h if self.residual else out


class _GCN(nn.Module):
    """Label embeddings (index C = "label unknown") -> layer(16->16, BN + SELU) -> layer(16->C).

    The first layer's input has only C + 1 distinct rows (one per label), so its product with the graph is
    A (E[labels] Theta_1) = (A onehot(labels)) (E Theta_1): the graph meets a constant, the spread of the
    labels, which needs no product with A in the backward pass and, for labels that do not change (the
    evaluation's), is computed once per fit. The forward pass is in two stages, so that the products with
    the graph of several fits can be made at once (:func:`fit_gcn_heads`): :meth:`hidden` (no product),
    then :meth:`logits`, given A times :meth:`projected`. (So a fitted head's ``model_`` has no forward
    of its own: :func:`fit_gcn_heads` composes the stages.)"""

    def __init__(self, num_classes: int, embed_dim: int):
        super().__init__()
        self.embed = nn.Embedding(num_classes + 1, embed_dim)
        self.layer1 = _GCNLayer(embed_dim, embed_dim, hidden=True)
        self.layer2 = _GCNLayer(embed_dim, num_classes, hidden=False)

    def onehot(self, labels: torch.Tensor) -> torch.Tensor:
        """onehot(labels), (n, C + 1): its product with A is the spread of the labels."""
        return nn.functional.one_hot(labels, self.embed.num_embeddings).to(self.embed.weight.dtype)

    def hidden(self, labels: torch.Tensor, spread: torch.Tensor) -> torch.Tensor:
        """The first layer's output, given the spread A onehot(labels) of these labels."""
        propagated = spread @ (self.embed.weight @ self.layer1.theta)  # = A (E[labels] Theta_1)
        return self.layer1(self.embed(labels), propagated)

    def projected(self, h: torch.Tensor) -> torch.Tensor:
        """h Theta_2: what the second layer propagates over the graph."""
        return h @ self.layer2.theta

    def logits(self, h: torch.Tensor, propagated: torch.Tensor) -> torch.Tensor:
        """Logits of every node, given A (h Theta_2) (``propagated``)."""
        return self.layer2(h, propagated)


def _propagate_many(A: torch.Tensor, zs: list[torch.Tensor]) -> list[torch.Tensor]:
    """[A @ z for z in zs] with one product: on a dense graph its cost is mostly reading A's n^2 entries,
    so fits that train side by side share each read (at 60,000 nodes in bfloat16 on a 2-core Xeon, 96
    columns cost about twice 16, bench/results/heads.md)."""
    if not zs:
        return []
    out = _propagate(A, torch.cat(zs, dim=1))
    return list(out.split([z.shape[1] for z in zs], dim=1))


def normalised_adjacency(W: torch.Tensor) -> torch.Tensor:
    """D^-1/2 W D^-1/2 of a sparse top-k graph W, degrees clamped at >= 1 (the authors' rule), as sparse
    CSR (the fastest sparse x dense product on the CPU, ~10x COO's). The dense graph is normalised as it is
    built: :func:`clorg.analysis.metrics.rld_graph` with ``normalised=True``."""
    if not W.is_sparse:
        raise ValueError("normalised_adjacency takes a sparse graph; build a dense one normalised: "
                         "rld_graph(X, temperature, normalised=True)")
    rows, cols = W.indices()
    degree = torch.zeros(W.shape[0], dtype=W.dtype, device=W.device).index_add_(0, rows, W.values()).clamp_(min=1)
    inv_sqrt = degree.rsqrt()
    A = torch.sparse_coo_tensor(W.indices(), W.values() * inv_sqrt[rows] * inv_sqrt[cols], W.shape,
                                is_coalesced=True, check_invariants=False)
    with warnings.catch_warnings():  # "CSR support is in beta": the product we use is well supported
        warnings.simplefilter("ignore", UserWarning)
        return A.to_sparse_csr()


class _Transductive:
    """``predict()`` / ``score(y_test)`` of a transductive head: the test nodes are fixed at ``fit``,
    which sets ``predictions_`` (their labels) and ``num_classes_``."""

    def predict(self) -> np.ndarray:
        """Predicted labels of the test nodes given to ``fit``."""
        return self.predictions_.copy()

    def score(self, y_test) -> float:
        """Accuracy on the test nodes given to ``fit``."""
        y = checks.labels(y_test, len(self.predictions_), "y_test", num_classes=self.num_classes_)
        return float((self.predictions_ == y.numpy()).mean())


def _transductive_nodes(X, y, X_val, y_val, X_test, y_test, num_classes, what: str):
    X, y, C = _train_set(X, y, num_classes)
    X_val, y_val = _optional_set(X_val, y_val, "val", X.shape[1], C, need_labels=True)
    X_test, y_test = _optional_set(X_test, y_test, "test", X.shape[1], C, need_labels=False)
    if X_test is None:
        raise ValueError(f"X_test is required: {what} is transductive, test nodes are part of the graph")
    return X, y, X_val, y_val, X_test, y_test, C




@dataclass(eq=False)
class GCNHead(_Trained, _Transductive):
    """The authors' transductive GCN classifier (SPEC 2.4).

    Nodes are the train, validation and test features (in that order); edges are the RLD graph W at
    `temperature` (:func:`clorg.analysis.metrics.rld_graph`): ``k=None`` the authors' dense graph (up to
    ``dense_max_nodes`` nodes), ``k`` the top-k graph symmetrised as (A + A^T) / 2 (their ``to_spare``).
    ``dense_dtype="bfloat16"`` holds the dense normalised graph in bfloat16 (half the memory to read each
    product; on CPUs with bf16 instructions ~5x faster; bench/heads.py measures what it changes). Image
    features act only through the graph: node inputs are label embeddings, index C meaning "unknown".

    Training, one full-batch step per "epoch": draw p ~ U(mask_range), hide each train label with
    probability p (validation and test labels are always hidden), cross-entropy on the hidden train
    nodes only, AdamW. Stopping: with a validation set, after `patience` steps without a new best
    validation accuracy (all train labels visible), keeping the best weights (honest); without one, the
    authors' rule on the accuracy over the hidden train nodes of the step.

    Fitted: ``model_``, ``predictions_`` (test nodes), ``n_parameters_`` (652 for C=10, embed_dim=16),
    ``n_steps_``, ``best_step_``, ``best_score_``, ``val_accuracy_``, ``test_accuracy_``, ``test_curve_``,
    ``best_test_accuracy_`` (as in :class:`LinearHead`), ``graph_`` ("dense" or "top-<k>").
    """

    patience: int = 50  # the authors' GCN patience (the linear head's is 30)
    temperature: float = 0.1
    k: int | None = None
    embed_dim: int = 16
    mask_range: tuple[float, float] = (0.05, 0.5)
    dense_max_nodes: int = DENSE_MAX_NODES
    dense_dtype: str = "float32"

    def _check_params(self, n_nodes: int) -> None:
        self._training_settings()
        checks.positive_number(self.temperature, "temperature")
        checks.positive_int(self.embed_dim, "embed_dim")
        checks.positive_int(self.k, "k", allow_none=True)
        if self.k is None and n_nodes > self.dense_max_nodes:
            raise ValueError(f"k=None builds a dense graph on {n_nodes} nodes; for more than dense_max_nodes="
                             f"{self.dense_max_nodes} nodes pass k (e.g. k=50) for a sparse top-k graph")
        if self.k is not None and self.k >= n_nodes:
            raise ValueError(f"k must be smaller than the number of nodes ({n_nodes}), got {self.k}")
        checks.one_of("float32", "bfloat16").require(self.dense_dtype, "dense_dtype")
        checks.MASK_RANGE.require(self.mask_range, "mask_range")

    def graph(self, nodes) -> torch.Tensor:
        """The normalised adjacency this head trains on, over the feature rows ``nodes`` (any order):
        build it once and pass it to :meth:`fit_on_graph` (or :func:`fit_gcn_heads`) for every split of the
        same nodes."""
        nodes = checks.features(nodes, "nodes", dtype=torch.float32)
        self._check_params(len(nodes))
        nodes = nodes.to(torch.device(self.device))
        if self.k is None:  # normalised tile by tile: the dense W is never held whole (60,000 nodes: 14 GB)
            return rld_graph(nodes, self.temperature, dense_max_nodes=self.dense_max_nodes, normalised=True,
                             dtype=getattr(torch, self.dense_dtype))
        return normalised_adjacency(rld_graph(nodes, self.temperature, self.k))

    def fit(self, X, y, X_val=None, y_val=None, X_test=None, y_test=None) -> "GCNHead":
        X, y, X_val, y_val, X_test, y_test, C = _transductive_nodes(X, y, X_val, y_val, X_test, y_test,
                                                                    self.num_classes, "the GCN")
        parts = [X] + ([X_val] if X_val is not None else []) + [X_test]
        n_train, n_val = len(X), 0 if X_val is None else len(X_val)
        n = n_train + n_val + len(X_test)
        index = torch.arange(n)
        return self.fit_on_graph(self.graph(torch.cat(parts)), torch.cat([y] + ([y_val] if n_val else [])),
                                 index[:n_train], index[n_train:n_train + n_val], index[n_train + n_val:],
                                 y_test, num_classes=C)

    def fit_on_graph(self, A: torch.Tensor, labels, fit_idx, val_idx, test_idx, y_test=None,
                     num_classes: int | None = None) -> "GCNHead":
        """Train on the graph ``A`` (from :meth:`graph`) whose nodes ``fit_idx`` are labelled for training,
        ``val_idx`` (maybe empty) for validation and ``test_idx`` are the test nodes. ``labels``: the labels
        of fit and validation nodes, in the order of ``torch.cat([fit_idx, val_idx])``. Several heads on one
        graph train faster together: :func:`fit_gcn_heads`."""
        return fit_gcn_heads(A, [GCNFit(self, labels, fit_idx, val_idx, test_idx, y_test, num_classes)])[0]


@dataclass(eq=False)
class GCNFit:
    """One GCN head to train on a graph shared with others, and its nodes' roles, as
    :meth:`GCNHead.fit_on_graph` takes them."""

    head: GCNHead
    labels: object
    fit_idx: object
    val_idx: object
    test_idx: object
    y_test: object = None
    num_classes: int | None = None


class _GCNRun:
    """The state of one fit of :func:`fit_gcn_heads`: its checked node roles, model, optimiser, mask
    generator, early stopping and the authors' test curve."""

    def __init__(self, fit: GCNFit, A: torch.Tensor):
        head, n = fit.head, A.shape[0]
        fit_idx, val_idx, test_idx = (torch.as_tensor(i, dtype=torch.int64) for i in (fit.fit_idx, fit.val_idx,
                                                                                       fit.test_idx))
        n_train, n_val = len(fit_idx), len(val_idx)
        checks.node_roles(fit_idx, val_idx, test_idx, n)
        labels = checks.labels(fit.labels, n_train + n_val, "labels", num_classes=fit.num_classes)
        C = int(fit.num_classes) if fit.num_classes is not None else int(labels.max()) + 1
        y_test = None if fit.y_test is None else checks.labels(fit.y_test, len(test_idx), "y_test", num_classes=C)
        head._check_params(n)
        dev = torch.device(head.device)
        # node roles by index: the graph's order is the caller's; train/val/test are index sets into it
        self.head, self.C, self.n_train, self.n_val = head, C, n_train, n_val
        self.train, self.val, self.test = fit_idx.to(dev), val_idx.to(dev), test_idx.to(dev)
        self.y, self.y_val = labels[:n_train].to(dev), labels[n_train:].to(dev)
        self.y_test = None if y_test is None else y_test.to(dev)
        self.visible = torch.full((n,), C, dtype=torch.int64, device=dev)  # evaluation: all train labels shown
        self.visible[self.train] = self.y
        with torch.random.fork_rng(devices=[]):  # seeded init without touching the global RNG
            torch.manual_seed(head.seed)
            self.model = _GCN(C, head.embed_dim).to(dev)
        self.gen = torch.Generator().manual_seed(head.seed)  # the masks, on the CPU: same draws on any device
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=head.lr)
        self.loss_fn = nn.CrossEntropyLoss(label_smoothing=head.label_smoothing)
        self.best, self.curve, self.steps = _BestWeights(head.patience), [], None
        self.evaluates = bool(n_val) or y_test is not None  # the weights are scored at every step

    def draw_inputs(self) -> tuple[torch.Tensor, torch.Tensor]:
        """A step's training inputs: p ~ U(mask_range), each train label hidden with probability p (at least
        one), the other train labels shown; (inputs of every node, which train nodes are hidden)."""
        lo, hi = self.head.mask_range
        p = lo + (hi - lo) * float(torch.rand((), generator=self.gen))
        hidden = torch.rand(self.n_train, generator=self.gen) < p
        if not bool(hidden.any()):  # tiny train sets: always learn from at least one node
            hidden[int(torch.randint(self.n_train, (), generator=self.gen))] = True
        hidden = hidden.to(self.visible.device)
        inputs = self.visible.clone()
        inputs[self.train] = torch.where(hidden, self.C, self.y)
        return inputs, hidden

    def scored(self, logits: torch.Tensor, step: int) -> bool:
        """Record the evaluation of this step's weights; True when the validation accuracy says stop."""
        if self.y_test is not None:  # read only for the authors' curve
            self.curve.append(_accuracy(logits[self.test], self.y_test))
        return bool(self.n_val) and self.best.update(_accuracy(logits[self.val], self.y_val), step, self.model)

    def finish(self, logits: torch.Tensor) -> GCNHead:
        """Set the head's fitted attributes; ``logits``: every node's, by the kept weights."""
        head = self.head
        head.model_, head.num_classes_ = self.model, self.C
        head.graph_ = "dense" if head.k is None else f"top-{head.k}"
        head.n_parameters_ = _n_parameters(self.model)
        head.n_steps_, head.best_step_, head.best_score_ = self.steps, self.best.step, self.best.score
        head.predictions_ = logits[self.test].argmax(dim=1).cpu().numpy()
        head.val_accuracy_ = _accuracy(logits[self.val], self.y_val) if self.n_val else None
        head.test_accuracy_ = None if self.y_test is None else head.score(self.y_test.cpu())
        head.test_curve_ = np.array(self.curve) if self.y_test is not None else None
        head.best_test_accuracy_ = float(max(self.curve)) if self.curve else None
        return head


def fit_gcn_heads(A: torch.Tensor, fits: list[GCNFit]) -> list[GCNHead]:
    """Train the GCN heads ``fits`` on the one graph ``A`` side by side, step by step, and return them fitted.

    Each head trains as it would alone (its own weights, masks, optimiser and stopping: see
    :class:`GCNHead`); what they share is each product with the graph, made once for all the heads still
    training (``_propagate_many``). On a dense graph the product's cost is mostly reading its n^2
    entries (7.2 GB in bfloat16 at 60,000 nodes): there four fits side by side took 1.8 times one fit's
    time, not 4 (bench/results/heads.md). A step makes 3 products: the evaluation's second layer beside
    the masked labels' spread, then the training's second layer, then its gradient. Every fit's weights
    are evaluated at every step, scored or not, so that a fit's products never depend on whether test
    labels were given (their values are only ever read into the authors' test curve).

    The same arithmetic, but not always the same rounding: a wider product may take another kernel path,
    whose sums differ in the last bit (on a 2-core Xeon: from 48 columns in bfloat16, 96 in float32), and
    early stopping can turn that into another stopping step. On a sparse graph on the CPU (a product row by
    row) the heads are identical to those fitted alone (tests/test_heads.py); on the dense one they are
    another draw of the same noise, which bench/heads.py --together measures."""
    if len({id(f.head) for f in fits}) != len(fits):
        raise ValueError("each fit needs a GCNHead of its own: a head is fitted in place")
    devices = {torch.device(f.head.device).type for f in fits} | {A.device.type}
    if len(devices) > 1:
        raise ValueError(f"the heads and the graph must be on one device, got {sorted(devices)}: build the graph "
                         f"with a head of the same device (GCNHead.graph)")
    runs = [_GCNRun(f, A) for f in fits]
    with torch.no_grad():  # the evaluation's labels never change: their spread is computed once per fit
        shown = dict(zip(runs, _propagate_many(A, [r.model.onehot(r.visible) for r in runs])))
    active = list(runs)
    for step in itertools.count():
        for r in [r for r in active if r.head.max_steps is not None and step >= r.head.max_steps]:
            r.steps = step  # the safety cap: as many steps as it allows
            active.remove(r)
        if not active:
            break
        # 1. no gradient: the evaluation of the current weights, and the spread of each fit's masked labels
        drawn = {r: r.draw_inputs() for r in active}
        with torch.no_grad():
            for r in active:
                r.model.eval()
            h_eval = {r: r.model.hidden(r.visible, shown[r]) for r in active}
            products = _propagate_many(A, [r.model.projected(h_eval[r]) for r in active]
                                       + [r.model.onehot(drawn[r][0]) for r in active])
        spreads = dict(zip(active, products[len(active):]))
        for r, p in zip(list(active), products):
            if r.evaluates and r.scored(r.model.logits(h_eval[r], p), step):
                r.steps = step + 1
                active.remove(r)
        # 2. the training step of every fit still on
        for r in active:
            r.model.train()
        h_train = {r: r.model.hidden(drawn[r][0], spreads[r]) for r in active}
        propagated = _propagate_many(A, [r.model.projected(h_train[r]) for r in active])
        losses = []
        for r, p in zip(list(active), propagated):
            masked = drawn[r][1]
            logits = r.model.logits(h_train[r], p)[r.train][masked]
            if not r.n_val and r.best.update(_accuracy(logits, r.y[masked]), step, r.model):
                r.steps = step + 1  # the authors' rule: the accuracy on the hidden train nodes says stop
                active.remove(r)
                continue
            r.opt.zero_grad(set_to_none=True)
            losses.append(r.loss_fn(logits, r.y[masked]))
        if losses:
            torch.stack(losses).sum().backward()  # each fit's weights get their own loss's gradient only
        for r in active:
            r.opt.step()
    # the kept weights of every fit, scored with one more product
    with torch.no_grad():
        for r in runs:
            r.model.load_state_dict(r.best.state)
            r.model.eval()
        h = [r.model.hidden(r.visible, shown[r]) for r in runs]
        final = _propagate_many(A, [r.model.projected(x) for r, x in zip(runs, h)])
        return [r.finish(r.model.logits(x, p)) for r, x, p in zip(runs, h, final)]


# ============================================ label spreading =========================================


class LabelSpreadingHead(_Transductive):
    """scikit-learn's ``LabelSpreading(kernel="knn")`` with :class:`GCNHead`'s transductive API: the
    train labels are spread over a kNN graph of train (+ val) + test features; val/test are unlabelled.
    Nothing is trained, so there is one protocol. Fitted: ``model_``, ``predictions_`` (test nodes),
    ``val_accuracy_``, ``test_accuracy_``, ``n_parameters_`` (0)."""

    def __init__(self, k=10, alpha=0.2, max_iter=30):
        self.k = k
        self.alpha = alpha
        self.max_iter = max_iter

    def fit(self, X, y, X_val=None, y_val=None, X_test=None, y_test=None) -> "LabelSpreadingHead":
        from sklearn.semi_supervised import LabelSpreading

        checks.positive_int(self.k, "k")
        checks.positive_int(self.max_iter, "max_iter")
        checks.OPEN_UNIT_INTERVAL.require(self.alpha, "alpha")
        X, y, X_val, y_val, X_test, y_test, C = _transductive_nodes(X, y, X_val, y_val, X_test, y_test, None,
                                                                    "label spreading")
        parts = [X] + ([X_val] if X_val is not None else []) + [X_test]
        features = torch.cat(parts).numpy()
        if self.k >= len(features):
            raise ValueError(f"k must be smaller than the number of nodes ({len(features)}), got {self.k}")
        labels = np.full(len(features), -1)  # -1 = unlabelled, scikit-learn's convention
        labels[:len(X)] = y.numpy()
        self.model_ = LabelSpreading(kernel="knn", n_neighbors=self.k, alpha=self.alpha,
                                     max_iter=self.max_iter).fit(features, labels)
        out = self.model_.transduction_
        self.num_classes_ = C
        self.n_parameters_ = 0
        self.predictions_ = out[len(features) - len(X_test):].astype(np.int64)
        self.val_accuracy_ = None if X_val is None else \
            float((out[len(X):len(X) + len(X_val)] == y_val.numpy()).mean())
        self.test_accuracy_ = None if y_test is None else self.score(y_test)
        return self


# ============================================ kNN classifier ==========================================


class KNNClassifier:
    """kNN by cosine similarity, the one kNN of the project: the embeddings chapter's probe and the
    training dynamics' accuracy. ``weights="uniform"``: majority vote of the k nearest (the standard
    probe); ``weights="similarity"``: each neighbour votes exp(s / T) (InstDisc, solo-learn's weighted
    kNN, T = 0.07). A tie goes to the smaller class index. Queries are handled in blocks of
    ``block_size`` rows, so no n_test x n_train matrix is built. Features are L2-normalised here."""

    def __init__(self, k=10, weights="uniform", temperature=0.07, block_size=1024):
        self.k = k
        self.weights = weights
        self.temperature = temperature
        self.block_size = block_size

    def fit(self, X, y, X_val=None, y_val=None, X_test=None, y_test=None) -> "KNNClassifier":
        """Keep ``X, y`` as the memory bank. Nothing is trained; a validation or test split, when given, is
        scored once (``val_accuracy_``, ``test_accuracy_``; None without it), as the other heads do."""
        checks.positive_int(self.k, "k")
        checks.positive_number(self.temperature, "temperature")
        checks.positive_int(self.block_size, "block_size")
        checks.one_of("uniform", "similarity").require(self.weights, "weights")
        X = checks.features(X, "X", dtype=torch.float32)
        y = checks.labels(y, len(X), "y").to(X.device)
        if self.k > len(X):
            raise ValueError(f"k must be at most the number of training samples ({len(X)}), got {self.k}")
        self.bank_, self.labels_, self.num_classes_ = checks.unit_rows(X, "X"), y, int(y.max()) + 1
        for split, Xs, ys in (("val", X_val, y_val), ("test", X_test, y_test)):
            if (Xs is None) != (ys is None):
                raise ValueError(f"X_{split} and y_{split} must be given together")
            setattr(self, f"{split}_accuracy_", None if Xs is None else self.score(Xs, ys))
        return self

    def predict(self, X) -> np.ndarray:
        Q = checks.unit_rows(checks.features(X, "X", dim=self.bank_.shape[1], dtype=torch.float32), "X")
        Q = Q.to(self.bank_.device)
        out = []
        for start in range(0, len(Q), self.block_size):
            top, idx = top_neighbours(Q[start:start + self.block_size] @ self.bank_.T, self.k)
            if self.weights == "similarity":  # minus the row max: same argmax, no overflow at small T
                w = ((top - top[:, :1]) / self.temperature).exp()
            else:
                w = torch.ones_like(top)
            votes = torch.zeros(len(top), self.num_classes_, device=top.device).scatter_add_(1, self.labels_[idx], w)
            out.append(votes.argmax(dim=1))  # first maximum: the smaller class wins a tie
        return torch.cat(out).cpu().numpy()

    def score(self, X, y) -> float:
        pred = self.predict(X)
        return float((pred == checks.labels(y, len(pred), "y").numpy()).mean())


def knn_probe(train, train_labels, test, test_labels, ks) -> dict[int, float]:
    """The kNN probe's test accuracy (uniform votes) at each k of ``ks``, keyed by the k actually used: a k
    above the number of training points is capped at it (a subset smaller than a profile's k), and a k that
    two requested values come to is scored once. The one place the probe's k is chosen."""
    n = len(train)
    return {k: KNNClassifier(k=k).fit(train, train_labels).score(test, test_labels)
            for k in dict.fromkeys(min(int(k), n) for k in ks)}
