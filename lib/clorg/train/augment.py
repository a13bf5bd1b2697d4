"""Augmentations as batched tensor operations, on whatever device holds the images.

    >>> g = torch.Generator(device=images.device).manual_seed(0)
    >>> v1, v2 = contrastive_views(images[idx], g)          # uint8 (B,H,W,C) -> 2 x float (B,C,H,W)
    >>> x = supervised_view(images[idx], g); e = eval_view(images[idx])

Conventions
- **Input** of the recipes (`contrastive_views`, `supervised_view`, `augment_view`, `eval_view`) is a
  uint8 batch in the layout the datasets store, **(B, H, W, C)**, C = 1 or 3. It is converted once per
  batch (`to_float`) to float32 **(B, C, H, W) in [0, 1]**; every single operation below
  (`random_resized_crop`, `color_jitter`, ...) takes and returns that float layout.
- **Output** of the recipes is float32 (B, C, size, size) normalised with the ImageNet mean/std for
  3 channels, and with their channel averages (mean 0.449, std 0.226) for 1 channel.
- **Randomness** comes only from the `generator` argument (a `torch.Generator` on the images' device),
  and each operation draws a fixed number of values per sample whatever the data, so a run is
  reproducible and resumable from the generator's state.
- **No per-image Python**: per-sample parameters are tensors; an operation applied "with
  probability p" is computed for the whole batch and selected per sample, which keeps shapes
  static (no host sync on CUDA) and costs little at CIFAR sizes. The recipes draw all parameters
  for the batch first, then render it in chunks (`default_chunk_size`: the whole batch on a GPU,
  ~128 CIFAR images on a CPU, where a cache-sized working set is 2-3x faster); the result does
  not depend on the chunk size.
- **CPU speed notes** (measured with this torch build): `torch.where` and anything else that reads
  a full-size bool tensor is 5-20x slower than float arithmetic, and `aminmax`/`argmax` along the
  channels are slower still. So per-sample choices use `torch.lerp` with a 0/1 weight (exact at
  0 and 1), pixel-wise tests use `sign` (e.g. `1 + sign(x - t)` clamped), never bool images.

Fidelity to the authors' NVIDIA DALI pipeline (``imageComponent/load.py``; SPEC sections 3 and 8)
- Order per view, as theirs: random crop + resize, colour twist, grayscale, flip, blur, solarize (view 2);
  the flip is folded into the crop's resampling here, exact because every later operation commutes with it.
- Colour is DALI's ``color_twist``: one affine map per image, ``out = b (g + c (M x - g))`` with
  ``M = YIQ->RGB . hue rotation . saturation scale . RGB->YIQ``. Saturation scales the I and Q channels
  of YIQ, the hue rotates the I-Q plane (degrees: +-36 = 0.1 turn), contrast pivots on the fixed grey
  g = 128/255 (DALI's ``half_range`` of 128 for the uint8 images the authors twist; 0.5 only for float
  input; not the image's mean as in torchvision) and brightness multiplies everything, pivot included.
  Each of the four draws its own coin (p = 0.8), as theirs; clamping happens once, at the end.
- Grayscale is DALI's saturation 0: the luma Y = .299 R + .587 G + .114 B, repeated over the channels.
- Gaussian blur uses DALI's window for each image's sigma: 2 ceil(3 sigma) + 1 taps (3 at sigma 0.1, 13
  at sigma 2.0), reflect-101 borders. All images of a batch share the widest window of the recipe's sigma
  range; taps outside an image's own window are zero, so each image gets exactly its DALI kernel while
  the batch keeps one static shape.
- Solarize inverts pixels strictly above 128/255, as their hand-written DALI arithmetic does.

Remaining differences, each small:
- DALI works on uint8 and rounds after every operator (crop, colour, blur); here the image stays float
  in [0, 1] until normalisation. The rounding moves a pixel by at most half a grey level per operator.
- DALI's crop draws the aspect ratio log-uniformly and falls back to the whole image after 10 tries;
  the boxes here follow torchvision's RandomResizedCrop (also log-uniform, 10 tries), whose fallback is
  a centre crop trimmed to the nearest allowed aspect: for square CIFAR images the two fallbacks agree,
  and the fallback is drawn in fewer than 1 of 10^4 crops at area 0.2-1.
- DALI resizes with antialiasing; at CIFAR sizes a crop is always upsampled, where antialiasing does
  nothing.
- Their YIQ->RGB matrix is the inverse of RGB->YIQ computed by DALI; older DALI versions hard-coded a
  rounded inverse (differences below 1e-3 of the range).

Measured (`python bench/augment.py`, 2-core AMD EPYC VM shared with other jobs, 4096 CIFAR-shaped
images, batch 512, median of 3 passes): the two-view recipe at 8,400 images/s on 1 thread, against
796 (torchvision v1/PIL) and 848 (v2 tensor) images/s per image in a DataLoader with 2 workers,
10.5x; the same per-op outputs as torchvision's functions to ~1e-6 (tests/test_augment.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from ..core import checks
from .views import GRAY_MEAN, GRAY_STD, IMAGENET_MEAN, IMAGENET_STD, eval_view, normalize, to_float

__all__ = [
    "IMAGENET_MEAN", "IMAGENET_STD", "GRAY_MEAN", "GRAY_STD",
    "ViewRecipe", "ViewParams", "CropBoxes", "JitterParams",
    "CONTRASTIVE_VIEW1", "CONTRASTIVE_VIEW2", "SUPERVISED_VIEW",
    "to_float", "normalize", "blur_radius",
    "sample_mask", "sample_crop_boxes", "resized_crop", "random_resized_crop",
    "flip_where", "horizontal_flip",
    "sample_jitter_params", "apply_color_jitter", "color_jitter",
    "rgb_to_grayscale", "grayscale_where", "random_grayscale",
    "gaussian_kernels", "blur_with_sigma", "gaussian_blur",
    "solarize_where", "solarize",
    "sample_view_params", "apply_view_params", "default_chunk_size",
    "augment", "augment_views", "augment_view", "contrastive_views", "supervised_view", "eval_view",
]

# ================================================================================================
# Constants
# ================================================================================================

# DALI's color_twist pivots contrast on half_range = 128 for integer input (color_twist.h), on the 0-255
# scale of the authors' uint8 images: 128/255 on ours
CONTRAST_PIVOT = 128 / 255
# DALI's RGB -> YIQ matrix (color_twist.h); row 0 is the luma its saturation-0 grayscale keeps.
_RGB_TO_YIQ = ((0.299, 0.587, 0.114), (0.596, -0.274, -0.321), (0.211, -0.523, 0.311))
_LUMA = _RGB_TO_YIQ[0]


# ================================================================================================
# Recipe
# ================================================================================================

# a range (lo, hi) of a positive quantity drawn uniformly: crop scale and ratio, blur sigma
_POSITIVE_RANGE = checks.pair(0.0, low_open=True)


@dataclass(frozen=True)
class ViewRecipe:
    """What one augmented view does; the defaults are the paper's shared contrastive settings.

    Set a probability to 0 to switch an operation off; `crop_scale=None` switches the crop off
    (the whole image is resized to `size`). Lists (as YAML gives them) are turned into tuples.
    """

    crop_scale: tuple[float, float] | None = (0.2, 1.0)
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip_p: float = 0.5
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.2
    hue: float = 0.1                    # in turns: 0.1 = the authors' +-36 degrees
    jitter_p: float = 0.8               # each of the four colour parameters, independently (own coin)
    grayscale_p: float = 0.2
    blur_p: float = 0.0
    blur_sigma: tuple[float, float] = (0.1, 2.0)  # window: DALI's 2 ceil(3 sigma) + 1 taps per image
    solarize_p: float = 0.0
    solarize_threshold: float = 128 / 255

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, list):
                object.__setattr__(self, f.name, tuple(value))
        for name in ("flip_p", "jitter_p", "grayscale_p", "blur_p", "solarize_p"):
            checks.PROBABILITY.require(getattr(self, name), name)
        if self.crop_scale is not None:
            _POSITIVE_RANGE.require(self.crop_scale, "crop_scale")
        _POSITIVE_RANGE.require(self.crop_ratio, "crop_ratio")
        _POSITIVE_RANGE.require(self.blur_sigma, "blur_sigma")
        for name in ("brightness", "contrast", "saturation"):
            checks.NON_NEGATIVE_NUMBER.require(getattr(self, name), name)
        checks.within(0.0, 0.5).require(self.hue, "hue")  # in turns: half a turn is every hue
        checks.within(0.0, 1.0).require(self.solarize_threshold, "solarize_threshold")


# The paper's asymmetric pair (MoCo v3 / BYOL): blur always on view 1; blur 0.1 + solarize 0.2 on view 2.
CONTRASTIVE_VIEW1 = ViewRecipe(blur_p=1.0)
CONTRASTIVE_VIEW2 = ViewRecipe(blur_p=0.1, solarize_p=0.2)
# Supervised baseline: RandomResizedCrop(0.2-1) + flip only.
SUPERVISED_VIEW = ViewRecipe(jitter_p=0.0, grayscale_p=0.0)


# ================================================================================================
# Layout, normalisation, random helpers
# ================================================================================================

# an output size: one side for a square, or (height, width)
_SIZE = checks.Rule("a positive integer or (height, width)", lambda v: checks.POSITIVE_INT(v) is None or (
    isinstance(v, (tuple, list)) and len(v) == 2 and all(checks.POSITIVE_INT(s) is None for s in v)))


def _size2(size: int | tuple[int, int]) -> tuple[int, int]:
    _SIZE.require(size, "size")
    return (size, size) if checks.POSITIVE_INT(size) is None else tuple(size)


def _rand(shape, generator: torch.Generator, device: torch.device) -> Tensor:
    return torch.rand(shape, generator=generator, device=device)


def _uniform(shape, lo: float, hi: float, generator, device) -> Tensor:
    return lo + (hi - lo) * _rand(shape, generator, device)


def sample_mask(batch: int, p: float, generator: torch.Generator, device) -> Tensor:
    """(B,) bool, each True with probability p (always draws B numbers, so the stream is data-independent)."""
    checks.PROBABILITY.require(p, "p")
    return _rand(batch, generator, device) < p


def _per_sample(v: Tensor) -> Tensor:
    """(B,) -> (B, 1, 1, 1), to broadcast a per-sample value over an image batch."""
    return v.view(-1, 1, 1, 1)


def _select(mask: Tensor, new: Tensor, old: Tensor) -> Tensor:
    """`new` for the samples where the (B,) bool `mask` is True, `old` elsewhere.

    lerp with a 0/1 weight returns either end exactly, and on CPU it is several times faster than
    torch.where with a broadcast bool mask.
    """
    return torch.lerp(old, new, _per_sample(mask.to(old.dtype)))


def _step(x: Tensor) -> Tensor:
    """1.0 where x >= 0, else 0.0 (float). Built from sign: exact, and no slow bool image on CPU."""
    return torch.sign(x).add_(1.0).clamp_(max=1.0)


# ================================================================================================
# RandomResizedCrop (+ horizontal flip, folded into the same resampling)
# ================================================================================================

class CropBoxes(NamedTuple):
    """Integer pixel boxes, as (B,) float32 tensors: rows top..top+height, columns left..left+width."""

    top: Tensor
    left: Tensor
    height: Tensor
    width: Tensor


def sample_crop_boxes(batch: int, height: int, width: int, scale=(0.2, 1.0), ratio=(3 / 4, 4 / 3), *,
                      generator: torch.Generator, device=None, tries: int = 10) -> CropBoxes:
    """Boxes distributed like torchvision's RandomResizedCrop.get_params, for a whole batch at once.

    Each sample gets `tries` candidates (area fraction ~ U(scale), log aspect ~ U(log ratio), sides
    rounded to pixels); the first candidate that fits the image wins, and samples with none fall
    back to torchvision's centre crop (the whole image, trimmed to the nearest allowed aspect).
    """
    _POSITIVE_RANGE.require(scale, "scale")
    _POSITIVE_RANGE.require(ratio, "ratio")
    device = torch.device(device) if device is not None else torch.device(generator.device)
    area = float(height * width)
    frac = _uniform((batch, tries), scale[0], scale[1], generator, device)
    aspect = torch.exp(_uniform((batch, tries), math.log(ratio[0]), math.log(ratio[1]), generator, device))
    w = torch.round(torch.sqrt(area * frac * aspect))
    h = torch.round(torch.sqrt(area * frac / aspect))
    fits = (w > 0) & (w <= width) & (h > 0) & (h <= height)
    first = fits.int().argmax(dim=1, keepdim=True)  # index of the first fitting try (0 when none fits)
    w, h = w.gather(1, first).squeeze(1), h.gather(1, first).squeeze(1)

    fallback_h, fallback_w = _centre_crop_size(height, width, ratio)
    any_fit = fits.any(dim=1)
    h = torch.where(any_fit, h, torch.full_like(h, fallback_h))
    w = torch.where(any_fit, w, torch.full_like(w, fallback_w))

    # Offsets uniform over the valid integer positions, like torch.randint(0, H - h + 1);
    # drawn for every sample (fallbacks included) to keep the random stream data-independent.
    u = _rand((2, batch), generator, device)
    top = torch.minimum(torch.floor(u[0] * (height - h + 1)), height - h)
    left = torch.minimum(torch.floor(u[1] * (width - w + 1)), width - w)
    top = torch.where(any_fit, top, torch.floor((height - h) / 2))
    left = torch.where(any_fit, left, torch.floor((width - w) / 2))
    return CropBoxes(top, left, h, w)


def _centre_crop_size(height: int, width: int, ratio) -> tuple[float, float]:
    """torchvision's fallback box size: the whole image, trimmed to the nearest allowed aspect."""
    in_ratio = width / height
    if in_ratio < min(ratio):
        w = width
        h = int(round(w / min(ratio)))
    elif in_ratio > max(ratio):
        h = height
        w = int(round(h * max(ratio)))
    else:
        w, h = width, height
    return float(h), float(w)


