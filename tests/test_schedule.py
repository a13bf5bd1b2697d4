"""Learning-rate schedules: ``paper-literal`` against torch's own schedulers built with the authors'
arguments, ``paper-compressed`` mapping their curve onto a run, and our ``cosine``."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from torch.optim.lr_scheduler import CosineAnnealingWarmRestarts, LambdaLR, SequentialLR

from clorg.core import paper
from clorg.train.schedule import cosine_factor, epoch_rates, lr_at, paper_compressed_lr, paper_literal_lr

CONTRASTIVE = dict(base=1e-5 * 700 / 256, warmup=150, restart=2400, eta_min=1e-2, epochs=3000)
SUPERVISED = dict(base=5e-6 * 1000 / 256, warmup=100, restart=600, eta_min=1e-4, epochs=2000)


def torch_rates(base: float, warmup: int, restart: int, eta_min: float, epochs: int) -> list[float]:
    """The rate of each epoch under the authors' construction, read from the optimizer (stepped per epoch)."""
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.AdamW([param], lr=base)
    scheduler = SequentialLR(opt, [LambdaLR(opt, lambda x: min(1, 1e-3 + x * (1 - 1e-3) / warmup)),
                                   CosineAnnealingWarmRestarts(opt, T_0=restart, T_mult=2, eta_min=eta_min)],
                             milestones=[warmup])
    rates = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's notes on the epoch argument SequentialLR passes
        for _ in range(epochs):
            rates.append(opt.param_groups[0]["lr"])
            opt.step()
            scheduler.step()
    return rates


@pytest.mark.parametrize("setting", [CONTRASTIVE, SUPERVISED], ids=["contrastive", "supervised"])
def test_paper_literal_equals_torchs_schedulers_epoch_by_epoch(setting):
    s = setting
    expected = torch_rates(s["base"], s["warmup"], s["restart"], s["eta_min"], s["epochs"])
    ours = [paper_literal_lr(e, s["base"], s["warmup"], s["restart"], s["eta_min"]) for e in range(s["epochs"])]
    for epoch, (a, b) in enumerate(zip(ours, expected)):
        assert a == pytest.approx(b, rel=1e-12, abs=0), epoch
    # the range crosses the first warm restart: back to the base rate at warmup + T_0
    restart = s["warmup"] + s["restart"]
    assert restart < s["epochs"]
    assert ours[restart] == pytest.approx(s["base"], rel=1e-12)
    assert ours[restart - 1] == pytest.approx(s["eta_min"], rel=1e-3)  # the end of the first period
    assert ours[0] == pytest.approx(s["base"] * 1e-3, rel=1e-12)


def test_paper_literal_climbs_towards_eta_min():
    # their eta_min lies above the base rate, so the "annealing" raises the rate: ~4.0e-3 at epoch 1200
    base = 1e-5 * 700 / 256
    assert paper_literal_lr(1200, base, 150, 2400, 1e-2) == pytest.approx(4.04e-3, rel=1e-3)
    assert paper_literal_lr(300, base, 150, 2400, 1e-2) > base
    rates = [paper_literal_lr(e, base, 150, 2400, 1e-2) for e in range(150, 2550)]
    assert all(b >= a for a, b in zip(rates, rates[1:]))


