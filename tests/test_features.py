"""The features stage (clorg.features): Features are checked on construction, extracted for a run normalised
and deterministic, cached next to the run with provenance, re-extracted when the cached file is unreadable;
display labels and finding a feature set."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from factories import count_calls, feature_set

from clorg.core.config import RunSpec, load_profile
from clorg.data import choose_profile_dataset
from clorg.features import Features, extract, find, label, run_features
from clorg.train import run
from clorg.train.encode import encode

TINY = {"data.dataset": "digits", "data.train_per_class": 30, "data.test_per_class": 10,
        "train.supervised_batch_size": 64, "train.supervised_epochs": 1}


@pytest.fixture
def tiny_run(tmp_path):
    cfg = load_profile("smoke", TINY)
    data = choose_profile_dataset(cfg)
    return run(cfg, RunSpec("resnet18", "supervised", "cosine"), data=data, runs_root=tmp_path, progress=False), data


def no_encoding(*args, **kwargs):
    raise AssertionError("encode was called")


# ------------------------------------------------ encoding ------------------------------------------------

def test_encode_is_normalised_and_deterministic():
    torch.manual_seed(0)
    enc = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(8 * 8, 5))
    images = np.random.default_rng(0).integers(0, 256, (7, 8, 8, 1), dtype=np.uint8)
    a = encode(enc, images, batch_size=3)
    torch.testing.assert_close(a.norm(dim=1), torch.ones(7))
    torch.testing.assert_close(a, encode(enc, images, batch_size=7))
    assert enc.training  # the encoder's mode is restored


def test_encode_shows_its_progress_over_the_images(capsys):
    """A bar over the images where asked (by default from 20,000 of them, as the metrics' bars), none below."""
    enc = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(8 * 8, 5))
    images = np.zeros((7, 8, 8, 1), dtype=np.uint8)
    encode(enc, images, batch_size=3, progress=True)
    err = capsys.readouterr().err
    assert "encoding" in err and "/7 [" in err  # n of the 7 images, with the bar's timing
    encode(enc, images, batch_size=3)
    assert capsys.readouterr().err == ""


# ------------------------------------------------ run features --------------------------------------------

def test_run_features_are_cached_with_provenance(tiny_run, monkeypatch):
    result, data = tiny_run
    feats = run_features(result, data)
    assert isinstance(feats, Features)
    assert feats.train.shape == (len(data.train), 512) and feats.test.shape == (len(data.test), 512)
    np.testing.assert_allclose(np.linalg.norm(feats.train, axis=1), 1, atol=1e-5)
    np.testing.assert_array_equal(feats.train_labels, data.train.labels)
    assert feats.provenance["epoch"] == 1 and feats.provenance["data_sha256"] == data.train.checksum
    assert feats.identity == {"encoder": "resnet18", "method": "supervised", "schedule": "cosine", "epoch": 1}
    assert (result.folder / "features_e0001.npz").is_file()

    monkeypatch.setattr(extract, "encode", no_encoding)
    again = run_features(result, data)  # read back from features_e0001.npz, nothing encoded
    assert np.array_equal(again.train, feats.train) and again.identity == feats.identity

    other = choose_profile_dataset(load_profile("smoke", {**TINY, "data.train_per_class": 20}))
    with pytest.raises(AssertionError, match="encode was called"):  # other data: not reused
        run_features(result, other)


@pytest.mark.parametrize("garbage", [b"", b"not an npz file at all", b"PK\x03\x04 not a zip", "first half"],
                         ids=["empty", "text", "zip-magic", "truncated"])
