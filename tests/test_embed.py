"""Feature extraction for runs: normalised, deterministic, cached next to the run with provenance."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from clorg import embed
from clorg.config import load_profile
from clorg.data import choose_profile_dataset
from clorg.train import run

TINY = {"data.dataset": "digits", "data.train_per_class": 30, "data.test_per_class": 10,
        "train.supervised_batch_size": 64, "train.supervised_epochs": 1}


@pytest.fixture
def tiny_run(tmp_path):
    cfg = load_profile("smoke", TINY)
    data = choose_profile_dataset(cfg)
    return run(cfg, "resnet18", "supervised", data=data, runs_root=tmp_path, progress=False), data


def test_encode_is_normalised_and_deterministic():
    torch.manual_seed(0)
    enc = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(8 * 8, 5))
    images = np.random.default_rng(0).integers(0, 256, (7, 8, 8, 1), dtype=np.uint8)
    a = embed.encode(enc, images, batch_size=3)
    torch.testing.assert_close(a.norm(dim=1), torch.ones(7))
    torch.testing.assert_close(a, embed.encode(enc, images, batch_size=7))
    assert enc.training  # the encoder's mode is restored


def test_run_features_are_cached_with_provenance(tiny_run, monkeypatch):
    result, data = tiny_run
    feats = embed.run_features(result, data)
    assert feats.train.shape == (len(data.train), 512) and feats.test.shape == (len(data.test), 512)
    np.testing.assert_allclose(np.linalg.norm(feats.train, axis=1), 1, atol=1e-5)
    np.testing.assert_array_equal(feats.train_labels, data.train.labels)
    assert feats.provenance["epoch"] == 1 and feats.provenance["data_sha256"] == data.train.checksum

    def no_encoding(*args, **kwargs):
        raise AssertionError("encode was called")

    monkeypatch.setattr(embed, "encode", no_encoding)
    again = embed.run_features(result, data)  # read back from features_e0001.npz, nothing encoded
    assert np.array_equal(again.train, feats.train)

    other = choose_profile_dataset(load_profile("smoke", {**TINY, "data.train_per_class": 20}))
    with pytest.raises(AssertionError, match="encode was called"):  # other data: not reused
        embed.run_features(result, other)


def test_random_initialisation_is_the_reference(tiny_run):
    result, data = tiny_run
    start, end = embed.run_features(result, data, epoch=0), embed.run_features(result, data)
    assert start.provenance["epoch"] == 0
    assert not np.allclose(start.train, end.train)
