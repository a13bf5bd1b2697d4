"""clorg.train.models against the authors' construction from torchvision, plus shape/argument/gradient checks."""

import re

import pytest
import torch
import torchvision
from torch import nn
from torchvision.models import VisionTransformer

import clorg.train.models as models
from clorg.train.models import ENCODERS, build_encoder, count_parameters, parameter_table, vit_patch_size

SMALL_SCALES = [0.25, 0.125]


def authors(name):
    """imageComponent/models.py (ResnetCifar, ViTCifar), written out here independently of clorg."""
    if name == "vit":
        model = VisionTransformer(image_size=32, patch_size=4, num_layers=16, num_heads=8, hidden_dim=512,
                                  mlp_dim=1536, dropout=0.2, attention_dropout=0.2)
        model.heads = nn.Linear(512, 512)
        return model
    model = getattr(torchvision.models, name)(weights=None)
    model.conv1 = nn.Conv2d(3, 64, (3, 3), padding="same")
    model.maxpool = nn.Identity()
    model.fc = nn.Linear(model.fc.in_features, 512)
    return model


def images(b=2, c=3, size=32, seed=0):
    return torch.randn(b, c, size, size, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def table():
    return {row["encoder"]: row for row in parameter_table()}


# --------------------------------------------- the authors' networks ---------------------------------

@pytest.mark.parametrize("name", ENCODERS)
def test_full_scale_is_the_authors_network(name):
    torch.manual_seed(0)
    ref, ours = authors(name), build_encoder(name)
    assert count_parameters(ours) == count_parameters(ref)
    # Same names and shapes, so the authors' checkpoints load; then the same function.
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in ref.state_dict().items()}
    ours.load_state_dict(ref.state_dict())
    x = images()
    with torch.no_grad():
        out = ours.eval()(x)
        assert out.shape == (2, 512)
        torch.testing.assert_close(out, ref.eval()(x))
    assert isinstance(ours, torchvision.models.ResNet if name != "vit" else VisionTransformer)


def test_parameter_table_matches_authors_and_docstring(table):
    documented = {}
    for line in models.__doc__.splitlines():
        m = re.match(r"\s+(\w+)\s+([\d,]+)\s+([\d,]+)\s+([\d,]+)\s+([\d,]+)\s*$", line)
        if m:
            documented[m[1]] = [int(v.replace(",", "")) for v in m.groups()[1:]]
    assert set(documented) == set(ENCODERS)
    for name, row in table.items():
        assert row["authors"] == row[1.0] == count_parameters(authors(name))
        assert documented[name] == [row[1.0], row[0.25], row[0.125], row["authors"]]


@pytest.mark.parametrize("name", ENCODERS)
def test_parameters_shrink_monotonically_with_scale(name, table):
    row = table[name]
    assert row[0.125] < row[0.25] < row[1.0]


# ---------------------------------------------------- shapes ------------------------------------------

@pytest.mark.parametrize("size", [8, 28, 32])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("scale", SMALL_SCALES)
@pytest.mark.parametrize("name", ENCODERS)
def test_output_shape(name, scale, channels, size):
    model = build_encoder(name, width_scale=scale, in_channels=channels, image_size=size).eval()
    with torch.no_grad():
        out = model(images(3, channels, size))
    assert out.shape == (3, 512) and out.dtype == torch.float32
    assert torch.isfinite(out).all()
    assert model.out_dim == 512


@pytest.mark.parametrize("name", ENCODERS)
def test_other_out_dim_and_channels(name):
    model = build_encoder(name, width_scale=0.125, in_channels=2, out_dim=64).eval()
    assert model(images(2, 2)).shape == (2, 64)


