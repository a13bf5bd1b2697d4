"""Batched augmentations: statistics of each random operation, agreement with torchvision's
per-image functions (crop, flip, blur) and with straightforward references of the authors' NVIDIA
DALI operators (colour twist, grayscale, blur window, solarize), geometry of the crop, determinism,
shapes."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
import torchvision.transforms.v2.functional as TF
from torchvision.transforms import RandomResizedCrop

from clorg.train import augment as A

N = 4000  # samples per statistical check
SIGMAS = 5  # tolerance, in binomial standard deviations


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def assert_share(mask: torch.Tensor, p: float) -> None:
    """The share of True in mask is p, within SIGMAS binomial standard deviations (exact for p 0 or 1)."""
    n = mask.numel()
    share = mask.float().mean().item()
    tol = SIGMAS * math.sqrt(p * (1 - p) / n)
    assert abs(share - p) <= tol, f"share {share:.4f}, expected {p} +- {tol:.4f} (n = {n})"


def uint8_images(n: int, size: int = 8, channels: int = 3, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 256, (n, size, size, channels), dtype=torch.uint8, generator=gen(seed))


def float_images(n: int, size: int = 8, channels: int = 3, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, channels, size, size, generator=gen(seed))


def coordinate_image(n: int, height: int, width: int) -> torch.Tensor:
    """(n, 3, H, W) float: channel 0 = column index, 1 = row index, 2 = 0. Bilinear resampling
    reproduces linear functions exactly, so a resized crop reveals where it sampled."""
    cols = torch.arange(width, dtype=torch.float32).expand(height, width)
    rows = torch.arange(height, dtype=torch.float32).unsqueeze(1).expand(height, width)
    return torch.stack((cols, rows, torch.zeros(height, width))).expand(n, 3, height, width).contiguous()


# ------------------------------------------------------------------------------------------------
# Shapes, layout, normalisation, determinism
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("size", [8, 28, 32])
def test_shapes_dtypes_finite(channels, size):
    x = uint8_images(6, size, channels)
    views = [*A.contrastive_views(x, gen()), A.supervised_view(x, gen()), A.eval_view(x)]
    for v in views:
        assert v.shape == (6, channels, size, size) and v.dtype == torch.float32
        assert torch.isfinite(v).all()


def test_output_size_can_differ_from_input():
    v1, v2 = A.contrastive_views(uint8_images(4, 32), gen(), size=16)
    assert v1.shape == v2.shape == (4, 3, 16, 16)
    assert A.supervised_view(uint8_images(4, 32), gen(), size=(20, 24)).shape == (4, 3, 20, 24)


@pytest.mark.parametrize("channels, mean, std", [(3, A.IMAGENET_MEAN, A.IMAGENET_STD), (1, A.GRAY_MEAN, A.GRAY_STD)])
def test_eval_view_is_plain_normalisation(channels, mean, std):
    x = uint8_images(5, 8, channels)
    mean, std = torch.tensor(mean).view(1, -1, 1, 1), torch.tensor(std).view(1, -1, 1, 1)
    expected = (x.permute(0, 3, 1, 2).float() / 255 - mean) / std
    torch.testing.assert_close(A.eval_view(x), expected, rtol=0, atol=1e-6)


def test_same_seed_same_views_other_seed_other_views():
    x = uint8_images(64, 16)
    a1, a2 = A.contrastive_views(x, gen(7))
    b1, b2 = A.contrastive_views(x, gen(7))
    c1, c2 = A.contrastive_views(x, gen(8))
    assert torch.equal(a1, b1) and torch.equal(a2, b2)
    assert not torch.equal(a1, c1) and not torch.equal(a2, c2)
    assert not torch.equal(a1, a2)


def test_result_does_not_depend_on_chunk_size():
    x = uint8_images(50, 16)
    whole = A.contrastive_views(x, gen(3), chunk_size=50)
    chunked = A.contrastive_views(x, gen(3), chunk_size=7)
    for a, b in zip(whole, chunked):
        assert torch.equal(a, b)


def test_generator_state_advances_by_a_data_independent_amount():
    g1, g2 = gen(1), gen(1)
    A.contrastive_views(uint8_images(32, 8, seed=1), g1)
    A.contrastive_views(uint8_images(32, 8, seed=2), g2)
    assert torch.equal(g1.get_state(), g2.get_state())


def test_inputs_are_validated():
    with pytest.raises(ValueError, match="uint8"):
        A.contrastive_views(torch.zeros(2, 8, 8, 3), gen())
    with pytest.raises(ValueError, match=r"\(B, H, W, C\)"):
        A.eval_view(torch.zeros(2, 3, 8, 8, dtype=torch.uint8))  # NCHW given
    with pytest.raises(ValueError, match="generator"):
        A.contrastive_views(uint8_images(2), None)
    with pytest.raises(ValueError, match="flip_p"):
        A.ViewRecipe(flip_p=1.5)
    with pytest.raises(ValueError, match="blur_sigma"):
        A.ViewRecipe(blur_sigma=(0.0, 2.0))
    with pytest.raises(ValueError, match="blur_sigma"):
        A.ViewRecipe(blur_sigma=(2.0, 1.0))
    with pytest.raises(ValueError, match=r"hue must be a number in \[0, 0.5\], got 0.7"):
        A.ViewRecipe(hue=0.7)
    with pytest.raises(ValueError, match="brightness must be a number >= 0"):
        A.ViewRecipe(brightness=-0.1)
    with pytest.raises(ValueError, match=r"solarize_threshold must be a number in \[0, 1\]"):
        A.ViewRecipe(solarize_threshold=float("nan"))


def test_recipe_defaults_are_the_papers_and_lists_become_tuples():
    v1, v2, sup = A.CONTRASTIVE_VIEW1, A.CONTRASTIVE_VIEW2, A.SUPERVISED_VIEW
    assert (v1.crop_scale, v1.brightness, v1.contrast, v1.saturation, v1.hue) == ((0.2, 1.0), 0.4, 0.4, 0.2, 0.1)
    assert (v1.jitter_p, v1.grayscale_p, v1.flip_p, v1.blur_p, v1.solarize_p) == (0.8, 0.2, 0.5, 1.0, 0.0)
    assert (v2.blur_p, v2.solarize_p, v2.solarize_threshold) == (0.1, 0.2, 128 / 255)
    assert (sup.jitter_p, sup.grayscale_p, sup.blur_p, sup.solarize_p, sup.flip_p) == (0, 0, 0, 0, 0.5)
    assert A.ViewRecipe(crop_scale=[0.3, 0.9]).crop_scale == (0.3, 0.9)  # as from YAML
    assert v1.blur_sigma == v2.blur_sigma == (0.1, 2.0)
    # the authors' pipeline has no random jitter order and no fixed blur kernel: the recipe neither
    names = {f.name for f in dataclasses.fields(A.ViewRecipe)}
    assert not names & {"jitter_order", "random_order", "blur_kernel_size"}
    with pytest.raises(TypeError):
        A.ViewRecipe(blur_kernel_size=3)


# ------------------------------------------------------------------------------------------------
# RandomResizedCrop
# ------------------------------------------------------------------------------------------------

def test_crop_boxes_area_and_aspect_in_range():
    # A large image makes the rounding of the sides to pixels negligible.
    size = 10_000
    b = A.sample_crop_boxes(N, size, size, (0.2, 1.0), (3 / 4, 4 / 3), generator=gen())
    area = b.height * b.width / size**2
    aspect = b.width / b.height
    assert area.min() >= 0.2 - 1e-3 and area.max() <= 1.0
    assert aspect.min() >= 3 / 4 - 1e-3 and aspect.max() <= 4 / 3 + 1e-3
    assert (b.top >= 0).all() and (b.left >= 0).all()
    assert (b.top + b.height <= size).all() and (b.left + b.width <= size).all()


def test_crop_boxes_are_integer_and_inside_small_images():
    b = A.sample_crop_boxes(N, 32, 24, generator=gen())
    for v in b:
        assert torch.equal(v, v.round())
    assert (b.height >= 1).all() and (b.width >= 1).all()
    assert (b.top + b.height <= 32).all() and (b.left + b.width <= 24).all()


def test_crop_boxes_distributed_like_torchvision():
    """Mean area fraction and aspect of our boxes against torchvision's get_params (per-image)."""
    torch.manual_seed(0)
    image = torch.zeros(3, 32, 32)
    ref = torch.tensor([RandomResizedCrop.get_params(image, [0.2, 1.0], [3 / 4, 4 / 3]) for _ in range(N)],
                       dtype=torch.float32)  # rows (top, left, h, w)
    ours = A.sample_crop_boxes(N, 32, 32, generator=gen())
    for mine, theirs in [(ours.height * ours.width / 1024, ref[:, 2] * ref[:, 3] / 1024),
                         (ours.width / ours.height, ref[:, 3] / ref[:, 2]),
                         (ours.top + ours.height / 2, ref[:, 0] + ref[:, 2] / 2)]:
        tol = SIGMAS * math.sqrt((mine.var() + theirs.var()) / N)
        assert abs(mine.mean() - theirs.mean()) <= tol


