"""Losses against brute force, the MoCo queue and momentum, and DDP on 2 gloo processes against 1."""

from __future__ import annotations

import inspect
import math
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp
import torch.nn.functional as F

from clorg.train.distributed import GlobalBatchNorm, buffer_sync_off, convert_batchnorm
from clorg.train.methods import MocoQueue, SimCLR, Supervised, nt_xent_loss, queue_contrastive_loss
from clorg.train.models import build_encoder


def unit(n, d, seed):
    return F.normalize(torch.randn(n, d, generator=torch.Generator().manual_seed(seed)), dim=1)


def test_queue_loss_equals_brute_force():
    q, k_now, k_past, tau = unit(6, 16, 0), unit(6, 16, 1), unit(20, 16, 2), 0.2
    keys = torch.cat([k_now, k_past])
    expected = 0.0
    for i in range(6):
        logits = [float(q[i] @ keys[j]) / tau for j in range(len(keys))]
        expected += -(logits[i] - math.log(sum(math.exp(v) for v in logits)))
    expected = 2 * tau * expected / 6
    assert queue_contrastive_loss(q, k_now, k_past, tau).item() == pytest.approx(expected, rel=1e-5)
    # with keys of several ranks, query i of rank r has its positive at r * B + i
    k_all = torch.cat([unit(6, 16, 3), k_now])
    assert queue_contrastive_loss(q, k_all, k_past, tau, offset=6).item() == pytest.approx(
        queue_contrastive_loss(q, torch.cat([k_now, k_all[:6]]), k_past, tau).item(), rel=1e-6)


def test_nt_xent_equals_brute_force():
    z1, z2, tau = unit(5, 8, 0), unit(5, 8, 1), 0.5
    z = torch.cat([z1, z2])
    expected = 0.0
    for i in range(10):
        pos = (i + 5) % 10
        logits = {j: float(z[i] @ z[j]) / tau for j in range(10) if j != i}
        expected += -(logits[pos] - math.log(sum(math.exp(v) for v in logits.values())))
    assert nt_xent_loss(z1, z2, z1, z2, tau).item() == pytest.approx(expected / 10, rel=1e-5)


def tiny_encoder():
    return build_encoder("resnet18", width_scale=0.125, in_channels=3, image_size=8)


def test_moco_queue_fills_fifo_and_momentum_follows_the_encoder():
    torch.manual_seed(0)
    moco = MocoQueue(tiny_encoder(), global_batch=4, queue_size=10, momentum=0.9)
    assert moco.queue1.shape[0] == 4 * (math.ceil(10 / 4) - 1)  # 3 batches in all, the current one first
    x = torch.randn(4, 3, 8, 8)
    base = [p.detach().clone() for p in moco.encoder.parameters()]
    with torch.no_grad():
        for p in moco.encoder.parameters():
            p.add_(1.0)  # make the encoders differ so the EMA is visible
    old_m = [p.detach().clone() for p in moco.momentum_encoder.parameters()]
    moco((x, x.flip(3)))
    for p_m, old, b in zip(moco.momentum_encoder.parameters(), old_m, base):
        torch.testing.assert_close(p_m, 0.9 * old + 0.1 * (b + 1.0))
    assert int(moco.queue_filled) == 4
    moco((x, x))
    moco((x, x))
    assert int(moco.queue_filled) == 8 and int(moco.queue_ptr) == 4  # capacity 8: wrapped around
    assert all(not p.requires_grad for p in moco.momentum_encoder.parameters())


def test_supervised_loss_is_label_smoothed_cross_entropy():
    torch.manual_seed(0)
    sup = Supervised(tiny_encoder(), num_classes=3, label_smoothing=0.1)
    x, y = torch.randn(6, 3, 8, 8), torch.tensor([0, 1, 2, 0, 1, 2])
    sup.eval()
    expected = F.cross_entropy(sup.classifier(sup.encoder(x)), y, label_smoothing=0.1)
    torch.testing.assert_close(sup((x,), y), expected)


