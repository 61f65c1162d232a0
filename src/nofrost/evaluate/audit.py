"""Self-audit of an evaluation: checks that catch the classic ways an evaluation goes weak.

Each check is registered by name and returns ``{"check", "passed", "detail"}``; a failed check
is printed as a warning saying what it likely means and what to run next. More checks (attack
strength monotonicity, black-box vs white-box, large-ε sanity, random noise) are added here as
one function each.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import Tensor, nn

from nofrost.registry import Registry

AuditCheck = Callable[[nn.Module, tuple[Tensor, Tensor], dict[str, Any]], dict[str, Any]]
CHECKS: Registry[AuditCheck] = Registry("audit check")


def run_audit(model: nn.Module, batch: tuple[Tensor, Tensor], result: dict[str, Any]) -> list[dict[str, Any]]:
    return [CHECKS.get(name)(model, batch, result) for name in CHECKS.names()]


def _entry(check: str, passed: bool, detail: str) -> dict[str, Any]:
    return {"check": check, "passed": bool(passed), "detail": detail}


@CHECKS.register("input-gradients")
def input_gradients(model: nn.Module, batch: tuple[Tensor, Tensor], result: dict[str, Any]) -> dict[str, Any]:
    """Gradients of the loss w.r.t. the input must be finite and not all zero.

    Zero or NaN gradients (saturated softmax, non-differentiable preprocessing, float16
    underflow) make every gradient attack fail silently: robustness then looks high but is not.
    """
    x, y = batch
    x = x.clone().requires_grad_(True)
    with torch.enable_grad():
        loss = nn.functional.cross_entropy(model(x), y)
        (grad,) = torch.autograd.grad(loss, x)
    finite = bool(torch.isfinite(grad).all())
    zero_fraction = (grad.flatten(1).abs().sum(1) == 0).float().mean().item()
    passed = finite and zero_fraction < 0.5
    detail = (
        f"input gradients finite and non-zero on {100 * (1 - zero_fraction):.0f}% of examples"
        if passed
        else f"input gradients are {'not finite' if not finite else 'zero'} on many examples "
        f"({100 * zero_fraction:.0f}% zero): gradient attacks cannot work, so their accuracies "
        "overstate robustness (gradient masking). Run black-box attacks (square) to check."
    )
    return _entry("input-gradients", passed, detail)


@CHECKS.register("deterministic-logits")
def deterministic_logits(model: nn.Module, batch: tuple[Tensor, Tensor], result: dict[str, Any]) -> dict[str, Any]:
    """The model must give the same logits twice; randomized defenses need EOT attacks."""
    x, _ = batch
    with torch.no_grad():
        first, second = model(x), model(x)
    gap = (first - second).abs().max().item()
    passed = gap <= 1e-4 * max(1.0, first.abs().max().item())
    detail = (
        "the model gives the same logits for the same input"
        if passed
        else f"logits differ by up to {gap:.3g} between two identical calls: the model is randomized "
        "(dropout in train mode? a stochastic defense?). Attacks against it need expectation over "
        "transformation; treat these accuracies as upper bounds."
    )
    return _entry("deterministic-logits", passed, detail)
