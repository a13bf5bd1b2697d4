"""Batched augmentations: statistics of each random operation, agreement with torchvision's
per-image functions, geometry of the crop, determinism, shapes."""

from __future__ import annotations

import math

import pytest
import torch
import torchvision.transforms.v2.functional as TF
from torchvision.transforms import RandomResizedCrop

from clorg import augment as A

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


def test_contrastive_views_are_the_two_recipes_in_turn():
    x = uint8_images(20, 16)
    views, params = A.augment_views(x, [A.CONTRASTIVE_VIEW1, A.CONTRASTIVE_VIEW2], gen(5), return_params=True)
    for a, b in zip(A.contrastive_views(x, gen(5)), views):
        assert torch.equal(a, b)
    # and each view is its recipe applied to the drawn parameters
    xf = A.to_float(x)
    for view, p in zip(views, params):
        torch.testing.assert_close(view, A.normalize(A.apply_view_params(xf, p)), rtol=0, atol=0)


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
    with pytest.raises(ValueError, match="kernel_size"):
        A.ViewRecipe(blur_kernel_size=4)
    with pytest.raises(ValueError, match="hue"):
        A.ViewRecipe(hue=0.7)


def test_recipe_defaults_are_the_papers_and_lists_become_tuples():
    v1, v2, sup = A.CONTRASTIVE_VIEW1, A.CONTRASTIVE_VIEW2, A.SUPERVISED_VIEW
    assert (v1.crop_scale, v1.brightness, v1.contrast, v1.saturation, v1.hue) == ((0.2, 1.0), 0.4, 0.4, 0.2, 0.1)
    assert (v1.jitter_p, v1.grayscale_p, v1.flip_p, v1.blur_p, v1.solarize_p) == (0.8, 0.2, 0.5, 1.0, 0.0)
    assert (v2.blur_p, v2.solarize_p, v2.solarize_threshold) == (0.1, 0.2, 128 / 255)
    assert (sup.jitter_p, sup.grayscale_p, sup.blur_p, sup.solarize_p, sup.flip_p) == (0, 0, 0, 0, 0.5)
    assert A.ViewRecipe(crop_scale=[0.3, 0.9]).crop_scale == (0.3, 0.9)  # as from YAML


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
    torch.testing.assert_close(out[gray], TF.rgb_to_grayscale(x[gray], num_output_channels=3), rtol=0, atol=1e-6)
    one = float_images(10, 8, channels=1)
    assert torch.equal(A.random_grayscale(one, 1.0, generator=gen()), one)


def test_solarize_share_and_values():
    x = float_images(N, 8)
    out = A.solarize(x, 128 / 255, 0.2, generator=gen())
    changed = (out != x).flatten(1).any(1)
    assert_share(changed, 0.2)
    expected = torch.where(x[changed] >= 128 / 255, 1 - x[changed], x[changed])
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


def _torchvision_jitter(img, factors, applied):
    ops = (TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation, TF.adjust_hue)
    for k, fn in enumerate(ops):
        if applied[k]:
            img = fn(img, factors[k].item())
    return img


@pytest.mark.parametrize("channels", [1, 3])
def test_jitter_matches_torchvision(channels):
    x = float_images(48, 16, channels)
    p = A.sample_jitter_params(48, generator=gen(1))
    out = A.apply_color_jitter(x, p)
    for i in range(48):
        torch.testing.assert_close(out[i], _torchvision_jitter(x[i], p.factors[i], p.applied[i]), rtol=0, atol=1e-5)


def test_hue_matches_torchvision_on_extreme_pixels():
    # pure colours, greys, ties between channels, shifts at the ends of the range
    levels = torch.tensor([0.0, 0.25, 0.5, 1.0])
    pix = torch.cartesian_prod(levels, levels, levels).T.reshape(1, 3, 8, 8)
    shifts = torch.tensor([-0.5, -0.1, 0.0, 0.1, 0.5])
    factors = torch.stack([torch.ones(5)] * 3 + [shifts], 1)  # hue only (other factors 1)
    out = A.apply_color_jitter(pix.expand(5, 3, 8, 8), A.JitterParams(factors, torch.ones(5, 4, dtype=torch.bool)))
    for i, s in enumerate(shifts):
        torch.testing.assert_close(out[i], TF.adjust_hue(pix[0], s.item()), rtol=0, atol=1e-5)


def test_jitter_random_order_is_a_permutation_per_batch():
    p = A.sample_jitter_params(8, generator=gen(3), random_order=True)
    assert sorted(p.order) == [0, 1, 2, 3]
    orders = {A.sample_jitter_params(8, generator=gen(s), random_order=True).order for s in range(20)}
    assert len(orders) > 1


# ------------------------------------------------------------------------------------------------
# Gaussian blur
# ------------------------------------------------------------------------------------------------

def test_default_blur_kernel_size():
    assert [A.default_blur_kernel_size(s) for s in (8, 28, 32, 64, 224)] == [3, 3, 3, 7, 23]


@pytest.mark.parametrize("kernel_size", [3, 5])
def test_blur_matches_torchvision_and_skips_unselected(kernel_size):
    x = float_images(32, 16)
    sigma = 0.1 + 1.9 * torch.rand(32, generator=gen(1))
    applied = torch.arange(32) % 3 != 0
    out = A.blur_with_sigma(x, sigma, kernel_size, applied)
    for i in range(32):
        if applied[i]:
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
    assert p.blur_kernel_size == 3


def test_supervised_view_is_crop_and_flip_only():
    x = uint8_images(200, 16)
    view, p = A.augment_view(x, A.SUPERVISED_VIEW, gen(), return_params=True)
    assert p.jitter is None and not (p.grayscale | p.blurred | p.solarized).any()
    assert_share(p.flipped, 0.5)
    expected = A.normalize(A.resized_crop(A.to_float(x), p.boxes, 16, p.flipped))
    torch.testing.assert_close(view, expected, rtol=0, atol=0)
    assert torch.equal(A.supervised_view(x, gen()), view)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_shapes_and_stays_on_device():
    x = uint8_images(64, 32).cuda()
    g = torch.Generator(device="cuda").manual_seed(0)
    v1, v2 = A.contrastive_views(x, g)
    assert v1.is_cuda and v1.shape == (64, 3, 32, 32) and torch.isfinite(v1).all() and torch.isfinite(v2).all()
    with pytest.raises(ValueError, match="generator"):
        A.contrastive_views(x, gen())