def test_global_batch_norm_is_batch_norm_with_one_process():
    bn = torch.nn.BatchNorm2d(4)
    bn.weight.data.uniform_()
    converted = convert_batchnorm(torch.nn.Sequential(bn))[0]
    assert isinstance(converted, GlobalBatchNorm)
    x = torch.randn(5, 4, 3, 3)
    torch.testing.assert_close(converted(x), torch.nn.BatchNorm2d(4).load_state_dict(bn.state_dict()) and bn(x))


# --- DistributedDataParallel on CPU: 2 gloo processes against 1 process, same global batch -------------

GLOBAL_BATCH, STEPS = 8, 3


def make_method(name):
    torch.manual_seed(0)
    enc = tiny_encoder()
    if name == "moco_queue":
        return MocoQueue(enc, global_batch=GLOBAL_BATCH, queue_size=24)
    if name == "simclr":
        return SimCLR(enc)
    return Supervised(enc, num_classes=4)


def fixed_batches():
    g = torch.Generator().manual_seed(1)
    return [(torch.randn(GLOBAL_BATCH, 3, 8, 8, generator=g), torch.randn(GLOBAL_BATCH, 3, 8, 8, generator=g),
             torch.randint(0, 4, (GLOBAL_BATCH,), generator=g)) for _ in range(STEPS)]


def train_steps(model, method, batches, rank, world):
    # plain SGD: Adam divides by sqrt(v), which turns float32 noise in near-zero gradients into
    # full-size steps and would hide whether the gradients themselves agree
    opt = torch.optim.SGD([p for p in method.parameters() if p.requires_grad], lr=0.01)
    b = GLOBAL_BATCH // world
    losses = []
    for x1, x2, y in batches:
        sl = slice(rank * b, (rank + 1) * b)
        views = (x1[sl],) if method.augmentation == "supervised" else (x1[sl], x2[sl])
        loss = model(views, y[sl])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.detach())
    return losses


def test_the_buffer_sync_keyword_is_the_one_the_installed_ddp_accepts():
    """torch 2.11 (the GPU machine's) knows only broadcast_buffers; from 2.13 on it is forward_sync_buffers."""
    class Ddp211:  # the parameters of torch 2.11's DistributedDataParallel that matter here
        def __init__(self, module, device_ids=None, output_device=None, dim=0, broadcast_buffers=True):
            pass

    class Ddp213(Ddp211):
        def __init__(self, module, device_ids=None, broadcast_buffers=True, forward_sync_buffers=None):
            pass

    assert buffer_sync_off(Ddp211) == {"broadcast_buffers": False}
    assert buffer_sync_off(Ddp213) == {"forward_sync_buffers": False}
    installed = inspect.signature(torch.nn.parallel.DistributedDataParallel).parameters
    assert buffer_sync_off() == ({"forward_sync_buffers": False} if "forward_sync_buffers" in installed
                                 else {"broadcast_buffers": False})  # whichever torch runs the tests


def ddp_worker(rank, world, port, name, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.distributed.init_process_group("gloo", rank=rank, world_size=world)
    torch.set_num_threads(1)
    method = convert_batchnorm(make_method(name))
    model = torch.nn.parallel.DistributedDataParallel(method, **buffer_sync_off())
    losses = train_steps(model, method, fixed_batches(), rank, world)
    total = torch.stack(losses)
    torch.distributed.all_reduce(total)
    if rank == 0:
        torch.save({"state": method.state_dict(), "losses": total / world}, out)
    torch.distributed.destroy_process_group()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("name", ["moco_queue", "simclr", "supervised"])
def test_ddp_two_processes_match_one_process(name, tmp_path):
    out = tmp_path / "ddp.pt"
    mp.spawn(ddp_worker, args=(2, free_port(), name, str(out)), nprocs=2, join=True)
    torch.set_num_threads(1)
    single = make_method(name)
    losses = torch.stack(train_steps(single, single, fixed_batches(), 0, 1))
    ddp = torch.load(out, weights_only=True)
    # float32 sums in another order (two halves, then an all-reduce): agreement to ~1e-5 is exact enough
    torch.testing.assert_close(ddp["losses"], losses, rtol=1e-4, atol=1e-5)
    for key, value in single.state_dict().items():
        torch.testing.assert_close(ddp["state"][key], value, rtol=1e-4, atol=1e-5, msg=key)