def test_crop_fallback_is_torchvisions_centre_crop():
    # No area fraction > 1 fits: every sample falls back to the centre crop trimmed to aspect 4/3.
    b = A.sample_crop_boxes(10, 16, 64, (2.0, 3.0), (3 / 4, 4 / 3), generator=gen())
    assert b.height.tolist() == [16] * 10 and b.width.tolist() == [21] * 10  # round(16 * 4/3)
    assert b.top.tolist() == [0] * 10 and b.left.tolist() == [21] * 10      # (64 - 21) // 2


def test_crop_full_box_is_identity():
    x = float_images(16, 32)
    out = A.random_resized_crop(x, 32, scale=(1.0, 1.0), ratio=(1.0, 1.0), generator=gen())
    torch.testing.assert_close(out, x, rtol=0, atol=1e-5)
    recipe = A.ViewRecipe(crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), flip_p=0, jitter_p=0, grayscale_p=0)
    out, _ = A.augment(x, recipe, gen())
    torch.testing.assert_close(out, x, rtol=0, atol=1e-5)


def test_crop_geometry_on_coordinate_image():
    """Resampling a coordinate image must land exactly on each sampled box."""
    n, H, W, size = 200, 40, 48, 32
    out = A.random_resized_crop(coordinate_image(n, H, W), size, generator=gen(4))
    b = A.sample_crop_boxes(n, H, W, generator=gen(4))  # the same draws
    # where the crop sampled: the bilinear resize, clamped to the box's first/last pixel
    centres = (torch.arange(size) + 0.5) / size
    cols = (b.left[:, None] + centres * b.width[:, None] - 0.5).clamp(min=b.left[:, None]).minimum(
        b.left[:, None] + b.width[:, None] - 1)
    rows = (b.top[:, None] + centres * b.height[:, None] - 0.5).clamp(min=b.top[:, None]).minimum(
        b.top[:, None] + b.height[:, None] - 1)
    torch.testing.assert_close(out[:, 0], cols[:, None, :].expand(n, size, size), rtol=0, atol=1e-4)
    torch.testing.assert_close(out[:, 1], rows[:, :, None].expand(n, size, size), rtol=0, atol=1e-4)
    # and the boxes read back from the image have the allowed areas and aspects (to pixel rounding)
    width = out[:, 0].amax((1, 2)) - out[:, 0].amin((1, 2)) + 1
    height = out[:, 1].amax((1, 2)) - out[:, 1].amin((1, 2)) + 1
    assert ((width * height / (H * W)) >= 0.2 - 0.05).all()
    assert ((width / height) >= 0.75 - 0.1).all() and ((width / height) <= 4 / 3 + 0.1).all()


