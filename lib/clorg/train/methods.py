"""Training methods: an encoder, the heads a method adds to it, and its loss.

Each loss is a small function of tensors; each method is an ``nn.Module`` whose ``forward(views,
labels)`` returns the loss of one batch, so a DDP wrapper around it synchronises everything.
The encoder analysed later is always ``method.encoder`` (its 512-d output, before any head).

- ``moco_queue``: the authors' method (SPEC section 3): momentum key encoder (m = 0.99), predictor on
  the query side, one FIFO queue of past keys per view, loss l(q1, K2) + l(q2, K1), tau = 0.2.
- ``simclr``: NT-Xent with a projector, the baseline most readers compare against.
- ``supervised``: cross-entropy with label smoothing on a linear classifier.
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

from ..core.config import METHODS
from .distributed import gather_no_grad, gather_with_grad, rank_and_world


# --- losses ----------------------------------------------------------------------------------------

def queue_contrastive_loss(q: torch.Tensor, k_now: torch.Tensor, k_past: torch.Tensor, temperature: float,
                           offset: int = 0) -> torch.Tensor:
    """The authors' l(q, K) = 2 tau * CE(q K^T / tau, arange), K = [current keys; queued keys].

    ``q`` (B, D) are this rank's normalised queries; ``k_now`` (B_global, D) the current keys of all
    ranks, so query i's positive is key ``offset + i``; ``k_past`` (M, D) the queued keys (M may be 0).
    Logits are taken in float32 whatever the autocast dtype: a small tau amplifies rounding.
    """
    q = q.float()
    logits = torch.cat([q @ k_now.float().T, q @ k_past.float().T], dim=1) / temperature
    target = torch.arange(q.shape[0], device=q.device) + offset
    return 2 * temperature * F.cross_entropy(logits, target)


def nt_xent_loss(z1: torch.Tensor, z2: torch.Tensor, z1_all: torch.Tensor, z2_all: torch.Tensor,
                 temperature: float, offset: int = 0) -> torch.Tensor:
    """SimCLR's NT-Xent: each view's positive is the other view of the same image, every other view in
    the global batch is a negative. ``z*`` are this rank's normalised embeddings (B, D), ``z*_all`` those
    of all ranks (B_global, D) in which this rank's rows start at ``offset``."""
    b, n = z1.shape[0], z1_all.shape[0]
    anchors = torch.cat([z1, z2]).float()
    keys = torch.cat([z1_all, z2_all]).float()
    logits = anchors @ keys.T / temperature
    own = torch.arange(b, device=z1.device) + offset
    rows = torch.arange(2 * b, device=z1.device)
    self_cols = torch.cat([own, own + n])
    logits[rows, self_cols] = float("-inf")  # an embedding is not its own negative
    positive = torch.cat([own + n, own])
    return F.cross_entropy(logits, positive)


# --- heads -----------------------------------------------------------------------------------------

def predictor_mlp(dim: int = 512) -> nn.Sequential:
    """The authors' predictor: 3 x (BN, SELU, Linear), the first two without bias, then an affine-free BN."""
    return nn.Sequential(
        nn.BatchNorm1d(dim), nn.SELU(), nn.Linear(dim, dim, bias=False),
        nn.BatchNorm1d(dim), nn.SELU(), nn.Linear(dim, dim, bias=False),
        nn.BatchNorm1d(dim), nn.SELU(), nn.Linear(dim, dim),
        nn.BatchNorm1d(dim, affine=False),
    )


def projector_mlp(dim: int = 512, out_dim: int = 128) -> nn.Sequential:
    """SimCLR's projection head (Linear-BN-ReLU-Linear)."""
    return nn.Sequential(nn.Linear(dim, dim, bias=False), nn.BatchNorm1d(dim), nn.ReLU(), nn.Linear(dim, out_dim))


# --- methods ---------------------------------------------------------------------------------------

