"""The deterministic view of an image and the normalisation every view ends with: what the encoding of
features and the training augmentations (clorg.train.augment) share. Kept apart from the augmentations so
that the analysis, which encodes with this view only, does not depend on the training recipes' code.

- Input: a uint8 batch in the datasets' layout (B, H, W, C), C = 1 or 3; :func:`to_float` makes it float32
  (B, C, H, W) in [0, 1].
- :func:`normalize`: the ImageNet mean/std for 3 channels, their channel averages (0.449, 0.226) for 1.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..core import checks

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# One-channel images: the average of the three ImageNet channels, so grey inputs are scaled alike.
GRAY_MEAN = (0.449,)
GRAY_STD = (0.226,)


def to_float(x: Tensor) -> Tensor:
    """uint8 (B, H, W, C) -> contiguous float32 (B, C, H, W) in [0, 1]."""
    checks.uint8_images(x)
    return x.permute(0, 3, 1, 2).float().div_(255).contiguous()


def normalize(x: Tensor, out: Tensor | None = None) -> Tensor:
    """Float (B, C, H, W) in [0, 1] -> ImageNet-normalised (channel-averaged stats for C = 1),
    written into `out` when given."""
    checks.float_images(x)
    mean, std = (IMAGENET_MEAN, IMAGENET_STD) if x.shape[1] == 3 else (GRAY_MEAN, GRAY_STD)
    mean = torch.tensor(mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    std = torch.tensor(std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    return torch.div(x - mean, std, out=out)


def eval_view(x_uint8: Tensor) -> Tensor:
    """Deterministic view for feature extraction: uint8 (B, H, W, C) -> normalised float (B, C, H, W)."""
    return normalize(to_float(x_uint8))