def resized_crop(x: Tensor, boxes: CropBoxes, size, flip: Tensor | None = None) -> Tensor:
    """Crop each image to its box and resize it bilinearly to `size`, mirroring where `flip` is True.

    Equals torchvision's `resized_crop` (crop, then the half-pixel bilinear
    `interpolate(align_corners=False)`, no antialias) to float rounding, for the whole batch in one
    `grid_sample` call; a full box at the input size is the identity (< 1e-5).
    """
    checks.float_images(x)
    out_h, out_w = _size2(size)
    B, C, H, W = x.shape
    gx = _sample_coords(boxes.left, boxes.width, W, out_w, x.dtype)
    gy = _sample_coords(boxes.top, boxes.height, H, out_h, x.dtype)
    if flip is not None:
        gx = torch.where(flip.unsqueeze(1), gx.flip(1), gx)  # mirror the sampling positions
    # The affine map is axis-aligned, so the grid is the outer product of its x and y coordinates:
    # cheaper than affine_grid's per-pixel matrix product.
    grid = torch.stack(torch.broadcast_tensors(gx[:, None, :], gy[:, :, None]), dim=-1)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _sample_coords(start: Tensor, length: Tensor, n_in: int, n_out: int, dtype) -> Tensor:
    """(B, n_out) normalised (grid_sample, align_corners=False) input coordinates of the output
    pixel centres of a resize of [start, start + length) to n_out pixels."""
    centres = (torch.arange(n_out, dtype=dtype, device=start.device) + 0.5) / n_out  # in (0, 1)
    pix = start.unsqueeze(1).to(dtype) + centres * length.unsqueeze(1).to(dtype) - 0.5  # input pixel units
    # torchvision crops *then* resizes, so samples within half a pixel of the box edge see only the
    # box's edge pixel, not its outside neighbour: clamp to the box's first and last pixel.
    pix = torch.minimum(torch.maximum(pix, start.unsqueeze(1)), (start + length - 1).unsqueeze(1))
    return (2 * pix + 1) / n_in - 1


