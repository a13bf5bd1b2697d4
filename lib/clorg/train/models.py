"""The encoders (paper SPEC, section 3): ResNet-18, ResNet-101 and a ViT, each with a 512-d output.

At ``width_scale=1`` each encoder is the authors' network (``imageComponent/models.py``), module for
module, so their checkpoints load with ``load_state_dict``:

- ``resnet18`` / ``resnet101``: torchvision's ResNet with a CIFAR stem — conv1 = 3x3, stride 1,
  padding 1 ('same'), with bias; no max-pool; ``fc = Linear(512 or 2048 -> out_dim)``.
- ``vit``: torchvision's ``VisionTransformer(image_size=32, patch_size=4, num_layers=16, num_heads=8,
  hidden_dim=512, mlp_dim=1536, dropout=0.2, attention_dropout=0.2)`` with ``heads = Linear(512 ->
  out_dim)`` (default init, as the authors' replacement head; torchvision's own head starts at zero).

``width_scale`` is the one size knob (the profiles' ``train.width_scale``):

- ResNets: every stage width 64/128/256/512 becomes ``round(w * scale)`` rounded to a multiple of 8
  (at least 8; multiples of 8 keep bf16/channels_last kernels on their fast paths). Depth is fixed.
- ViT: width *and* depth. ``hidden_dim = max(32, round(512 * scale) to a multiple of 8)``,
  ``mlp_dim = 3 * hidden_dim`` (the authors' ratio), 8 heads (always divides), ``num_layers =
  max(2, round(16 * scale))``. A width-only ViT at 1/8 scale would still run 16 layers, the slow part
  on a CPU; scaling both gives the tiny model the smoke profile needs.

Parameter counts (``parameter_table()``, 3 input channels, 32x32, out_dim 512; the authors' exact
construction gives the same counts as ``width_scale=1``, checked in ``tests/test_models.py``):

    encoder      scale 1.0   scale 0.25  scale 0.125      authors
    resnet18    11,431,552      766,240      209,040   11,431,552
    resnet101   43,541,632    2,938,528      807,248   43,541,632
    vit         42,363,904      742,528      124,224   42,363,904

(ViT at 0.25: 128 hidden, 4 layers; at 0.125: 64 hidden, 2 layers.) Forward of a batch of 256 32x32
images, eval mode, 2 CPU cores: resnet18 0.11 s / 0.19 s and vit 0.06 s / 0.27 s at scale 0.125 /
0.25 (one rough measurement).

Other inputs. ``in_channels=1`` (grayscale datasets) replaces the first convolution. ResNets accept
any image size (global average pooling); the ViT is built for one ``image_size``, with patch size the
largest of 4, 2, 1 that divides it and leaves at least a 4x4 token grid (32 -> 4, 28 -> 4 (7x7),
8 -> 2 (4x4)). Forward has no data-dependent Python control flow, so ``torch.compile`` traces it in
one graph; ``channels_last`` and bf16 autocast need nothing special.
"""

from __future__ import annotations

import math
import numbers

import torchvision
from torch import nn
from torchvision.models import VisionTransformer
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

from ..core.config import ENCODERS

# Blocks per stage, as torchvision's resnet18 / resnet101.
_RESNET_LAYOUT = {"resnet18": (BasicBlock, (2, 2, 2, 2)), "resnet101": (Bottleneck, (3, 4, 23, 3))}
_RESNET_WIDTHS = (64, 128, 256, 512)
# The authors' ViT (width_scale=1).
_VIT = dict(patch_size=4, num_layers=16, num_heads=8, hidden_dim=512, mlp_dim=1536, dropout=0.2,
            attention_dropout=0.2)


# ============================================== ResNet ===============================================

class CifarResNet(ResNet):
    """torchvision's ResNet with a CIFAR stem and scalable stage widths.

    Subclassing keeps torchvision's blocks, ``_make_layer``, ``forward`` and parameter names (so the
    authors' state dicts load, and ``isinstance(m, ResNet)`` holds as their MoCo code expects);
    ``__init__`` is rewritten because torchvision's hard-codes the widths 64/128/256/512.
    """

    def __init__(self, block, layers, widths, in_channels: int, out_dim: int):
        nn.Module.__init__(self)
        # The attributes torchvision's _make_layer reads.
        self._norm_layer = nn.BatchNorm2d
        self.inplanes, self.dilation, self.groups, self.base_width = widths[0], 1, 1, 64

        self.conv1 = nn.Conv2d(in_channels, widths[0], kernel_size=3, stride=1, padding=1, bias=True)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.Identity()  # 32x32 inputs: no early down-sampling
        self.layer1 = self._make_layer(block, widths[0], layers[0])
        self.layer2 = self._make_layer(block, widths[1], layers[1], stride=2)
        self.layer3 = self._make_layer(block, widths[2], layers[2], stride=2)
        self.layer4 = self._make_layer(block, widths[3], layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(widths[3] * block.expansion, out_dim)

        # torchvision's init. conv1 and fc keep PyTorch's default init, as in the authors' code,
        # where they are fresh modules swapped into an initialised torchvision ResNet.
        for m in self.modules():
            if isinstance(m, nn.Conv2d) and m is not self.conv1:
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)


