"""Could the contrastive task ever see two near-duplicate images as one? A Monte-Carlo test of the
augmentation on a pair of images (the authors' ``MC.ipynb``, SPEC section 9).

Contrastive training asks an encoder to tell an image's augmented view from every other image's. If two
images of different classes sit at cosine 0.998 under a contrastive encoder, one explanation is that their
random views can coincide, so the task itself never separates them. Each draw here renders one view of
each image with the paper's augmentation (the first view's recipe: crop, flip, colour jitter, grayscale,
blur) and counts

- the draws whose two views are **pixel-identical**, and
- the draws whose two views are **closer** (Euclidean distance of the [0, 1] pixels) than the two original
  images are to each other: how often augmentation brings them nearer than they start.

Draws are batched on the device the images are on, one generator, seeded: the same call gives the same
counts. With ``shared_draws`` both images get the same drawn parameters (a check: an image against
itself then gives identical views in every draw).
"""

from __future__ import annotations

import numpy as np
import torch
from tqdm.auto import tqdm

from ..core import checks
from ..train.augment import CONTRASTIVE_VIEW1, ViewRecipe, apply_view_params, sample_view_params
from ..train.views import to_float


def _image(x, name: str, device) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(x)) if not isinstance(x, torch.Tensor) else x
    if t.dtype != torch.uint8 or t.ndim != 3:
        raise ValueError(f"{name} must be one uint8 image (H, W, C), got dtype {t.dtype} and shape {tuple(t.shape)}")
    return t.to(device)


def identical_views(image_a, image_b, draws: int, *, recipe: ViewRecipe = CONTRASTIVE_VIEW1, batch: int = 512,
                    seed: int = 0, device=None, shared_draws: bool = False, progress: bool | None = None) -> dict:
    """Counts over ``draws`` random views of ``image_a`` and ``image_b`` (uint8 H x W x C): ``identical``
    (pixel-identical views) and ``closer`` (views nearer to each other than the two images), with
    ``own_distance`` (the images' own distance) and what was drawn."""
    draws, batch = checks.positive_int(draws, "draws"), checks.positive_int(batch, "batch")
    device = torch.device(device) if device is not None else torch.device("cpu")
    a, b = _image(image_a, "image_a", device), _image(image_b, "image_b", device)
    if a.shape != b.shape:
        raise ValueError(f"the two images differ in shape: {tuple(a.shape)} and {tuple(b.shape)}")
    H, W, _ = a.shape
    fa, fb = to_float(a[None]), to_float(b[None])  # (1, C, H, W) in [0, 1]
    own = float((fa - fb).flatten().norm())
    gen = torch.Generator(device=device).manual_seed(seed)
    identical = closer = 0
    bar = tqdm(total=draws, desc="augmentation draws", unit="draw", disable=progress is False)
    for start in range(0, draws, batch):
        n = min(batch, draws - start)
        pa = sample_view_params(recipe, n, H, W, generator=gen, device=device)
        pb = pa if shared_draws else sample_view_params(recipe, n, H, W, generator=gen, device=device)
        va, vb = apply_view_params(fa.expand(n, -1, -1, -1), pa), apply_view_params(fb.expand(n, -1, -1, -1), pb)
        identical += int((va == vb).flatten(1).all(dim=1).sum())
        closer += int(((va - vb).flatten(1).norm(dim=1) < own).sum())
        bar.update(n)
    bar.close()
    return {"draws": draws, "identical": identical, "closer": closer, "own_distance": own, "seed": seed,
            "shared_draws": shared_draws, "recipe": "the first contrastive view (crop, flip, jitter, grayscale, blur)"}
