"""The encoding step: images in, L2-normalised encoder outputs out. It lives with training, below the
features stage that runs it for every run of a profile (clorg.features)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..core.progress import bar
from .views import eval_view


@torch.no_grad()
def encode(encoder: nn.Module, images: np.ndarray | torch.Tensor, *, device: str | torch.device = "cpu",
           batch_size: int = 1024, progress: bool | None = None) -> torch.Tensor:
    """L2-normalised float32 features (N, D) of uint8 images (N, H, W, C), on ``device``: the encoder's
    output before any projector or predictor, from the deterministic view (no augmentation), as the
    paper analyses them; fp32 throughout, as the authors extracted them. ``progress``: a bar over the
    images (default: from :data:`clorg.core.progress.FROM_N` of them: CIFAR-10's 60,000 took 21 minutes
    through a full-width ResNet-18 on a 2-core EPYC, 47 images/s)."""
    device = torch.device(device)
    was_training = encoder.training
    encoder.eval()
    try:
        out = []
        with bar(progress, len(images), len(images), "encoding", unit="image") as shown:
            for start in range(0, len(images), batch_size):
                batch = torch.as_tensor(images[start:start + batch_size]).to(device)
                out.append(F.normalize(encoder(eval_view(batch)).float(), dim=1))
                shown.update(len(batch))
        return torch.cat(out)
    finally:
        encoder.train(was_training)