def random_resized_crop(x: Tensor, size, scale=(0.2, 1.0), ratio=(3 / 4, 4 / 3), *,
                        generator: torch.Generator) -> Tensor:
    """torchvision's RandomResizedCrop, per sample, batched: float (B,C,H,W) -> (B,C,*size)."""
    checks.float_images(x)
    checks.generator_on(generator, x.device)
    boxes = sample_crop_boxes(x.shape[0], x.shape[2], x.shape[3], scale, ratio,
                              generator=generator, device=x.device)
    return resized_crop(x, boxes, size)


def flip_where(x: Tensor, mask: Tensor) -> Tensor:
    """Mirror (left-right) the images where mask is True."""
    return _select(mask, x.flip(-1), x)


def horizontal_flip(x: Tensor, p: float = 0.5, *, generator: torch.Generator) -> Tensor:
    """Mirror each image left-right with probability p."""
    checks.float_images(x)
    checks.generator_on(generator, x.device)
    return flip_where(x, sample_mask(x.shape[0], p, generator, x.device))


# ================================================================================================
# Colour jitter
# ================================================================================================

class JitterParams(NamedTuple):
    """Per-sample colour twist: factors (B, 4) and applied (B, 4) bool, columns brightness, contrast,
    saturation (factors) and hue (rotation in turns). Where not applied a factor acts as 1 (hue as 0)."""

    factors: Tensor
    applied: Tensor