def test_crop_matches_torchvision_resized_crop():
    x = float_images(24, 32)
    b = A.sample_crop_boxes(24, 32, 32, generator=gen(2))
    flip = torch.arange(24) % 2 == 0
    ours = A.resized_crop(x, b, 32, flip)
    for i in range(24):
        ref = TF.resized_crop(x[i], *(int(v[i]) for v in b), [32, 32], antialias=False)
        ref = ref.flip(-1) if flip[i] else ref
        torch.testing.assert_close(ours[i], ref, rtol=0, atol=1e-5)


# ------------------------------------------------------------------------------------------------
# Flip, grayscale, solarize
# ------------------------------------------------------------------------------------------------

def test_flip_share_and_exactness():
    x = coordinate_image(N, 8, 8)  # columns increase left to right
    out = A.horizontal_flip(x, 0.5, generator=gen())
    flipped = out[:, 0, 0, 0] > out[:, 0, 0, -1]
    assert_share(flipped, 0.5)
    assert torch.equal(out[flipped], x[flipped].flip(-1)) and torch.equal(out[~flipped], x[~flipped])


def test_grayscale_share_on_colourful_images():
    x = float_images(N, 8)
    out = A.random_grayscale(x, 0.2, generator=gen())
    gray = ((out[:, 0] == out[:, 1]) & (out[:, 1] == out[:, 2])).flatten(1).all(1)
    assert_share(gray, 0.2)
    assert torch.equal(out[~gray], x[~gray])
    luma = 0.299 * x[gray, 0] + 0.587 * x[gray, 1] + 0.114 * x[gray, 2]  # DALI's Y of YIQ
    torch.testing.assert_close(out[gray], luma.unsqueeze(1).expand(-1, 3, -1, -1), rtol=0, atol=1e-6)
    one = float_images(10, 8, channels=1)
    assert torch.equal(A.random_grayscale(one, 1.0, generator=gen()), one)


