"""bf16 attacks are not weaker than fp32 ones on the same model (attack.precision / --bf16).

Runs on CPU autocast here (the same bf16 rounding of activations as on CUDA); the GPU figure
comes from benchmarks/attack_precision.py. Of the images the SAT test model classifies
correctly, PGD in bf16 must leave at most as many robust as fp32 does, up to the noise of
which borderline images happen to flip (2 of the ~35 here).
"""

import torch

from nofrost.attacks import pgd_attack
from nofrost.attacks.autoattack import run_autoattack


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


def test_bf16_search_keeps_fp32_verdicts():
    """With precision="bf16" only the attacks' passes are bf16; the clean pass and the verdict
    on every returned point are the fp32 model's. Here class 1 wins by 1e-3 in fp32 whatever the
    input, a margin that bf16 logits near 10 (spacing 0.0625) round away, making class 0 win."""
    x = torch.full((4, 3, 4, 4), 0.5)
    y = torch.ones(4, dtype=torch.long)
    linear = torch.nn.Linear(48, 3)
    with torch.no_grad():
        linear.weight.fill_(10 / 24)  # logit 10 at x = 0.5 for every class
        linear.bias.copy_(torch.tensor([0.0, 1e-3, 0.0]))
    model = torch.nn.Sequential(torch.nn.Flatten(), linear).eval()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        assert bool((model(x).argmax(1) != y).all())  # the premise: bf16 gets it wrong
    x_adv, masks = run_autoattack(model, x, y, 8 / 255, version="custom", attacks=["apgd-ce"], steps=3,
                                  seed=0, precision="bf16")
    assert bool(masks["clean"].all()) and bool(masks["apgd-ce"].all())
    with torch.no_grad():
        assert bool((model(x_adv).argmax(1) == y).all())


def test_attacks_weaker_in_bf16_run_in_fp32_when_bf16_is_asked():
    """FAB-T and Square search worse with bf16 passes (benchmarks/results/attack_precision_cpu.md),
    so a bf16 request runs them in fp32: their result is bit for bit the fp32 one, alone and
    inside AutoAttack; attacks that keep their strength in bf16 do run in bf16."""
    from nofrost.attacks import attack_info, get

    assert not attack_info("fab-t").bf16 and not attack_info("square").bf16 and attack_info("apgd-ce").bf16
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                                torch.nn.Linear(8 * 6 * 6, 10)).eval()
    x = torch.rand(6, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        y = model(x).argmax(1)
    for name, options in (("fab-t", {"steps": 3, "n_target_classes": 2}), ("square", {"queries": 20})):
        runs = [get(name)(model, x, y, 8 / 255, generator=torch.Generator().manual_seed(2), precision=p, **options)
                for p in ("fp32", "bf16")]
        assert torch.equal(runs[0], runs[1]), name
    plan = {"fab-t": {"steps": 3, "n_target_classes": 2}, "square": {"queries": 20}}
    aa = [run_autoattack(model, x, y, 8 / 255, version="custom", attacks=plan, seed=0, precision=p)[0]
          for p in ("fp32", "bf16")]
    assert torch.equal(aa[0], aa[1])
    pgd = [get("pgd")(model, x, y, 8 / 255, steps=3, generator=torch.Generator().manual_seed(2), precision=p)
           for p in ("fp32", "bf16")]
    assert not torch.equal(pgd[0], pgd[1])  # bf16 does change the attacks that keep it