def sample_jitter_params(batch: int, brightness=0.4, contrast=0.4, saturation=0.2, hue=0.1,
                         p_each=0.8, *, generator: torch.Generator, device=None) -> JitterParams:
    """The authors' draws: factors 1 + U(-v, v) for brightness, contrast and saturation (at least 0), a
    hue rotation U(-hue, hue) turns, each applied with its own probability p_each."""
    checks.PROBABILITY.require(p_each, "p_each")
    device = torch.device(device) if device is not None else torch.device(generator.device)
    lo = torch.tensor([max(0.0, 1 - brightness), max(0.0, 1 - contrast), max(0.0, 1 - saturation), -hue],
                      device=device)
    hi = torch.tensor([1 + brightness, 1 + contrast, 1 + saturation, hue], device=device)
    factors = lo + (hi - lo) * _rand((batch, 4), generator, device)
    applied = _rand((batch, 4), generator, device) < p_each
    return JitterParams(factors, applied)


def _yiq_matrices(dtype, device) -> tuple[Tensor, Tensor]:
    to_yiq = torch.tensor(_RGB_TO_YIQ, dtype=torch.float64)
    return to_yiq.to(device, dtype), torch.linalg.inv(to_yiq).to(device, dtype)


def colour_twist_maps(params: JitterParams, dtype=torch.float32) -> tuple[Tensor, Tensor]:
    """DALI's color_twist as per-sample affine maps on RGB in [0, 1]: (M (B, 3, 3), offset (B,)) with
    ``out = M x + offset``, M = b c . YIQ->RGB . hue . saturation . RGB->YIQ, offset = b g (1 - c) with g
    the :data:`CONTRAST_PIVOT`."""
    f = torch.where(params.applied, params.factors, torch.tensor([1.0, 1.0, 1.0, 0.0], device=params.factors.device))
    f = f.to(dtype)
    b, c, sat, turns = f.unbind(dim=1)
    to_yiq, to_rgb = _yiq_matrices(dtype, f.device)
    angle = 2 * math.pi * turns
    cos, sin = torch.cos(angle), torch.sin(angle)
    one, zero = torch.ones_like(cos), torch.zeros_like(cos)
    # hue: rotation of the I-Q plane about Y; saturation: scale of I and Q (DALI's hue_mat, sat_mat)
    hue = torch.stack([torch.stack([one, zero, zero], 1), torch.stack([zero, cos, sin], 1),
                       torch.stack([zero, -sin, cos], 1)], 1)
    scale = torch.stack([one, sat, sat], 1)
    M = to_rgb @ (hue * scale[:, None, :]) @ to_yiq
    M = M * (b * c)[:, None, None]
    return M, b * CONTRAST_PIVOT * (1 - c)