def test_lr_at_paper_literal_uses_the_epoch_of_the_step_and_restart_epochs():
    base, spe = 2e-4, 7
    kw = dict(schedule="paper-literal", base_lr=base, steps_per_epoch=spe, epochs=50, warmup_epochs=5)
    for kind, restart in (("contrastive", 20), ("supervised", 11)):
        eta_min = paper.SCHEDULE[kind]["eta_min"]
        for step in range(50 * spe):
            expected = paper_literal_lr(step // spe, base, 5, restart, eta_min)
            assert lr_at(step, kind=kind, restart_epochs=restart, **kw) == expected, (kind, step)
        # constant within an epoch (stepped once per epoch, like theirs)
        assert len({lr_at(s, kind=kind, restart_epochs=restart, **kw) for s in range(30 * spe, 31 * spe)}) == 1
    # T_0 comes from restart_epochs, not from the run's length
    assert lr_at(25 * spe, kind="contrastive", restart_epochs=20, **kw) == pytest.approx(base, rel=1e-12)
    assert lr_at(25 * spe, kind="contrastive", restart_epochs=40, **kw) != pytest.approx(base, rel=1e-6)
    with pytest.raises(ValueError, match="paper-literal needs restart_epochs"):
        lr_at(0, kind="contrastive", **kw)


def test_paper_compressed_maps_the_authors_curve_onto_the_run():
    base = paper.base_lr("contrastive")
    assert base == pytest.approx(2.734375e-5)
    steps = 2400  # two steps per epoch of their analysed 1200
    rates = [paper_compressed_lr(s, steps, "contrastive") for s in range(steps)]
    assert rates[0] == pytest.approx(2.73e-5 * 1e-3, rel=2e-3)
    assert rates[0] == pytest.approx(base * 1e-3, rel=1e-12)
    # warm-up: 150 of their 1200 epochs, the same share of the run's steps
    first_full = next(s for s, r in enumerate(rates) if r >= base * (1 - 1e-12))
    assert first_full / steps == pytest.approx(150 / 1200)
    assert all(b >= a for a, b in zip(rates, rates[1:]))
    assert rates[-1] == pytest.approx(4.0e-3, rel=2e-2)
    assert rates[-1] == paper_literal_lr(1199, base, 150, 2400, 1e-2)
    # whatever the run's length, and through lr_at (which ignores the profile's rate and warm-up)
    for total in (37, 1200, 5000):
        kw = dict(schedule="paper-compressed", base_lr=1.0, steps_per_epoch=total, epochs=1, warmup_epochs=0)
        assert lr_at(0, kind="contrastive", **kw) == pytest.approx(base * 1e-3)
        last = lr_at(total - 1, kind="contrastive", **kw)
        assert last == paper_literal_lr((total - 1) * 1200 // total, base, 150, 2400, 1e-2)
        assert last == pytest.approx(4.0e-3, rel=2e-2 if total >= 1200 else 6e-2)
    # the supervised curve: their base rate, 100 of 600 epochs of warm-up
    sup = [paper_compressed_lr(s, 600, "supervised") for s in range(600)]
    assert sup[0] == pytest.approx(paper.base_lr("supervised") * 1e-3)
    assert sup[100] == pytest.approx(paper.base_lr("supervised")) and sup[99] < sup[100]


def test_cosine_schedule():
    kw = dict(schedule="cosine", base_lr=1.0, steps_per_epoch=10, epochs=10, warmup_epochs=2, kind="contrastive")
    assert lr_at(0, **kw) == pytest.approx(1e-3)
    assert lr_at(20, **kw) == pytest.approx(1.0)  # end of warm-up
    assert lr_at(60, **kw) == pytest.approx(0.5)  # half-way through the cosine
    assert lr_at(99, **kw) < 0.01
    assert cosine_factor(10, 100, 20) == pytest.approx(1e-3 + (1 - 1e-3) * 0.5)
    assert cosine_factor(100, 100, 0) == pytest.approx(0.0, abs=1e-15)
    assert cosine_factor(40, 100, 0) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.4)))
    with pytest.raises(ValueError, match="unknown schedule 'linear'"):
        lr_at(0, **{**kw, "schedule": "linear"})


def test_epoch_rates_follow_the_resolved_run():
    run = {"schedule": "paper-literal", "lr_per_256": 1e-5, "batch_size": 700, "epochs": 12, "warmup_epochs": 3,
           "method": "moco_queue", "restart_epochs": 4}
    rates = epoch_rates(run, steps_per_epoch=5)
    assert rates == [paper_literal_lr(e, 1e-5 * 700 / 256, 3, 4, 1e-2) for e in range(12)]
    cosine = epoch_rates({**run, "schedule": "cosine"}, steps_per_epoch=5)
    assert len(cosine) == 12 and cosine[0] == pytest.approx(1e-5 * 700 / 256 * 1e-3)


def test_the_control_is_a_cosine_peaking_at_the_authors_final_rate():
    """cosine-authors-peak: the cosine shape (warm-up, then decay to 0) at the rate the authors' curve reaches
    at its last analysed epoch: their curve at epoch 1,199 (SPEC 8: base 1e-5 x 700 / 256, warm-up 150,
    T_0 2400, eta_min 1e-2; about 4.0e-3)."""
    S, per_epoch = 400, 10
    final = paper_literal_lr(1199, 1e-5 * 700 / 256, 150, 2400, 1e-2)
    assert 3.9e-3 < final < 4.1e-3
    control = [lr_at(s, schedule="cosine-authors-peak", base_lr=5e-4, steps_per_epoch=per_epoch, epochs=40,
                     warmup_epochs=3, kind="contrastive") for s in range(S)]
    cosine = [lr_at(s, schedule="cosine", base_lr=5e-4, steps_per_epoch=per_epoch, epochs=40, warmup_epochs=3,
                    kind="contrastive") for s in range(S)]
    assert max(control) == pytest.approx(final, rel=1e-12)  # the profile's rate is not used
    assert control[30] == pytest.approx(final) and control[0] == pytest.approx(final * paper.WARMUP_START)
    # the same shape as cosine, 8x larger
    assert all(c == pytest.approx(x * final / 5e-4, rel=1e-9) for c, x in zip(control, cosine))
    assert max(control) / max(cosine) == pytest.approx(8.07, abs=0.01)
