"""The little that training under DistributedDataParallel needs beyond DDP itself.

* gathers across ranks, with and without gradient, so contrastive losses see every rank's keys and
  negatives and an N-process run matches one process with the same global batch;
* a batch norm whose statistics are taken over the global batch on any backend (torch's
  SyncBatchNorm runs on GPUs only, and the CPU test of DDP uses gloo).

With one process (no process group) every function here is the identity.
"""

from __future__ import annotations

import inspect

import torch
import torch.distributed as dist
from torch import nn


def rank_and_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def buffer_sync_off(ddp=nn.parallel.DistributedDataParallel) -> dict:
    """DDP's keyword that stops it copying rank 0's buffers over the others' at each forward (each rank
    keeps its own; :func:`convert_batchnorm`'s global statistics make them equal anyway). torch 2.13 named it
    ``forward_sync_buffers`` and deprecated ``broadcast_buffers``; the GPU machine's torch 2.11 knows only
    the old name, so the keyword is chosen by what ``ddp`` accepts. (The old one also skips the copy of the
    buffers at start-up, which changes nothing here: every rank starts from the same seed.)"""
    if "forward_sync_buffers" in inspect.signature(ddp).parameters:
        return {"forward_sync_buffers": False}
    return {"broadcast_buffers": False}


@torch.no_grad()
def gather_no_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenation of ``x`` over ranks, in rank order (keys, labels: nothing flows back)."""
    _, world = rank_and_world()
    if world == 1:
        return x
    parts = [torch.empty_like(x) for _ in range(world)]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts)


class _GatherWithGrad(torch.autograd.Function):
    # Every rank's loss depends on every rank's embeddings, so the gradient of the gathered tensor
    # is summed over ranks and each rank keeps the slice of its own rows.
    @staticmethod
    def forward(ctx, x):
        rank, world = rank_and_world()
        ctx.rank, ctx.rows = rank, x.shape[0]
        parts = [torch.empty_like(x) for _ in range(world)]
        dist.all_gather(parts, x.contiguous())
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad):
        grad = grad.contiguous()
        dist.all_reduce(grad)
        return grad[ctx.rank * ctx.rows:(ctx.rank + 1) * ctx.rows]


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenation of ``x`` over ranks through which gradients flow back to every rank."""
    return x if rank_and_world()[1] == 1 else _GatherWithGrad.apply(x)


class _AllReduceSum(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        x = x.clone()
        dist.all_reduce(x)
        return x

    @staticmethod
    def backward(ctx, grad):
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


class GlobalBatchNorm(nn.modules.batchnorm._BatchNorm):
    """Batch norm over the global batch of all ranks, on any device and backend.

    In training mode with several processes, the per-channel sum and sum of squares are all-reduced
    (with gradient), so the result equals a single process's BatchNorm on the concatenated batch.
    Otherwise it is exactly ``BatchNorm1d``/``BatchNorm2d``.
    """

    def _check_input_dim(self, x):
        if x.dim() not in (2, 3, 4):
            raise ValueError(f"expected 2-D, 3-D or 4-D input, got {x.dim()}-D")

    def forward(self, x):
        _, world = rank_and_world()
        if not self.training or world == 1:
            return super().forward(x)
        dims = [0] + list(range(2, x.dim()))
        shape = [1, -1] + [1] * (x.dim() - 2)
        xf = x.float()
        count = torch.tensor([x.numel() / x.shape[1]], device=x.device, dtype=torch.float32)
        stats = _AllReduceSum.apply(torch.cat([xf.sum(dims), (xf * xf).sum(dims), count]))
        c = x.shape[1]
        n = stats[-1]
        mean = stats[:c] / n
        var = (stats[c:2 * c] / n - mean * mean).clamp_min(0)
        if self.track_running_stats:
            with torch.no_grad():
                m = self.momentum if self.momentum is not None else 0.1
                self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                self.running_var.mul_(1 - m).add_(var.detach() * n / (n - 1), alpha=m)
                self.num_batches_tracked += 1
        y = (xf - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y.to(x.dtype)


def convert_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every BatchNorm1d/2d in ``module`` by a :class:`GlobalBatchNorm` with the same state."""
    if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
        new = GlobalBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                              module.track_running_stats)
        state = module.state_dict()
        new.load_state_dict(state)
        if module.affine:  # a frozen layer (the momentum encoder's) stays frozen
            new.weight.requires_grad_(module.weight.requires_grad)
            new.bias.requires_grad_(module.bias.requires_grad)
        if state:  # stay on the device of the layer it replaces
            new.to(next(iter(state.values())).device)
        new.train(module.training)
        return new
    for name, child in module.named_children():
        setattr(module, name, convert_batchnorm(child))
    return module