def apply_color_jitter(x: Tensor, params: JitterParams) -> Tensor:
    """The colour twist of each sample (see :func:`colour_twist_maps`), clamped to [0, 1] once, at the
    end. One-channel images have no chroma: only contrast and brightness act on them."""
    checks.float_images(x)
    if x.shape[1] == 1:
        f = torch.where(params.applied[:, :2], params.factors[:, :2], 1.0).to(x.dtype)
        b, c = f[:, 0], f[:, 1]
        return (x * _per_sample(b * c) + _per_sample(b * CONTRAST_PIVOT * (1 - c))).clamp_(0, 1)
    M, offset = colour_twist_maps(params, x.dtype)
    out = torch.einsum("bij,bjhw->bihw", M, x)
    return out.add_(_per_sample(offset)).clamp_(0, 1)


def color_jitter(x: Tensor, brightness=0.4, contrast=0.4, saturation=0.2, hue=0.1, p_each=0.8, *,
                 generator: torch.Generator) -> Tensor:
    """The authors' colour twist with random factors, each drawn with probability p_each per sample."""
    checks.float_images(x)
    checks.generator_on(generator, x.device)
    params = sample_jitter_params(x.shape[0], brightness, contrast, saturation, hue, p_each,
                                  generator=generator, device=x.device)
    return apply_color_jitter(x, params)


def rgb_to_grayscale(x: Tensor) -> Tensor:
    """(B, 3, H, W) -> (B, 1, H, W) luma (DALI's Y of YIQ); one-channel input is returned as is."""
    if x.shape[1] == 1:
        return x
    r, g, b = x.unbind(dim=1)
    return (_LUMA[0] * r + _LUMA[1] * g + _LUMA[2] * b).unsqueeze(1)


