"""bf16 attacks are not weaker than fp32 ones on the same model (attack.precision / --bf16).

Runs on CPU autocast here (the same bf16 rounding of activations as on CUDA); the GPU figure
comes from benchmarks/attack_precision.py. Of the images the SAT test model classifies
correctly, PGD in bf16 must leave at most as many robust as fp32 does, up to the noise of
which borderline images happen to flip (2 of the ~35 here).
"""

import torch

from nofrost.attacks import pgd_attack


def robust_mask(model, x, y, precision):
    torch.manual_seed(0)
    x_adv = pgd_attack(model, x, y, 8 / 255, steps=10, precision=precision)
    assert (x_adv - x).abs().max() <= 8 / 255
    with torch.no_grad():
        return model(x_adv).argmax(1) == y


def test_bf16_pgd_is_as_strong_as_fp32(robust):
    model, x, y, _ = robust
    fp32 = robust_mask(model, x, y, "fp32")
    bf16 = robust_mask(model, x, y, "bf16")
    assert 0 < fp32.sum() < len(y)  # the comparison means something: some images fall, some hold
    assert bf16.sum() <= fp32.sum() + 2
    assert (bf16 != fp32).sum() <= 0.2 * len(y)
