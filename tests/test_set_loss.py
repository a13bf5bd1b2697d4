"""The whole-set contrastive loss (clorg.analysis.set_loss, the authors' Losseval): hand-computed values on
constructed outputs, its symmetry and blocks, the seeded views, and its record along a real tiny run."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from clorg.analysis.set_loss import one_way, view_outputs, whole_set_loss


def test_orthogonal_outputs_give_the_hand_computed_loss():
    """q = k = four orthogonal unit vectors: each row's logits are 1/T on the diagonal and 0 elsewhere, so
    c = 2T log(1 + 3 exp(-1/T))."""
    q = torch.eye(4)
    T = 0.2
    expected = 2 * T * math.log(1 + 3 * math.exp(-1 / T))
    assert one_way(q, q, T) == pytest.approx(expected, rel=1e-4)  # float32: log(1 + 0.02) from two numbers near 5
    assert whole_set_loss(q, q, T) == pytest.approx(2 * expected, rel=1e-4)
    # outputs are normalised first: their length does not matter
    assert one_way(3 * q, 0.5 * q, T) == pytest.approx(expected, rel=1e-4)


def test_views_paired_with_the_wrong_image_cost_more():
    q = torch.eye(4)
    swapped = q[[1, 0, 3, 2]]  # each view's positive is another image's view
    T = 0.2
    assert one_way(q, swapped, T) == pytest.approx(2 * T * (1 / T + math.log(1 + 3 * math.exp(-1 / T))), rel=1e-6)
    assert one_way(q, swapped, T) > one_way(q, q, T)


def test_blocks_change_nothing_and_it_is_torch_cross_entropy_both_ways():
    gen = torch.Generator().manual_seed(0)
    q, k = torch.randn(37, 8, generator=gen), torch.randn(37, 8, generator=gen)
    T = 0.2
    qn, kn = torch.nn.functional.normalize(q, dim=1), torch.nn.functional.normalize(k, dim=1)
    target = torch.arange(37)
    reference = 2 * T * (torch.nn.functional.cross_entropy(qn @ kn.T / T, target)
                         + torch.nn.functional.cross_entropy(kn @ qn.T / T, target))
    assert whole_set_loss(q, k, T) == pytest.approx(float(reference), rel=1e-5)
    assert one_way(q, k, T, block=5) == pytest.approx(one_way(q, k, T, block=1000), rel=1e-6)


def test_bad_outputs_are_refused_with_what_is_wrong():
    with pytest.raises(ValueError, match="two \\(n, D\\) arrays of the same shape"):
        one_way(torch.zeros(3, 4), torch.zeros(4, 4), 0.2)
    nan = torch.eye(3)
    nan[0, 0] = float("nan")
    with pytest.raises(ValueError, match="not finite"):
        one_way(nan, torch.eye(3), 0.2)


def test_the_views_are_drawn_again_by_the_seed():
    encoder = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 5))
    images = np.random.default_rng(0).integers(0, 256, size=(10, 8, 8, 3), dtype=np.uint8)
    q1, k1 = view_outputs(encoder, images, seed=3, device="cpu", batch_size=4)
    q2, k2 = view_outputs(encoder, images, seed=3, device="cpu", batch_size=4)
    q3, _ = view_outputs(encoder, images, seed=4, device="cpu", batch_size=4)
    assert q1.shape == k1.shape == (10, 5)
    assert torch.equal(q1, q2) and torch.equal(k1, k2) and not torch.equal(q1, q3)
    assert not torch.equal(q1, k1)  # two different views of each image