# ================================================================================================
# Grayscale, blur, solarize
# ================================================================================================

def grayscale_where(x: Tensor, mask: Tensor) -> Tensor:
    """Replace the images where mask is True by their luma, repeated over the channels."""
    if x.shape[1] == 1:
        return x
    return _select(mask, rgb_to_grayscale(x).expand_as(x), x)


def random_grayscale(x: Tensor, p: float = 0.2, *, generator: torch.Generator) -> Tensor:
    """torchvision's RandomGrayscale (channel count kept), per sample."""
    checks.float_images(x)
    checks.generator_on(generator, x.device)
    return grayscale_where(x, sample_mask(x.shape[0], p, generator, x.device))


def blur_radius(sigma: float, height: int, width: int) -> int:
    """DALI's window half-width for ``sigma``, ceil(3 sigma), kept below the image side (reflect padding)."""
    return max(1, min(math.ceil(3 * sigma), min(height, width) - 1))


def gaussian_kernels(sigma: Tensor, radius: int) -> Tensor:
    """(B,) sigmas -> (B, 2 radius + 1) normalised 1-D Gaussian kernels: each image's own DALI window,
    2 ceil(3 sigma) + 1 taps, centred in the batch's common width; taps outside it are 0."""
    offsets = torch.arange(-radius, radius + 1, dtype=sigma.dtype, device=sigma.device)
    own = torch.ceil(3 * sigma).clamp(max=radius).unsqueeze(1)
    pdf = torch.exp(-0.5 * (offsets / sigma.unsqueeze(1)) ** 2) * (offsets.abs() <= own)
    return pdf / pdf.sum(dim=1, keepdim=True)


def blur_with_sigma(x: Tensor, sigma: Tensor, radius: int, applied: Tensor | None = None) -> Tensor:
    """Separable Gaussian blur with one sigma per sample, reflect-101 padding, as a grouped convolution.

    The batch is folded into the channels, (1, B*C, H, W), so a single conv2d with groups = B*C
    applies each sample's own kernel. Samples where `applied` is False get a delta kernel, which
    leaves them exactly unchanged (x*1 + 0*neighbours), so no second buffer is needed.
    """
    checks.float_images(x)
    B, C, H, W = x.shape
    if radius >= min(H, W):
        raise ValueError(f"blur radius {radius} too large for {H}x{W} images (reflect padding)")
    size = 2 * radius + 1
    k = gaussian_kernels(sigma.to(x.dtype), radius)
    if applied is not None:
        delta = torch.zeros(size, dtype=x.dtype, device=x.device)
        delta[radius] = 1.0
        k = torch.where(applied.unsqueeze(1), k, delta)
    k = k.repeat_interleave(C, dim=0)  # one kernel per (sample, channel) group
    y = F.pad(x.reshape(1, B * C, H, W), (radius, radius, radius, radius), mode="reflect")
    y = F.conv2d(y, k.view(B * C, 1, size, 1), groups=B * C)
    y = F.conv2d(y, k.view(B * C, 1, 1, size), groups=B * C)
    return y.view(B, C, H, W)


def gaussian_blur(x: Tensor, sigma_range=(0.1, 2.0), p: float = 1.0, *, generator: torch.Generator) -> Tensor:
    """Blur each image with probability p, sigma ~ U(sigma_range) per sample, DALI's window for each."""
    checks.float_images(x)
    checks.generator_on(generator, x.device)
    _POSITIVE_RANGE.require(sigma_range, "sigma_range")
    sigma = _uniform(x.shape[0], sigma_range[0], sigma_range[1], generator, x.device)
    applied = sample_mask(x.shape[0], p, generator, x.device)
    return blur_with_sigma(x, sigma, blur_radius(sigma_range[1], *x.shape[2:]), applied)


def solarize_where(x: Tensor, mask: Tensor, threshold: float = 128 / 255) -> Tensor:
    """Invert the pixels strictly above threshold (the authors' DALI arithmetic) where mask is True."""
    # A per-sample threshold above 1 for the unselected images: one test for the whole batch.
    t = torch.where(mask, threshold, 2.0).to(x.dtype)
    return torch.lerp(x, 1.0 - x, 1.0 - _step(_per_sample(t) - x))


