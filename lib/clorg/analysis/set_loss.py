"""The contrastive loss on the whole training set at once (the authors' ``Losseval``, SPEC section 9).

The training loss of a run is an average over batches of a few hundred images, against a queue of
recent keys. The authors also measured each saved encoder on the whole training set at once: two
augmented views of every image (the training augmentation, one draw each), the encoder's outputs q
(first views) and k (second views), and

    L = c(q, k) + c(k, q),   c(q, k) = 2T · mean_i CE(softmax_j(q̂_i · k̂_j / T), i),  T = 0.2,

where q̂, k̂ are the L2-normalised outputs: every other image of the training set is a negative. It
falls as the views of an image become recognisable among all images, so it follows the contrastive task
itself along the run, beside CH and RLD. Encoder only (no projector, predictor or queue), fp32, in
evaluation mode, as theirs.

Ours draws the views with the same seed at every snapshot, so that the loss of two snapshots differs
by the encoder, not by the draw. Rows of the n x n logits are formed in blocks: memory O(block x n).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..core import paper
from ..train.augment import contrastive_views


def view_outputs(encoder: torch.nn.Module, images, seed: int, device, batch_size: int = 512
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """The encoder's float32 outputs (n, D) of the two training views of every uint8 image (N, H, W, C),
    drawn by one generator seeded with ``seed`` on ``device``, in evaluation mode."""
    device = torch.device(device)
    gen = torch.Generator(device=device).manual_seed(seed)
    was_training = encoder.training
    encoder.eval()
    q, k = [], []
    try:
        with torch.no_grad():
            for start in range(0, len(images), batch_size):
                batch = torch.as_tensor(np.asarray(images[start:start + batch_size])).to(device)
                v1, v2 = contrastive_views(batch, gen)
                q.append(encoder(v1).float())
                k.append(encoder(v2).float())
    finally:
        encoder.train(was_training)
    return torch.cat(q), torch.cat(k)


def one_way(q: torch.Tensor, k: torch.Tensor, temperature: float, block: int = 2048) -> float:
    """c(q, k): 2T times the mean cross-entropy of each q̂_i against all k̂_j, the positive being k̂_i."""
    if q.shape != k.shape or q.ndim != 2 or len(q) < 2:
        raise ValueError(f"q and k must be two (n, D) arrays of the same shape with n >= 2, got {tuple(q.shape)} "
                         f"and {tuple(k.shape)}")
    qn, kn = F.normalize(q.float(), dim=1), F.normalize(k.float(), dim=1)
    total = 0.0
    for start in range(0, len(qn), block):
        rows = qn[start:start + block]
        logits = rows @ kn.T / temperature
        positive = (rows * kn[start:start + block]).sum(1) / temperature
        total += float((torch.logsumexp(logits, dim=1) - positive).sum())
    loss = 2 * temperature * total / len(qn)
    if not np.isfinite(loss):
        raise ValueError("the whole-set loss is not finite: the encoder's outputs hold NaN or infinite values")
    return loss


def whole_set_loss(q: torch.Tensor, k: torch.Tensor, temperature: float = paper.SET_LOSS_TEMPERATURE) -> float:
    """The authors' symmetric loss c(q, k) + c(k, q) over all n images (module docstring)."""
    return one_way(q, k, temperature) + one_way(k, q, temperature)
