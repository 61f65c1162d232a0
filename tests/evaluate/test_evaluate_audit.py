"""The self-audit: a healthy model passes every check; broken models fail the right ones.

Models: the adversarially trained test asset ``cifar_resnet10_sat_bn`` (healthy), the same
model behind a non-differentiable input quantisation (gradient masking), the same model with
dropout left in train mode (randomized), and small toys that break one check each.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

import nofrost
from nofrost.data import load_dataset, stratified_subset
from nofrost.evaluate import evaluate
from nofrost.evaluate import audit
from nofrost.evaluate.audit import CHECKS, run_audit
from nofrost.evaluate.result import EvaluationResult

ASSET = Path(__file__).resolve().parents[1] / "assets" / "cifar_resnet10_sat_bn"
N = 100
EPS = 8 / 255
NEW_CHECKS = {"attack-monotonicity", "black-box-vs-white-box", "large-eps", "random-noise", "output-range",
              "dynamic-forward"}


@pytest.fixture(scope="module")
def data():
    return stratified_subset(load_dataset("cifar10-mini", "test"), N)


@pytest.fixture(scope="module")
def healthy():
    return nofrost.load_model(ASSET)


def batch_of(data):
    return data.images.float() / 255, data.targets


def by_name(result):
    return {check.check: check for check in result.audit}


def so_far(**fields):
    """The result a check sees while the evaluation runs (as evaluate() builds it)."""
    return EvaluationResult.from_json({"clean": float("nan"), "attacks": {}, **fields})


def show(title, result):
    print(f"\n{title}: clean {result.clean:.3f}, attacks {result.accuracies}")
    for check in result.audit:
        print(f"  {'ok  ' if check.passed else 'FAIL'} {check.check}: {check.detail}")


class Quantized(nn.Module):
    """The model behind ``round(x · 31) / 31``: 32 grey levels, and a zero input gradient
    everywhere (no straight-through estimator): the classic gradient-masking "defense"."""

    def __init__(self, base: nn.Module):
        super().__init__()
        self.base = base

    def forward(self, x):
        return self.base(torch.round(x * 31) / 31)


class InputDropout(nn.Module):
    """The model with dropout on its input, left in train mode: a randomized model."""

    def __init__(self, base: nn.Module):
        super().__init__()
        self.base = base
        self.drop = nn.Dropout(0.1)

    def forward(self, x):
        return self.base(self.drop(x))


def test_registry_has_all_checks():
    assert NEW_CHECKS | {"input-gradients", "deterministic-logits"} == set(CHECKS.names())


def test_healthy_model_passes_every_check(healthy, data):
    result = evaluate(healthy, data, attacks="pgd,square:queries=100", eps=EPS)
    show("healthy sat_bn", result)
    checks = by_name(result)
    assert set(checks) == set(CHECKS.names())
    assert all(check.passed for check in checks.values()), checks
    assert "%" in checks["random-noise"].detail  # the noise accuracy is reported
    assert not any(c.detail.startswith("skipped") for c in checks.values())


def test_masked_gradients_fail_gradient_and_black_box_checks(healthy, data):
    result = evaluate(Quantized(healthy), data, attacks="pgd,square:queries=200", eps=EPS)
    show("quantized input (masked gradients)", result)
    checks = by_name(result)
    assert not checks["input-gradients"].passed
    assert not checks["black-box-vs-white-box"].passed
    assert "masked" in checks["black-box-vs-white-box"].detail
    assert checks["deterministic-logits"].passed


def test_randomized_model_fails_determinism(healthy, data):
    model = InputDropout(healthy)
    model.train()
    healthy.eval()  # only the dropout is in train mode
    x, y = batch_of(data)
    fields = {"eps": EPS, "attacks": {}, "model": "runs/my model", "dataset": "cifar10-mini", "split": "train"}
    check = CHECKS.get("deterministic-logits")(model, (x[:32], y[:32]), so_far(**fields))
    print(check)
    assert not check.passed
    assert "randomized" in check.detail
    # The exact command to run next, on this model and data (the path quoted for the shell).
    assert ("nofrost evaluate 'runs/my model' --data cifar10-mini --split train "
            "--attacks autoattack:version=rand") in check.detail
    l2 = CHECKS.get("deterministic-logits")(model, (x[:32], y[:32]), so_far(**{**fields, "norm": "l2", "eps": 0.5}))
    assert "--norm l2 --eps 0.5 --attacks autoattack:version=rand" in l2.detail
    assert model.training and not healthy.training  # modes untouched


def test_black_box_check_logic():
    check = CHECKS.get("black-box-vs-white-box")
    ok = check(None, None, so_far(**{"n": 100, "attacks": {"pgd": 0.23, "square:queries=400": 0.30}}))
    close = check(None, None, so_far(**{"n": 100, "attacks": {"pgd": 0.23, "rays:queries=400": 0.21}}))
    bad = check(None, None, so_far(**{"n": 100, "attacks": {"pgd": 0.30, "cw-linf": 0.28, "square": 0.20}}))
    skipped = check(None, None, so_far(**{"n": 100, "attacks": {"pgd": 0.3, "autoattack": 0.2}}))
    assert ok.passed and close.passed and skipped.passed
    assert "skipped" in skipped.detail
    assert not bad.passed
    assert "CW∞" in bad.detail and "Square-5000" in bad.detail


def test_random_noise_stronger_than_the_attacks_fails(healthy, data):
    x, y = batch_of(data)
    check = CHECKS.get("random-noise")
    # A (fake) attack accuracy far above what plain noise leaves: the attack must be broken.
    broken = check(healthy, (x, y), so_far(**{"eps": EPS, "attacks": {"pgd": 0.6}}))
    fine = check(healthy, (x, y), so_far(**{"eps": EPS, "attacks": {"pgd": 0.2}}))
    print(broken.detail)
    assert not broken.passed and fine.passed
    assert "uniform noise" in fine.detail


def test_large_eps_fails_for_an_unattackable_model():
    class Constant(nn.Module):
        def forward(self, x):
            return torch.tensor([5.0, 0.0, 0.0]) + 0 * x.sum(dim=(1, 2, 3))[:, None]

    x = torch.rand(8, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    y = torch.zeros(8, dtype=torch.long)
    check = CHECKS.get("large-eps")(Constant(), (x, y), so_far(eps=EPS, attacks={}))
    print(check.detail)
    assert not check.passed
    assert "8/8" in check.detail and "ε=0.5 " in check.detail
    # Under ℓ2 the large radius is half the image box's diameter, 0.5·√192 ≈ 6.93.
    l2 = CHECKS.get("large-eps")(Constant(), (x, y), so_far(eps=0.5, norm="l2", attacks={}))
    assert not l2.passed and "ε=6.928" in l2.detail and "--norm l2 --eps 6.928" in l2.detail


class Stateful(nn.Module):
    """Linear two-class model that turns into a constant after ``switch`` gradient calls:
    a stateful "defense" against which a later, stronger attack does worse."""

    def __init__(self, switch: int):
        super().__init__()
        self.w = torch.randn(3 * 8 * 8, generator=torch.Generator().manual_seed(0))
        self.switch = switch
        self.grad_calls = 0

    def forward(self, x):
        if x.requires_grad:
            self.grad_calls += 1
        z0 = (x - 0.5).flatten(1) @ self.w + 0.05 * self.w.abs().sum()
        if self.grad_calls > self.switch:
            z0 = torch.full_like(z0, 100.0) + 0 * z0
        return torch.stack([z0, torch.zeros_like(z0)], dim=1)


def test_monotonicity_fails_when_more_steps_do_worse():
    few = audit.MONOTONICITY_STEPS[0]
    x = torch.full((16, 3, 8, 8), 0.5) + 0.01 * torch.rand(16, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    y = torch.zeros(16, dtype=torch.long)
    check = CHECKS.get("attack-monotonicity")
    broken = check(Stateful(switch=few), (x, y), so_far(**{"eps": 0.1, "attacks": {}}))
    print(broken.detail)
    assert not broken.passed
    assert "steps" in broken.detail
    fine = check(Stateful(switch=10**9), (x, y), so_far(**{"eps": 0.1, "attacks": {}}))
    assert fine.passed


def test_audit_leaves_model_and_rng_alone(data):
    model = nofrost.load_model(ASSET)  # a fresh copy: train-mode BN updates its statistics
    x, y = batch_of(data)
    state = torch.random.get_rng_state()
    model.train()
    flags = [p.requires_grad for p in model.parameters()]
    result = run_audit(model, (x[:40], y[:40]), so_far(eps=EPS, n=40, attacks={}))
    assert all(m.training for m in model.modules())
    assert [p.requires_grad for p in model.parameters()] == flags
    assert all(p.grad is None for p in model.parameters())
    assert torch.equal(torch.random.get_rng_state(), state)
    assert len(result) == len(CHECKS.names())


class Softmaxed(nn.Module):
    """The model with a final softmax (or log-softmax): probabilities instead of logits."""

    def __init__(self, base: nn.Module, log: bool):
        super().__init__()
        self.base, self.log = base, log

    def forward(self, x):
        z = self.base(x)
        return z.log_softmax(1) if self.log else z.softmax(1)


class GradientInForward(nn.Module):
    """An "adaptive" defense: one gradient step on its own input inside the forward."""

    def __init__(self, base: nn.Module):
        super().__init__()
        self.base = base

    def forward(self, x):
        with torch.enable_grad():
            probe = x.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(self.base(probe).logsumexp(1).sum(), probe)
        return self.base((x - 0.01 * grad.sign()).clamp(0, 1))


class CallCounter(nn.Module):
    """A forward that depends on how often it ran: a counter buffer shifts the logits."""

    def __init__(self, base: nn.Module):
        super().__init__()
        self.base = base
        self.register_buffer("calls", torch.zeros(()))

    def forward(self, x):
        self.calls += 1
        return self.base(x) + 0.1 * self.calls


@pytest.mark.parametrize("log", [False, True])
def test_probabilities_instead_of_logits_fail_the_output_range_check(healthy, data, log):
    x, y = batch_of(data)
    check = CHECKS.get("output-range")(Softmaxed(healthy, log), (x[:32], y[:32]), so_far(**{"eps": EPS, "attacks": {}}))
    assert not check.passed and ("log-probabilities" if log else "probabilities (rows") in check.detail
    assert CHECKS.get("output-range")(healthy, (x[:32], y[:32]), so_far(**{"eps": EPS})).passed


def test_a_forward_that_computes_gradients_or_counts_calls_fails(healthy, data):
    x, y = batch_of(data)
    batch = (x[:32], y[:32])
    adaptive = CHECKS.get("dynamic-forward")(GradientInForward(healthy), batch, so_far(eps=EPS))
    assert not adaptive.passed and "the forward computes gradients (torch grad())" in adaptive.detail
    counter = CallCounter(healthy)
    counted = CHECKS.get("dynamic-forward")(counter, batch, so_far(eps=EPS))
    assert not counted.passed and "changes the model's state (calls)" in counted.detail
    assert "two calls with the same random draws differ" in counted.detail
    assert float(counter.calls) == 0  # the check put the state back
    # Randomness alone (dropout in train mode, the same draws twice) is not a dynamic forward.
    randomized = InputDropout(healthy).train()
    healthy.eval()
    assert CHECKS.get("dynamic-forward")(randomized, batch, so_far(eps=EPS)).passed
    assert CHECKS.get("dynamic-forward")(healthy, batch, so_far(eps=EPS)).passed
