"""Features for analysis: the encoder's 512-d output (before any projector or predictor), computed with
the deterministic view (no augmentation) and L2-normalised, as the paper analyses them."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .augment import eval_view


@torch.no_grad()
def encode(encoder: nn.Module, images: np.ndarray | torch.Tensor, *, device: str | torch.device = "cpu",
           batch_size: int = 1024) -> torch.Tensor:
    """L2-normalised float32 features (N, D) of uint8 images (N, H, W, C), on ``device``."""
    device = torch.device(device)
    was_training = encoder.training
    encoder.eval()
    try:
        out = []
        for start in range(0, len(images), batch_size):
            batch = torch.as_tensor(images[start:start + batch_size]).to(device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                feats = encoder(eval_view(batch))
            out.append(F.normalize(feats.float(), dim=1))
        return torch.cat(out)
    finally:
        encoder.train(was_training)