def solarize(x: Tensor, threshold: float = 128 / 255, p: float = 0.2, *, generator: torch.Generator) -> Tensor:
    """torchvision's RandomSolarize, per sample."""
    checks.float_images(x)
    checks.generator_on(generator, x.device)
    return solarize_where(x, sample_mask(x.shape[0], p, generator, x.device), threshold)


# ================================================================================================
# Recipes
# ================================================================================================

@dataclass
class ViewParams:
    """Everything drawn for one view of a batch, per sample; `params[i:j]` slices the batch."""

    recipe: ViewRecipe
    size: tuple[int, int]          # output (height, width)
    boxes: CropBoxes               # the whole image where the recipe does not crop
    flipped: Tensor                # (B,) bool
    jitter: JitterParams | None    # None where the recipe does no jitter
    grayscale: Tensor              # (B,) bool
    blur_sigma: Tensor             # (B,) float, 0 where the recipe does no blur
    blurred: Tensor                # (B,) bool
    solarized: Tensor              # (B,) bool
    blur_radius: int               # half-width of the batch's common blur window

    def __getitem__(self, index: slice) -> ViewParams:
        jitter = None if self.jitter is None else JitterParams(self.jitter.factors[index], self.jitter.applied[index])
        return replace(self, boxes=CropBoxes(*(v[index] for v in self.boxes)), flipped=self.flipped[index],
                       jitter=jitter, grayscale=self.grayscale[index], blur_sigma=self.blur_sigma[index],
                       blurred=self.blurred[index], solarized=self.solarized[index])


def sample_view_params(recipe: ViewRecipe, batch: int, height: int, width: int, size=None, *,
                       generator: torch.Generator, device=None) -> ViewParams:
    """Draw a recipe's per-sample parameters for a batch of height x width images.

    Operations with probability 0 draw nothing, the others a fixed count per sample, so the
    generator's stream depends only on the recipe and the batch size.
    """
    device = torch.device(device) if device is not None else torch.device(generator.device)
    out_size = _size2(size if size is not None else (height, width))
    no = torch.zeros(batch, dtype=torch.bool, device=device)
    zero = torch.zeros(batch, device=device)

    flipped = sample_mask(batch, recipe.flip_p, generator, device) if recipe.flip_p > 0 else no
    boxes = CropBoxes(zero, zero, zero + height, zero + width)
    if recipe.crop_scale is not None:
        boxes = sample_crop_boxes(batch, height, width, recipe.crop_scale, recipe.crop_ratio,
                                  generator=generator, device=device)
    jitter = None
    if recipe.jitter_p > 0:
        jitter = sample_jitter_params(batch, recipe.brightness, recipe.contrast, recipe.saturation, recipe.hue,
                                      recipe.jitter_p, generator=generator, device=device)
    gray = sample_mask(batch, recipe.grayscale_p, generator, device) if recipe.grayscale_p > 0 else no
    sigma, blurred = zero, no
    if recipe.blur_p > 0:
        sigma = _uniform(batch, recipe.blur_sigma[0], recipe.blur_sigma[1], generator, device)
        blurred = sample_mask(batch, recipe.blur_p, generator, device)
    solarized = sample_mask(batch, recipe.solarize_p, generator, device) if recipe.solarize_p > 0 else no
    radius = blur_radius(recipe.blur_sigma[1], *out_size)
    return ViewParams(recipe, out_size, boxes, flipped, jitter, gray, sigma, blurred, solarized, radius)


def apply_view_params(x: Tensor, params: ViewParams) -> Tensor:
    """Render one view of float (B, C, H, W) in [0, 1]: crop+flip -> jitter -> grayscale -> blur ->
    solarize (MoCo v3's order; the flip, folded into the crop, commutes with the rest). Returns
    float (B, C, *size) in [0, 1], not normalised."""
    checks.float_images(x)
    recipe = params.recipe
    if recipe.crop_scale is not None or recipe.flip_p > 0 or params.size != tuple(x.shape[2:]):
        x = resized_crop(x, params.boxes, params.size, params.flipped if recipe.flip_p > 0 else None)
    if params.jitter is not None:
        x = apply_color_jitter(x, params.jitter)
    if recipe.grayscale_p > 0:
        x = grayscale_where(x, params.grayscale)
    if recipe.blur_p > 0:
        x = blur_with_sigma(x, params.blur_sigma, params.blur_radius, params.blurred)
    if recipe.solarize_p > 0:
        x = solarize_where(x, params.solarized, recipe.solarize_threshold)
    return x