def test_scaled_widths():
    r18 = build_encoder("resnet18", width_scale=0.125)
    assert (r18.conv1.out_channels, r18.fc.in_features) == (8, 64)
    assert r18.conv1.bias is not None and r18.conv1.kernel_size == (3, 3) and r18.conv1.stride == (1, 1)
    assert isinstance(r18.maxpool, nn.Identity)
    r101 = build_encoder("resnet101", width_scale=0.25)
    assert (r101.conv1.out_channels, r101.fc.in_features) == (16, 512)
    vit = build_encoder("vit", width_scale=0.25)
    assert (vit.hidden_dim, vit.mlp_dim, len(vit.encoder.layers), vit.patch_size) == (128, 384, 4, 4)
    assert vit.encoder.layers[0].self_attention.num_heads == 8
    tiny = build_encoder("vit", width_scale=0.01)  # floors: 32 hidden, 2 layers
    assert (tiny.hidden_dim, len(tiny.encoder.layers)) == (32, 2)


@pytest.mark.parametrize("size, patch", [(8, 2), (9, 1), (10, 2), (12, 2), (16, 4), (28, 4), (32, 4), (30, 2)])
def test_vit_patch_size(size, patch):
    assert vit_patch_size(size) == patch
    assert build_encoder("vit", width_scale=0.125, image_size=size).patch_size == patch


# ---------------------------------------------------- errors ------------------------------------------

@pytest.mark.parametrize("name, kwargs, word", [
    ("resnet50", {}, "resnet18, resnet101, vit"),
    ("resnet18", {"width_scale": 0}, "width_scale"),
    ("vit", {"width_scale": -0.5}, "width_scale"),
    ("vit", {"width_scale": float("nan")}, "width_scale"),
    ("resnet18", {"in_channels": 0}, "in_channels"),
    ("vit", {"in_channels": 1.5}, "in_channels"),
    ("resnet101", {"image_size": 7}, "image_size"),
    ("vit", {"image_size": 4}, "image_size"),
    ("vit", {"out_dim": 0}, "out_dim"),
])
def test_bad_arguments(name, kwargs, word):
    with pytest.raises(ValueError, match=re.escape(word)):
        build_encoder(name, **kwargs)


# ------------------------------------------------ training behaviour ----------------------------------

@pytest.mark.parametrize("name", ENCODERS)
def test_gradients_reach_every_parameter(name):
    torch.manual_seed(0)
    model = build_encoder(name, width_scale=0.125).train()
    model(images(4)).square().mean().backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname
        assert p.grad.abs().sum() > 0, pname


@pytest.mark.parametrize("name", ENCODERS)
def test_eval_is_deterministic(name):
    model = build_encoder(name, width_scale=0.125).eval()
    x = images(4)
    with torch.no_grad():
        torch.testing.assert_close(model(x), model(x), rtol=0, atol=0)


def test_count_parameters_skips_frozen():
    model = build_encoder("resnet18", width_scale=0.125)
    total = count_parameters(model)
    model.fc.requires_grad_(False)
    assert count_parameters(model) == total - model.fc.weight.numel() - model.fc.bias.numel()


@pytest.mark.parametrize("name", ["resnet18", "vit"])
def test_channels_last_autocast_and_compile(name):
    model = build_encoder(name, width_scale=0.125).eval()
    x = images(4)
    with torch.no_grad():
        ref = model(x)
        cl = model.to(memory_format=torch.channels_last)(x.to(memory_format=torch.channels_last))
        torch.testing.assert_close(cl, ref, rtol=1e-4, atol=1e-4)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert model(x).dtype == torch.bfloat16
        # fullgraph=True fails on any graph break (data-dependent Python control flow); the eager
        # backend checks tracing without paying for code generation.
        compiled = torch.compile(model, backend="eager", fullgraph=True)
        torch.testing.assert_close(compiled(x), cl)


def test_an_unknown_encoder_is_refused_with_the_valid_names():
    with pytest.raises(ValueError, match="unknown encoder 'resnet50'; valid names: resnet18, resnet101, vit"):
        build_encoder("resnet50")