class MocoQueue(nn.Module):
    """The authors' MoCo-v3-like method with a queue of ceil(queue_size / global batch) key batches."""

    augmentation = "contrastive"

    def __init__(self, encoder: nn.Module, *, global_batch: int, queue_size: int = 128000,
                 momentum: float = 0.99, temperature: float = 0.2, dim: int = 512):
        super().__init__()
        self.encoder = encoder
        self.predictor = predictor_mlp(dim)
        self.momentum_encoder = copy.deepcopy(encoder)
        for p in self.momentum_encoder.parameters():
            p.requires_grad_(False)
        self.momentum, self.temperature = momentum, temperature
        # the current batch is the first of the ceil(queue_size / B) batches, so B * (that - 1) past keys
        past = global_batch * (math.ceil(queue_size / global_batch) - 1)
        self.register_buffer("queue1", torch.zeros(past, dim))
        self.register_buffer("queue2", torch.zeros(past, dim))
        self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))
        self.register_buffer("queue_filled", torch.zeros((), dtype=torch.long))
        # the fill count, also kept in Python: reading the buffer every step would wait for the GPU
        self._filled: int | None = None

    @torch.no_grad()
    def _update_momentum_encoder(self):
        # two fused operations over all ~60 tensors, not two kernel launches per tensor
        pm = list(self.momentum_encoder.parameters())
        torch._foreach_mul_(pm, self.momentum)
        torch._foreach_add_(pm, [p.detach() for p in self.encoder.parameters()], alpha=1 - self.momentum)

    def filled(self) -> int:
        """How many queued keys the loss uses (read from the buffer once, after a resume, then counted)."""
        if self._filled is None:
            self._filled = int(self.queue_filled)
        return self._filled

    def _load_from_state_dict(self, *args, **kwargs):
        super()._load_from_state_dict(*args, **kwargs)
        self._filled = None  # a loaded queue: count from its buffer again

    @torch.no_grad()
    def _enqueue(self, k1: torch.Tensor, k2: torch.Tensor):
        capacity = self.queue1.shape[0]
        if capacity == 0:
            return
        # a ring buffer: only which keys are present matters to the loss, not their order
        idx = (self.queue_ptr + torch.arange(k1.shape[0], device=k1.device)) % capacity
        self.queue1[idx] = k1.to(self.queue1.dtype)
        self.queue2[idx] = k2.to(self.queue2.dtype)
        self.queue_ptr.copy_((self.queue_ptr + k1.shape[0]) % capacity)
        self._filled = min(self.filled() + k1.shape[0], capacity)
        self.queue_filled.fill_(self._filled)

    def forward(self, views, labels=None):
        x1, x2 = views
        rank, _ = rank_and_world()
        with torch.no_grad():
            self._update_momentum_encoder()  # before the keys, as the authors do
            k1 = gather_no_grad(F.normalize(self.momentum_encoder(x1).float(), dim=1))
            k2 = gather_no_grad(F.normalize(self.momentum_encoder(x2).float(), dim=1))
        q1 = F.normalize(self.predictor(self.encoder(x1)).float(), dim=1)
        q2 = F.normalize(self.predictor(self.encoder(x2)).float(), dim=1)
        filled = self.filled()
        # copies: autograd keeps the keys for the backward pass, and _enqueue overwrites the queue in place
        past1, past2 = self.queue1[:filled].clone(), self.queue2[:filled].clone()
        offset = rank * q1.shape[0]
        loss = (queue_contrastive_loss(q1, k2, past2, self.temperature, offset)
                + queue_contrastive_loss(q2, k1, past1, self.temperature, offset))
        self._enqueue(k1, k2)
        return loss


class SimCLR(nn.Module):
    augmentation = "contrastive"

    def __init__(self, encoder: nn.Module, *, temperature: float = 0.5, dim: int = 512):
        super().__init__()
        self.encoder = encoder
        self.projector = projector_mlp(dim)
        self.temperature = temperature

    def forward(self, views, labels=None):
        x1, x2 = views
        z1 = F.normalize(self.projector(self.encoder(x1)).float(), dim=1)
        z2 = F.normalize(self.projector(self.encoder(x2)).float(), dim=1)
        rank, _ = rank_and_world()
        return nt_xent_loss(z1, z2, gather_with_grad(z1), gather_with_grad(z2), self.temperature,
                            offset=rank * z1.shape[0])


class Supervised(nn.Module):
    augmentation = "supervised"

    def __init__(self, encoder: nn.Module, *, num_classes: int, label_smoothing: float = 0.1, dim: int = 512):
        super().__init__()
        self.encoder = encoder
        self.classifier = nn.Linear(dim, num_classes)
        self.label_smoothing = label_smoothing

    def forward(self, views, labels):
        (x,) = views
        logits = self.classifier(self.encoder(x)).float()
        return F.cross_entropy(logits, labels, label_smoothing=self.label_smoothing)


def build_method(run: dict, encoder: nn.Module) -> nn.Module:
    """The method of a resolved run configuration (:func:`clorg.train.runs.resolve`) around ``encoder``."""
    name = run["method"]
    if name == "moco_queue":
        return MocoQueue(encoder, global_batch=run["batch_size"], queue_size=run["moco_queue_size"],
                         momentum=run["moco_momentum"], temperature=run["moco_temperature"])
    if name == "simclr":
        return SimCLR(encoder, temperature=run["simclr_temperature"])
    if name == "supervised":
        return Supervised(encoder, num_classes=run["num_classes"], label_smoothing=run["label_smoothing"])
    raise ValueError(f"unknown method {name!r}; valid methods: {list(METHODS)}")
