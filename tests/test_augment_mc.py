"""The Monte-Carlo test of the augmentation on a pair of images (clorg.analysis.augment_mc): counts whose
expected values follow from how the pairs are built, not from running the code."""

from __future__ import annotations

import numpy as np
import pytest

from clorg.analysis.augment_mc import identical_views


def _image(seed=0, size=16):
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


def test_an_image_against_itself_with_shared_draws_is_identical_every_time():
    x = _image()
    mc = identical_views(x, x, 300, batch=128, shared_draws=True, progress=False)
    assert (mc["identical"], mc["draws"], mc["own_distance"]) == (300, 300, 0.0)
    assert mc["closer"] == 0  # nothing is closer than a distance of 0


def test_black_and_white_never_give_identical_views():
    """The first view's recipe has no solarisation: no crop, flip, jitter (a brightness factor of at least
    0.6), grayscale or blur turns an all-white image into an all-black one."""
    black, white = np.zeros((16, 16, 3), np.uint8), np.full((16, 16, 3), 255, np.uint8)
    mc = identical_views(black, white, 300, batch=100, progress=False)
    assert mc["identical"] == 0 and mc["own_distance"] == pytest.approx(np.sqrt(3 * 16 * 16))


def test_independent_draws_of_one_image_are_seeded():
    x = _image(1)
    a = identical_views(x, x, 200, batch=64, seed=3, progress=False)
    assert a == identical_views(x, x, 200, batch=64, seed=3, progress=False)
    assert 0 <= a["identical"] < 200  # independent crops of one image coincide only rarely


@pytest.mark.parametrize("bad, match", [(np.zeros((4, 4, 3), np.float32), "uint8"), (np.zeros((4, 4), np.uint8), "uint8")])
def test_bad_images_are_refused(bad, match):
    with pytest.raises(ValueError, match=match):
        identical_views(bad, bad, 10, progress=False)


def test_the_closer_count_on_two_mirror_images_under_flips_only():
    """Two images that are each other's mirror (left half white against right half white) under a recipe
    that only flips: a draw that flips exactly one of them makes the views identical (distance 0, closer than
    the images), any other draw leaves them as far apart as the images (not closer). So with independent
    draws `closer` equals `identical`, about half the draws; with shared draws both flip together: none."""
    from clorg.train.augment import ViewRecipe

    flips = ViewRecipe(crop_scale=None, flip_p=0.5, jitter_p=0.0, grayscale_p=0.0, blur_p=0.0, solarize_p=0.0)
    left = np.zeros((8, 8, 3), np.uint8)
    left[:, :4] = 255
    right = left[:, ::-1].copy()
    mc = identical_views(left, right, 2000, recipe=flips, batch=256, progress=False)
    assert mc["own_distance"] > 0 and mc["closer"] == mc["identical"]
    assert 800 < mc["identical"] < 1200  # one of the two flipped: probability 1/2, 2,000 draws (sd 22)
    shared = identical_views(left, right, 500, recipe=flips, batch=256, shared_draws=True, progress=False)
    assert (shared["identical"], shared["closer"]) == (0, 0)