def test_solarize_share_and_values():
    x = float_images(N, 8)
    out = A.solarize(x, 128 / 255, 0.2, generator=gen())
    changed = (out != x).flatten(1).any(1)
    assert_share(changed, 0.2)
    expected = torch.where(x[changed] > 128 / 255, 1 - x[changed], x[changed])
    torch.testing.assert_close(out[changed], expected, rtol=0, atol=0)
    ref = torch.stack([TF.solarize(x[i], 128 / 255) for i in torch.nonzero(changed).flatten()[:20]])
    torch.testing.assert_close(out[changed][:20], ref, rtol=0, atol=0)


# ------------------------------------------------------------------------------------------------
# Colour jitter
# ------------------------------------------------------------------------------------------------

def test_jitter_factors_in_range_and_each_applied_with_p():
    p = A.sample_jitter_params(N, 0.4, 0.4, 0.2, 0.1, 0.8, generator=gen())
    ranges = [(0.6, 1.4), (0.6, 1.4), (0.8, 1.2), (-0.1, 0.1)]
    for k, (lo, hi) in enumerate(ranges):
        f = p.factors[:, k]
        assert lo <= f.min() and f.max() <= hi
        assert f.min() < lo + 0.01 * (hi - lo) and f.max() > hi - 0.01 * (hi - lo)  # fills the range
        assert abs(f.mean() - (lo + hi) / 2) <= SIGMAS * (hi - lo) / math.sqrt(12 * N)  # uniform mean
        assert_share(p.applied[:, k], 0.8)
    # the four draws are independent: all applied with p^4
    assert_share(p.applied.all(1), 0.8**4)


@pytest.mark.parametrize("op", range(4))
def test_jitter_applied_share_seen_in_the_images(op):
    strengths = [0.0] * 4
    strengths[op] = [0.4, 0.4, 0.2, 0.1][op]
    x = float_images(N, 8)
    out = A.color_jitter(x, *strengths, p_each=0.8, generator=gen())
    changed = (out - x).abs().flatten(1).amax(1) > 1e-6
    assert_share(changed, 0.8)


# The authors' colour twist (NVIDIA DALI color_twist), written out per pixel.
RGB_TO_YIQ = np.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.321], [0.211, -0.523, 0.311]])