def default_chunk_size(x: Tensor) -> int:
    """Images per chunk: the whole batch on accelerators; on CPU about 1.5 MiB of float32 per
    chunk (128 CIFAR images), so each pass's temporaries stay in cache. Measured on the 2-core
    CPU: 2.5-3x faster than one 512-image pass, for the same result."""
    if x.device.type != "cpu":
        return x.shape[0]
    per_image = 4 * x[0].numel()  # float32 bytes, whatever the input's dtype
    return max(1, (3 << 19) // per_image)


def _render(x: Tensor, params: list[ViewParams], chunk_size: int | None, prepare, finish, *,
            channels: int, dtype: torch.dtype) -> list[Tensor]:
    """Render several views of one batch chunk by chunk: prepare(chunk), apply each view's
    parameters, finish(view, out=slice of that view's output).

    The parameters are drawn for the whole batch beforehand, so the result does not depend on
    the chunk size; chunking only keeps the working set small (see default_chunk_size).
    """
    B = x.shape[0]
    chunk_size = chunk_size or default_chunk_size(x)
    outs = [torch.empty(B, channels, *p.size, dtype=dtype, device=x.device) for p in params]
    for start in range(0, B, chunk_size):
        sl = slice(start, start + chunk_size)
        xc = prepare(x[sl])
        for out, p in zip(outs, params):
            finish(apply_view_params(xc, p[sl]), out=out[sl])
    return outs


def augment(x: Tensor, recipe: ViewRecipe, generator: torch.Generator, size=None, *,
            chunk_size: int | None = None) -> tuple[Tensor, ViewParams]:
    """Apply a recipe to float (B, C, H, W) in [0, 1]; returns the view in [0, 1] (not normalised)
    and the parameters drawn."""
    checks.float_images(x)
    checks.generator_on(generator, x.device)
    params = sample_view_params(recipe, x.shape[0], x.shape[2], x.shape[3], size,
                                generator=generator, device=x.device)
    (view,) = _render(x, [params], chunk_size, prepare=lambda c: c, finish=lambda c, out: out.copy_(c),
                        channels=x.shape[1], dtype=x.dtype)
    return view, params


def augment_views(x_uint8: Tensor, recipes, generator: torch.Generator, size=None, *,
                  chunk_size: int | None = None, return_params: bool = False):
    """Views of a uint8 (B, H, W, C) batch, one per recipe, each normalised float (B, C, *size).

    All parameters are drawn first (recipe by recipe), then each chunk is converted to float once
    and rendered for every recipe. With return_params, returns (views, params) lists.
    """
    checks.uint8_images(x_uint8)
    checks.generator_on(generator, x_uint8.device)
    B, H, W, _ = x_uint8.shape
    params = [sample_view_params(r, B, H, W, size, generator=generator, device=x_uint8.device) for r in recipes]
    views = _render(x_uint8, params, chunk_size, prepare=to_float, finish=normalize,
                    channels=x_uint8.shape[3], dtype=torch.float32)
    return (views, params) if return_params else views


def augment_view(x_uint8: Tensor, recipe: ViewRecipe, generator: torch.Generator, size=None, *,
                 chunk_size: int | None = None, return_params: bool = False):
    """One normalised view of a uint8 (B, H, W, C) batch, made by `recipe`."""
    views, params = augment_views(x_uint8, [recipe], generator, size, chunk_size=chunk_size, return_params=True)
    return (views[0], params[0]) if return_params else views[0]


def contrastive_views(x_uint8: Tensor, generator: torch.Generator, size=None,
                      recipes: tuple[ViewRecipe, ViewRecipe] = (CONTRASTIVE_VIEW1, CONTRASTIVE_VIEW2), *,
                      chunk_size: int | None = None) -> tuple[Tensor, Tensor]:
    """The paper's asymmetric pair of views of a uint8 (B, H, W, C) batch, each normalised
    float (B, C, size, size); size defaults to the input size."""
    return tuple(augment_views(x_uint8, recipes, generator, size, chunk_size=chunk_size))


def supervised_view(x_uint8: Tensor, generator: torch.Generator, size=None,
                    recipe: ViewRecipe = SUPERVISED_VIEW, *, chunk_size: int | None = None) -> Tensor:
    """The supervised baseline's view: RandomResizedCrop(0.2-1) + flip, normalised."""
    return augment_view(x_uint8, recipe, generator, size, chunk_size=chunk_size)