def test_an_unreadable_cached_file_is_extracted_again(tiny_run, monkeypatch, capsys, garbage):
    result, data = tiny_run
    feats = run_features(result, data)
    path = result.folder / "features_e0001.npz"
    saved = path.read_bytes()
    path.write_bytes(saved[:len(saved) // 2] if garbage == "first half" else garbage)
    calls = count_calls(monkeypatch, extract, "encode")
    again = run_features(result, data)
    assert len(calls) == 2  # train and test images encoded again
    assert f"{path} cannot be read" in capsys.readouterr().out
    np.testing.assert_allclose(again.train, feats.train, atol=1e-6)
    # the file was rewritten: the next call reads it
    monkeypatch.setattr(extract, "encode", no_encoding)
    np.testing.assert_array_equal(run_features(result, data).train, again.train)


def test_random_initialisation_is_the_reference(tiny_run):
    result, data = tiny_run
    start, end = run_features(result, data, epoch=0), run_features(result, data)
    assert start.provenance["epoch"] == 0 and start.epoch == 0 and start.random_init and not end.random_init
    assert not np.allclose(start.train, end.train)
    assert (result.folder / "features_e0000.npz").is_file()


def test_a_diverged_encoder_is_refused(tiny_run, monkeypatch):
    result, data = tiny_run

    def nan_features(encoder, images, **kwargs):
        return torch.full((len(images), 4), float("nan"))

    monkeypatch.setattr(extract, "encode", nan_features)
    with pytest.raises(ValueError, match="gives non-finite features; its training diverged: retrain it"):
        run_features(result, data)
    assert not (result.folder / "features_e0001.npz").exists()  # nothing cached


# ------------------------------------------------- checks -------------------------------------------------

def test_features_check_lengths_and_values_and_name_the_fix():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(30, 4)), np.arange(30) % 3
    f = feature_set(X, y, X[:10], y[:10], encoder="enc", method="moco_queue")
    assert f.train.shape == (30, 4)
    with pytest.raises(ValueError, match=r"enc moco_queue: 30 test features but 29 labels; re-extract them .*"
                                         r"features_e\*\.npz.*03_embeddings"):
        feature_set(X, y, X, y[:-1], encoder="enc", method="moco_queue")
    with pytest.raises(ValueError, match="enc moco_queue: 30 train features but 31 labels"):
        feature_set(X, np.append(y, 0), X[:10], y[:10], encoder="enc", method="moco_queue")
    bad = X.copy()
    bad[3, 0] = np.nan
    with pytest.raises(ValueError, match=r"enc moco_queue: the train features contain NaN or inf.*retrain.*02_train"):
        feature_set(bad, y, X[:10], y[:10], encoder="enc", method="moco_queue")
    bad[3, 0] = np.inf
    with pytest.raises(ValueError, match="enc random init: the test features contain NaN or inf"):
        feature_set(X, y, bad, y, encoder="enc", method="moco_queue", epoch=0)


# ------------------------------------------------- labels -------------------------------------------------

def test_label_of_features_and_of_records():
    X, y = np.eye(3), np.arange(3)
    assert label(feature_set(X, y, X, y, encoder="resnet18", method="moco_queue")) == "resnet18 moco_queue"
    assert label(feature_set(X, y, X, y, encoder="vit", method="simclr", schedule="paper-compressed")) == \
        "vit simclr (paper-compressed)"
    assert label(feature_set(X, y, X, y, encoder="vit", method="simclr", schedule="paper-compressed", epoch=0)) == \
        "vit random init"
    # a record (or any mapping with the identity fields) gets the same label as its feature set
    rec = {"encoder": "resnet18", "method": "supervised", "schedule": "cosine", "epoch": 20, "metric": "CH"}
    assert label(rec) == "resnet18 supervised"
    assert label({**rec, "schedule": "paper-literal"}) == "resnet18 supervised (paper-literal)"
    assert label({**rec, "schedule": None}) == "resnet18 supervised"
    assert label({**rec, "epoch": 0}) == "resnet18 random init"


# -------------------------------------------------- find --------------------------------------------------

def test_find_a_feature_set():
    X, y = np.eye(3), np.arange(3)
    sets = [feature_set(X, y, X, y, encoder="r18", method="moco_queue"),
            feature_set(X, y, X, y, encoder="r18", method="supervised"),
            feature_set(X, y, X, y, encoder="vit", method="moco_queue"),
            feature_set(X, y, X, y, encoder="r18", method="moco_queue", epoch=0)]
    assert find(sets, encoder="r18", method="supervised") is sets[1]
    assert find(sets, encoder="vit", method="moco_queue") is sets[2]
    assert find(sets, encoder="r18", method="moco_queue") is sets[0]  # final, not the random init
    assert find(sets, encoder="r18", epoch=0) is sets[3]  # the random init, whatever the method
    assert find(sets, encoder="vit", epoch=0) is None
    assert find(sets, encoder="vit", method="supervised") is None
    assert find(sets, encoder="resnet50", method="moco_queue") is None


# --------------------------------------------- the analysed epoch ---------------------------------------------

def _run_folder(tmp_path, encoder, method, final, kept=()):
    """A stand-in for a finished run: its config, final epoch and the snapshots it kept."""
    from types import SimpleNamespace

    from clorg.train.runs import RunFolder

    folder = tmp_path / f"{encoder}-{method}-{final}"
    (folder / "checkpoints").mkdir(parents=True)
    for e in kept:
        (folder / "checkpoints" / f"encoder_e{e:04d}.pt").touch()
    return SimpleNamespace(config={"encoder": encoder, "method": method}, final_epoch=final, folder=folder,
                           files=RunFolder(folder))


def test_the_supervised_resnet18_is_analysed_at_the_authors_epoch_120(tmp_path):
    # the `paper` profile: 600 supervised epochs, a snapshot every 10, so epoch 120 is kept
    assert extract.analysed_features_epoch(_run_folder(tmp_path, "resnet18", "supervised", 600, (110, 120, 600))) == 120
    # a run that trained fewer than 120 epochs is read at its last
    assert extract.analysed_features_epoch(_run_folder(tmp_path, "resnet18", "supervised", 40, (40,))) == 40
    assert extract.analysed_features_epoch(_run_folder(tmp_path, "resnet18", "supervised", 120, (120,))) == 120
    # the ViT's supervised run (the authors: 600) and every contrastive run are read at their last epoch
    assert extract.analysed_features_epoch(_run_folder(tmp_path, "vit", "supervised", 600, (120, 600))) == 600
    assert extract.analysed_features_epoch(_run_folder(tmp_path, "resnet18", "moco_queue", 1200, (120, 1200))) == 1200


def test_a_run_without_the_authors_snapshot_names_checkpoint_every(tmp_path):
    run_ = _run_folder(tmp_path, "resnet18", "supervised", 600, (100, 125, 600))
    with pytest.raises(ValueError, match="did not keep that snapshot: set train.checkpoint_every to a divisor of 120"):
        extract.analysed_features_epoch(run_)


def test_every_chapter_reads_the_analysed_epoch(tmp_path, monkeypatch):
    """profile_features (what t-SNE, the heads and the near-duplicates read) takes the supervised run at the
    authors' epoch. A 2-epoch run stands in for 600: the authors' epoch is moved to 1 for this test only."""
    from clorg.core import paper

    cfg = load_profile("smoke", {**TINY, "train.supervised_epochs": 2, "train.checkpoint_every": 1,
                                 "train.methods": ["supervised"]})
    data = choose_profile_dataset(cfg)
    monkeypatch.setenv("CLORG_RUNS", str(tmp_path))
    run(cfg, RunSpec("resnet18", "supervised", "cosine"), data=data, runs_root=tmp_path, progress=False)
    monkeypatch.setattr(paper, "SUPERVISED_RESNET18_EPOCH", 1)
    [only] = extract.profile_features(cfg, data, random_init=False)  # what t-SNE maps: no random init
    assert (only.method, only.epoch) == ("supervised", 1)
    assert not list(tmp_path.rglob("features_e0000.npz"))  # the random initialisation was not extracted
    sl, ri = extract.profile_features(cfg, data)
    assert (sl.method, sl.epoch, ri.epoch) == ("supervised", 1, 0)
    assert find([sl, ri], encoder="resnet18", method="supervised") is sl