def dali_colour_twist(image: np.ndarray, b: float, c: float, s: float, h: float) -> np.ndarray:
    """out = b (g + c (M x - g)), g = 128/255, for every pixel x of a (3, H, W) image, M = inv(Y) R(h) S(s) Y,
    clamped to [0, 1] at the end; h in turns."""
    angle = 2 * math.pi * h
    rotation = np.array([[1, 0, 0], [0, math.cos(angle), math.sin(angle)], [0, -math.sin(angle), math.cos(angle)]])
    M = np.linalg.inv(RGB_TO_YIQ) @ rotation @ np.diag([1, s, s]) @ RGB_TO_YIQ
    out = np.empty_like(image, dtype=np.float64)
    for i in range(image.shape[1]):
        for j in range(image.shape[2]):
            out[:, i, j] = b * (128 / 255 + c * (M @ image[:, i, j] - 128 / 255))
    return np.clip(out, 0, 1)


def twist_reference(x: torch.Tensor, params: A.JitterParams) -> torch.Tensor:
    neutral = torch.tensor([1.0, 1.0, 1.0, 0.0])
    f = torch.where(params.applied, params.factors, neutral).double()
    out = []
    for img, (b, c, s, h) in zip(x.double().numpy(), f.tolist()):
        if img.shape[0] == 1:  # no chroma: contrast and brightness only
            out.append(np.clip(b * (128 / 255 + c * (img - 128 / 255)), 0, 1))
        else:
            out.append(dali_colour_twist(img, b, c, s, h))
    return torch.from_numpy(np.stack(out)).to(x.dtype)


@pytest.mark.parametrize("channels", [1, 3])
def test_colour_twist_matches_dalis_formula(channels):
    x = float_images(24, 6, channels)
    p = A.sample_jitter_params(24, generator=gen(1))
    assert p.applied.any(0).all() and (~p.applied).any(0).all()  # every parameter both on and off somewhere
    torch.testing.assert_close(A.apply_color_jitter(x, p), twist_reference(x, p), rtol=0, atol=1e-5)


def test_colour_twist_on_extreme_pixels_and_factors():
    # pure colours, greys, ties between channels; hue at the ends of its range, factors that leave [0, 1]
    levels = torch.tensor([0.0, 0.25, 0.5, 1.0])
    pix = torch.cartesian_prod(levels, levels, levels).T.reshape(1, 3, 8, 8)
    factors = torch.tensor([[1.0, 1.0, 1.0, -0.5], [1.0, 1.0, 1.0, 0.5], [1.0, 1.0, 1.0, 0.1], [1.0, 1.0, 0.0, 0.0],
                            [1.0, 1.0, 1.2, -0.1], [1.4, 0.6, 0.8, 0.05], [0.6, 1.4, 1.2, -0.03], [0.0, 1.0, 1.0, 0.0]])
    params = A.JitterParams(factors, torch.ones(8, 4, dtype=torch.bool))
    x = pix.expand(8, 3, 8, 8)
    torch.testing.assert_close(A.apply_color_jitter(x, params), twist_reference(x, params), rtol=0, atol=1e-5)