def _round8(x: float, minimum: int = 8) -> int:
    return max(minimum, 8 * round(x / 8))


def _resnet(name: str, width_scale: float, in_channels: int, out_dim: int) -> CifarResNet:
    block, layers = _RESNET_LAYOUT[name]
    widths = [_round8(w * width_scale) for w in _RESNET_WIDTHS]
    return CifarResNet(block, layers, widths, in_channels, out_dim)


# ================================================ ViT ================================================

def vit_patch_size(image_size: int) -> int:
    """Largest of 4, 2, 1 that divides ``image_size`` and leaves at least 4 patches per side."""
    return next(p for p in (4, 2, 1) if image_size % p == 0 and image_size // p >= 4)


def _vit(width_scale: float, in_channels: int, image_size: int, out_dim: int) -> VisionTransformer:
    hidden = _round8(_VIT["hidden_dim"] * width_scale, minimum=32)
    cfg = dict(_VIT, hidden_dim=hidden, mlp_dim=3 * hidden,
               num_layers=max(2, round(_VIT["num_layers"] * width_scale)))
    cfg["patch_size"] = vit_patch_size(image_size)
    model = VisionTransformer(image_size=image_size, **cfg)
    if in_channels != 3:  # torchvision hard-codes RGB; rebuild the stem with torchvision's init
        p = cfg["patch_size"]
        model.conv_proj = nn.Conv2d(in_channels, hidden, kernel_size=p, stride=p)
        nn.init.trunc_normal_(model.conv_proj.weight, std=math.sqrt(1 / (in_channels * p * p)))
        nn.init.zeros_(model.conv_proj.bias)
    model.heads = nn.Linear(hidden, out_dim)  # a bare Linear, as the authors: output is out_dim-d
    return model


# ============================================== public ===============================================

def build_encoder(name: str, *, width_scale: float = 1.0, in_channels: int = 3, image_size: int = 32,
                  out_dim: int = 512) -> nn.Module:
    """An encoder mapping float images (B, in_channels, image_size, image_size) to (B, out_dim).

    ``width_scale=1`` is the paper's network; see the module docstring for what smaller scales
    shrink. The returned module has an ``out_dim`` attribute.
    """
    if name not in ENCODERS:
        raise ValueError(f"unknown encoder {name!r}; valid names: {', '.join(ENCODERS)}")
    if (not isinstance(width_scale, numbers.Real) or isinstance(width_scale, bool)
            or not math.isfinite(width_scale) or width_scale <= 0):
        raise ValueError(f"width_scale must be a finite number > 0, got {width_scale!r}")
    for arg, value, low in (("in_channels", in_channels, 1), ("image_size", image_size, 8),
                            ("out_dim", out_dim, 1)):
        if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < low:
            raise ValueError(f"{arg} must be an integer >= {low}, got {value!r}")

    if name == "vit":
        model = _vit(width_scale, int(in_channels), int(image_size), int(out_dim))
    else:
        model = _resnet(name, width_scale, int(in_channels), int(out_dim))
    model.out_dim = int(out_dim)
    return model


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters (shared tensors counted once)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def authors_encoder(name: str, out_dim: int = 512) -> nn.Module:
    """The authors' construction, verbatim from ``imageComponent/models.py`` (3 channels, 32x32)."""
    if name == "vit":
        model = VisionTransformer(image_size=32, **_VIT)
        model.heads = nn.Linear(512, out_dim)
        return model
    if name not in _RESNET_LAYOUT:
        raise ValueError(f"unknown encoder {name!r}; valid names: {', '.join(ENCODERS)}")
    model = getattr(torchvision.models, name)(weights=None)
    model.conv1 = nn.Conv2d(3, 64, (3, 3), padding="same")
    model.maxpool = nn.Identity()
    model.fc = nn.Linear(model.fc.in_features, out_dim)
    return model


def parameter_table(scales=(1.0, 0.25, 0.125)) -> list[dict]:
    """Trainable parameters of every encoder at each scale (3 channels, 32x32, 512-d output),
    with the authors' count alongside. Builds each model once (about 3 s in all on a CPU)."""
    rows = []
    for name in ENCODERS:
        row = {"encoder": name}
        for s in scales:
            row[s] = count_parameters(build_encoder(name, width_scale=s))
        row["authors"] = count_parameters(authors_encoder(name))
        rows.append(row)
    return rows