def test_colour_twist_identity_pivot_and_final_clamp():
    x = float_images(16, 8)
    identity = A.JitterParams(torch.tensor([[1.0, 1.0, 1.0, 0.0]]).repeat(16, 1), torch.ones(16, 4, dtype=torch.bool))
    torch.testing.assert_close(A.apply_color_jitter(x, identity), x, rtol=0, atol=1e-6)
    off = A.JitterParams(torch.rand(16, 4, generator=gen(2)) + 0.5, torch.zeros(16, 4, dtype=torch.bool))
    torch.testing.assert_close(A.apply_color_jitter(x, off), x, rtol=0, atol=1e-6)  # nothing applied

    # contrast pivots on DALI's grey for uint8 images, 128/255, not on the image's mean (torchvision) nor on 0.5
    # (DALI's float input): that grey is unchanged by any contrast
    pivot = 128 / 255
    assert A.CONTRAST_PIVOT == pivot
    grey = torch.full((6, 3, 4, 4), pivot)
    contrast = torch.tensor([0.0, 0.3, 0.6, 1.0, 1.4, 3.0])
    only_c = A.JitterParams(torch.stack([torch.ones(6), contrast, torch.ones(6), torch.zeros(6)], 1),
                            torch.tensor([[False, True, False, False]]).repeat(6, 1))
    torch.testing.assert_close(A.apply_color_jitter(grey, only_c), grey, rtol=0, atol=1e-6)
    dark = torch.full((1, 3, 4, 4), 0.2)
    out = A.apply_color_jitter(dark, A.JitterParams(torch.tensor([[1.0, 1.4, 1.0, 0.0]]), only_c.applied[:1]))
    torch.testing.assert_close(out, torch.full_like(dark, pivot + 1.4 * (0.2 - pivot)), rtol=0, atol=1e-6)
    # brightness multiplies everything, the pivot included
    bright = A.JitterParams(torch.tensor([[1.2, 0.6, 1.0, 0.0]]), torch.tensor([[True, True, False, False]]))
    torch.testing.assert_close(A.apply_color_jitter(grey[:1], bright), torch.full_like(grey[:1], 1.2 * pivot),
                               rtol=0, atol=1e-6)
    # one clamp, at the end: white under contrast 1.4 passes 1 (1.2 at a 0.5 pivot) before brightness 0.6
    # brings it back below
    white = torch.ones(1, 3, 2, 2)
    both = A.JitterParams(torch.tensor([[0.6, 1.4, 1.0, 0.0]]), torch.tensor([[True, True, False, False]]))
    torch.testing.assert_close(A.apply_color_jitter(white, both), torch.full_like(white, 0.6 * (pivot + 1.4 * (1 - pivot))),
                               rtol=0, atol=1e-6)


def test_each_colour_parameter_has_its_own_coin():
    p = A.sample_jitter_params(N, 0.4, 0.4, 0.2, 0.1, 0.8, generator=gen(11))
    for i in range(4):
        for j in range(i + 1, 4):
            assert_share(p.applied[:, i] & p.applied[:, j], 0.8 * 0.8)
            assert_share(p.applied[:, i] & ~p.applied[:, j], 0.8 * 0.2)
    assert_share(~p.applied.any(1), 0.2**4)
    # the coins do not depend on the factors' values
    big = p.factors[:, 0] > 1.0
    assert_share(p.applied[big, 1], 0.8)
    # and nothing else is drawn: no order of the four operations
    assert A.JitterParams._fields == ("factors", "applied")
    with pytest.raises(TypeError):
        A.sample_jitter_params(8, generator=gen(3), random_order=True)


def test_grayscale_is_dalis_luma():
    x = float_images(8, 6)
    expected = (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]).unsqueeze(1)
    torch.testing.assert_close(A.rgb_to_grayscale(x), expected, rtol=0, atol=1e-7)
    for k, weight in enumerate((0.299, 0.587, 0.114)):
        pure = torch.zeros(1, 3, 2, 2)
        pure[:, k] = 1.0
        assert A.rgb_to_grayscale(pure).flatten().tolist() == pytest.approx([weight] * 4, abs=1e-7)
    mask = torch.tensor([True, False] * 4)
    out = A.grayscale_where(x, mask)
    torch.testing.assert_close(out[mask], expected[mask].expand(-1, 3, -1, -1), rtol=0, atol=1e-7)
    assert torch.equal(out[~mask], x[~mask])


def test_solarize_inverts_only_pixels_strictly_above_the_threshold():
    levels = torch.arange(256, dtype=torch.uint8).reshape(1, 16, 16, 1)
    x = A.to_float(levels)  # every grey level k / 255
    out = A.solarize_where(x, torch.tensor([True]), 128 / 255)
    k = torch.arange(256).reshape(1, 1, 16, 16)
    expected = torch.where(k > 128, 1 - x, x)
    assert torch.equal(out, expected)
    assert out.flatten()[128] == x.flatten()[128] and out.flatten()[129] == 1 - x.flatten()[129]
    assert torch.equal(A.solarize_where(x, torch.tensor([False]), 128 / 255), x)


# ------------------------------------------------------------------------------------------------
# Gaussian blur
# ------------------------------------------------------------------------------------------------

def test_blur_radius_is_dalis_window():
    # DALI's window: 2 ceil(3 sigma) + 1 taps (3 at sigma 0.1, 13 at 2.0), kept below the image side
    assert [A.blur_radius(s, 32, 32) for s in (0.1, 0.3, 0.8, 1.5, 2.0)] == [1, 1, 3, 5, 6]
    assert A.blur_radius(2.0, 5, 32) == 4 and A.blur_radius(0.01, 32, 32) == 1
    k = A.gaussian_kernels(torch.tensor([0.3, 2.0]), 6)
    assert k.shape == (2, 13) and torch.allclose(k.sum(1), torch.ones(2))
    assert (k[0] > 0).sum() == 3 and (k[1] > 0).sum() == 13


SIGMAS_IMPULSE = (0.3, 0.8, 1.5, 2.0)


def test_blur_of_an_impulse_is_the_truncated_gaussian():
    size, centre = 31, 15
    x = torch.zeros(len(SIGMAS_IMPULSE), 1, size, size, dtype=torch.float64)
    x[:, :, centre, centre] = 1.0
    sigma = torch.tensor(SIGMAS_IMPULSE, dtype=torch.float64)
    radius = A.blur_radius(max(SIGMAS_IMPULSE), size, size)  # the batch's common window
    out = A.blur_with_sigma(x, sigma, radius)
    offsets = np.arange(size) - centre
    for i, s in enumerate(SIGMAS_IMPULSE):
        own = math.ceil(3 * s)
        pdf = np.where(np.abs(offsets) <= own, np.exp(-0.5 * (offsets / s) ** 2), 0.0)
        pdf /= pdf.sum()
        image = out[i, 0].numpy()
        row = image[centre] / image[centre].sum()
        np.testing.assert_allclose(row, pdf, rtol=0, atol=1e-12)
        np.testing.assert_allclose(image, np.outer(pdf, pdf), rtol=0, atol=1e-12)  # separable, same both ways
        assert np.count_nonzero(image[centre]) == 2 * own + 1  # the window, 0 beyond
        variance = (offsets**2 * row).sum()
        truncated = (offsets**2 * pdf).sum()
        assert variance == pytest.approx(truncated, rel=1e-10)
        assert variance < s**2  # truncation at 3 sigma narrows it (and sampling a narrow one at integers)
        if s >= 0.8:
            assert variance == pytest.approx(s**2, rel=0.02)


@pytest.mark.parametrize("radius", [6, 8])
def test_blur_matches_torchvision_and_skips_unselected(radius):
    x = float_images(32, 20)
    sigma = 0.1 + 1.9 * torch.rand(32, generator=gen(1))
    applied = torch.arange(32) % 3 != 0
    out = A.blur_with_sigma(x, sigma, radius, applied)
    for i in range(32):
        if applied[i]:
            kernel_size = 2 * math.ceil(3 * sigma[i].item()) + 1  # each image's own DALI window
            ref = TF.gaussian_blur(x[i], [kernel_size] * 2, [sigma[i].item()] * 2)
            torch.testing.assert_close(out[i], ref, rtol=0, atol=1e-5)
        else:
            assert torch.equal(out[i], x[i])


def test_gaussian_blur_share():
    x = float_images(N, 8)
    out = A.gaussian_blur(x, (1.0, 2.0), p=0.3, generator=gen())  # sigma >= 1: always visible
    assert_share((out != x).flatten(1).any(1), 0.3)


# ------------------------------------------------------------------------------------------------
# The paper's two views
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("recipe, blur_p, solarize_p",
                         [(A.CONTRASTIVE_VIEW1, 1.0, 0.0), (A.CONTRASTIVE_VIEW2, 0.1, 0.2)])
def test_view_shares(recipe, blur_p, solarize_p):
    _, p = A.augment_view(uint8_images(N, 8), recipe, gen(), return_params=True)
    assert_share(p.blurred, blur_p)
    assert_share(p.solarized, solarize_p)
    assert_share(p.grayscale, 0.2)
    assert_share(p.flipped, 0.5)
    for k in range(4):
        assert_share(p.jitter.applied[:, k], 0.8)
    sigma = p.blur_sigma[p.blurred]
    assert sigma.min() >= 0.1 and sigma.max() <= 2.0
    assert p.blur_radius == A.blur_radius(2.0, 8, 8) == 6  # the widest window of sigma 2, for 8x8 views


def test_supervised_view_is_crop_and_flip_only():
    x = uint8_images(200, 16)
    view, p = A.augment_view(x, A.SUPERVISED_VIEW, gen(), return_params=True)
    assert p.jitter is None and not (p.grayscale | p.blurred | p.solarized).any()
    assert_share(p.flipped, 0.5)
    expected = A.normalize(A.resized_crop(A.to_float(x), p.boxes, 16, p.flipped))
    torch.testing.assert_close(view, expected, rtol=0, atol=0)
    assert torch.equal(A.supervised_view(x, gen()), view)


def _on(params: A.ViewParams, device: str) -> A.ViewParams:
    """The same draws on another device."""
    jitter = None if params.jitter is None else A.JitterParams(*(t.to(device) for t in params.jitter))
    masks = {k: getattr(params, k).to(device) for k in ("flipped", "grayscale", "blur_sigma", "blurred", "solarized")}
    return dataclasses.replace(params, boxes=A.CropBoxes(*(t.to(device) for t in params.boxes)), jitter=jitter, **masks)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_renders_from_its_draws_what_the_cpu_renders_from_them(monkeypatch):
    """The GPU path (the training's): the views stay on the device, each operation drawn at its rate, and
    each view equals what the CPU renders from the same draws (float32 throughout: TF32 off for the check)."""
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    x = uint8_images(N, 32)
    g = torch.Generator(device="cuda").manual_seed(0)
    recipes = (A.CONTRASTIVE_VIEW1, A.CONTRASTIVE_VIEW2, A.SUPERVISED_VIEW)
    views, params = A.augment_views(x.cuda(), recipes, g, return_params=True)
    for view, p in zip(views, params):
        assert view.is_cuda and view.shape == (N, 3, 32, 32) and p.flipped.is_cuda
        for drawn, rate in ((p.flipped, 0.5), (p.grayscale, p.recipe.grayscale_p), (p.blurred, p.recipe.blur_p),
                            (p.solarized, p.recipe.solarize_p)):
            assert_share(drawn.cpu(), rate)
        expected = A.normalize(A.apply_view_params(A.to_float(x), _on(p, "cpu")))
        torch.testing.assert_close(view.cpu(), expected, rtol=0, atol=1e-4)
    with pytest.raises(ValueError, match="generator"):
        A.contrastive_views(x.cuda(), gen())


def test_one_channel_images_take_the_paper_views_with_colour_steps_reduced_to_brightness_and_contrast():
    """Fashion-MNIST's grey 28x28 images: the two contrastive views render (1 channel, the grey
    normalisation); saturation, hue and grayscale have nothing to act on and leave a grey image as it is."""
    x = torch.randint(0, 256, (16, 28, 28, 1), dtype=torch.uint8, generator=gen())
    v1, v2 = A.contrastive_views(x, gen(1))
    assert v1.shape == v2.shape == (16, 1, 28, 28) and torch.isfinite(v1).all() and not torch.equal(v1, v2)
    f = A.to_float(x)
    applied = torch.tensor([[False, False, True, True]] * 16)  # saturation and hue only
    params = A.JitterParams(factors=torch.tensor([[1.3, 0.7, 0.0, 0.25]] * 16), applied=applied)
    torch.testing.assert_close(A.apply_color_jitter(f, params), f, rtol=0, atol=0)
    assert torch.equal(A.random_grayscale(f, 1.0, generator=gen()), f)
    # brightness and contrast act, as on each channel of a colour image: b * (c x + g (1 - c)), g = 128/255
    both = A.JitterParams(factors=torch.tensor([[1.2, 0.5, 0.0, 0.0]] * 16),
                          applied=torch.tensor([[True, True, False, False]] * 16))
    torch.testing.assert_close(A.apply_color_jitter(f, both), (1.2 * (0.5 * f + 0.5 * 128 / 255)).clamp(0, 1),
                               rtol=0, atol=1e-6)
