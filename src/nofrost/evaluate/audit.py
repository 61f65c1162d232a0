"""Self-audit of an evaluation: checks that catch the classic ways an evaluation goes weak.

Each check is registered by name, takes ``(model, batch, result)`` (``batch = (x, y)`` is the
first evaluated batch, ``result`` the :class:`~nofrost.evaluate.result.EvaluationResult` so far,
with its threat model and the attacks' accuracies) and returns an
:class:`~nofrost.evaluate.result.AuditCheck`; a failed check's detail says what it likely means
and what to run next. The checks (after Carlini et al., "On Evaluating
Adversarial Robustness", 2019, and Athalye et al., "Obfuscated Gradients Give a False Sense of
Security", ICML 2018):

* ``attack-monotonicity``: more PGD steps or restarts must not leave *more* examples robust;
* ``black-box-vs-white-box``: black-box attacks (square, rays) must not beat white-box ones;
* ``large-eps``: at ε = 0.5 PGD must bring accuracy to (near) zero;
* ``input-gradients``: input gradients are finite and non-zero;
* ``random-noise``: uniform noise in the ε-ball must not hurt more than the attacks;
* ``deterministic-logits``: the model gives the same logits twice;
* ``output-range``: the model returns logits, not probabilities or log-probabilities;
* ``dynamic-forward``: the forward computes no gradients, changes no state, and gives the same
  output on every call for the same random draws.

The checks that run attacks use the first :data:`AUDIT_EXAMPLES` clean-correct examples of
the batch and small budgets, so the whole audit costs a few seconds for a small CIFAR model
on a CPU; their randomness comes from fixed-seed generators (reproducible, and the caller's
global RNG is untouched).
"""

from __future__ import annotations

import math
import shlex
import sys
from typing import Any, Callable

import torch
from torch import Tensor, nn

from nofrost import attacks as attack_registry
from nofrost.attacks._common import attack_mode
from nofrost.attacks._core import Ball
from nofrost.evaluate.result import AuditCheck, EvaluationResult
from nofrost.evaluate.suites import column_group, display_name
from nofrost.registry import Registry

Check = Callable[[nn.Module, tuple[Tensor, Tensor], EvaluationResult], AuditCheck]
CHECKS: Registry[Check] = Registry("audit check")

AUDIT_EXAMPLES = 32  # clean-correct examples the attack-based checks run on
MONOTONICITY_STEPS = (5, 25)  # PGD steps: fewer vs more
MONOTONICITY_RESTARTS = (1, 3)  # PGD restarts (at the fewer steps): fewer vs more
LARGE_EPS = 0.5  # ℓ∞; under ℓ2 the same "any image can be turned mid-grey" radius is 0.5·√D
LARGE_EPS_STEPS = 10


def run_audit(model: nn.Module, batch: tuple[Tensor, Tensor], result: EvaluationResult) -> list[AuditCheck]:
    return [CHECKS.get(name)(model, batch, result) for name in CHECKS.names()]


def _entry(check: str, passed: bool, detail: str) -> AuditCheck:
    return AuditCheck(check, bool(passed), detail)


# ---- helpers for the checks that run attacks ------------------------------------------------


def _eps(result: EvaluationResult) -> float:
    return float(result.eps)


def _norm(result: EvaluationResult) -> str:
    return result.norm


def _command(result: EvaluationResult, attacks: str, eps: float | None = None, n: int | None = None) -> str:
    """The exact ``nofrost evaluate`` command that runs ``attacks`` on this result's model and
    data (MODEL / DATA where the result does not name them), in its threat model, at ``eps``
    if given."""
    parts = ["nofrost evaluate", shlex.quote(result.model or "MODEL"),
             "--data", shlex.quote(result.dataset or "DATA")]
    if result.split not in ("", "test"):
        parts += ["--split", result.split]
    if n is not None:
        parts += ["--n", str(n)]
    if _norm(result) != "linf":
        parts += ["--norm", _norm(result)]
    if eps is not None or _norm(result) != "linf":
        parts += ["--eps", f"{_eps(result) if eps is None else eps:.4g}"]
    return " ".join(parts + ["--attacks", shlex.quote(attacks)])


def _pool(batch: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
    """The part of the batch the checks look at: enough to find AUDIT_EXAMPLES correct ones."""
    x, y = batch
    return x[: 4 * AUDIT_EXAMPLES], y[: 4 * AUDIT_EXAMPLES]


def _correct(model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
    """Which examples the model classifies correctly, in eval mode (as evaluate() measures)."""
    with attack_mode(model), torch.no_grad():
        return model(x).argmax(1) == y


def _clean_correct(model: nn.Module, batch: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
    """The first AUDIT_EXAMPLES examples of the batch that the model classifies correctly."""
    x, y = _pool(batch)
    index = _correct(model, x, y).nonzero().squeeze(1)[:AUDIT_EXAMPLES]
    return x[index], y[index]


def _robust_count(
    model: nn.Module, x: Tensor, y: Tensor, eps: float, seed: int, norm: str, **kwargs: Any
) -> int:
    """How many of (x, y) PGD with ``kwargs`` fails to fool (fixed-seed random starts)."""
    generator = torch.Generator().manual_seed(seed)
    x_adv = attack_registry.get("pgd")(model, x, y, eps, generator=generator, norm=norm, **kwargs)
    return int(_correct(model, x_adv, y).sum())


def _slack(n: int) -> int:
    """Examples two runs may differ by from chance alone: 2 examples or 3%, whichever is more."""
    return max(2, math.ceil(0.03 * n))


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


# ---- checks -----------------------------------------------------------------------------------


@CHECKS.register("attack-monotonicity")
def attack_monotonicity(model: nn.Module, batch: tuple[Tensor, Tensor], result: EvaluationResult) -> AuditCheck:
    """A stronger attack (more PGD steps, more restarts) must not leave more examples robust.

    If it does, the loss surface the attack sees is noisy, randomized or masked, or the model
    changes between calls: every reported accuracy is then suspect.
    """
    name = "attack-monotonicity"
    eps = _eps(result)
    x, y = _clean_correct(model, batch)
    n = len(y)
    if n == 0 or eps == 0:
        reason = "ε = 0" if eps == 0 else "no clean-correct example in the first batch"
        return _entry(name, True, f"skipped: {reason}")
    few, many = MONOTONICITY_STEPS
    one, several = MONOTONICITY_RESTARTS
    robust_few = _robust_count(model, x, y, eps, seed=0, norm=_norm(result), steps=few, restarts=one)
    robust_many = _robust_count(model, x, y, eps, seed=1, norm=_norm(result), steps=many, restarts=one)
    robust_restarts = _robust_count(model, x, y, eps, seed=2, norm=_norm(result), steps=few, restarts=several)
    slack = _slack(n)
    counts = (
        f"robust after PGD-{few}: {robust_few}/{n}, PGD-{many}: {robust_many}/{n}, "
        f"PGD-{few}×{several} restarts: {robust_restarts}/{n} (first {n} clean-correct examples, "
        f"ε={eps:.4g})"
    )
    problems = []
    if robust_many > robust_few + slack:
        problems.append(f"{many} steps leave more examples robust than {few}")
    if robust_restarts > robust_few + slack:
        problems.append(f"{several} restarts leave more examples robust than {one}")
    if not problems:
        return _entry(name, True, f"more steps/restarts are not weaker: {counts}")
    return _entry(
        name,
        False,
        f"{' and '.join(problems)}: {counts}. A stronger attack doing worse means the attack is "
        "not converging: the gradients are noisy, randomized or masked, or the model changes "
        "between calls (stateful defense, train-mode layers). Do not trust these accuracies; "
        "check the deterministic-logits and input-gradients checks and run attacks that do "
        "not rely on gradients or a single trajectory, e.g. "
        + _command(result, "pgd:steps=100:restarts=5,square:queries=5000"
                   + (",rays:queries=1000" if _norm(result) == "linf" else "")) + ".",
    )


@CHECKS.register("black-box-vs-white-box")
def black_box_vs_white_box(model: nn.Module, batch: tuple[Tensor, Tensor], result: EvaluationResult) -> AuditCheck:
    """Black-box attacks (square, rays) must not be clearly stronger than white-box ones.

    A white-box attack knows everything a black-box attack does plus the gradients; when the
    black-box attack wins clearly, the gradients are misleading (gradient masking).
    """
    name = "black-box-vs-white-box"
    accuracies = result.accuracies
    white = {label: acc for label, acc in accuracies.items() if column_group(label) == "white-box"}
    black = {label: acc for label, acc in accuracies.items() if column_group(label) == "black-box"}
    if not white or not black:
        return _entry(
            name,
            True,
            "skipped: needs at least one white-box and one black-box attack in the evaluation "
            "(e.g. --attacks pgd,square:queries=1000)",
        )
    best_white = min(white, key=white.get)
    best_black = min(black, key=black.get)
    n = result.n or 1
    gap = white[best_white] - black[best_black]
    summary = (
        f"strongest white-box {display_name(best_white)} {_pct(white[best_white])}, "
        f"strongest black-box {display_name(best_black)} {_pct(black[best_black])} (n={n})"
    )
    if gap * n <= _slack(n):
        return _entry(name, True, f"black-box attacks are not stronger than white-box ones: {summary}")
    return _entry(
        name,
        False,
        f"the black-box attack is clearly stronger than every white-box attack: {summary}. "
        "A gradient-free attack should not beat gradient attacks, so the gradients are "
        "probably masked or obfuscated (non-differentiable or randomized preprocessing, "
        "saturated softmax, float16 underflow): the white-box numbers overstate robustness. "
        "Report the worst-case accuracy rather than the white-box ones, check input-gradients, "
        "and run more black-box queries ("
        + _command(result, "pgd,square:queries=5000" + (",rays:queries=1000" if _norm(result) == "linf" else ""))
        + ") or attacks through a differentiable approximation of the non-differentiable part (BPDA).",
    )


@CHECKS.register("large-eps")
def large_eps(model: nn.Module, batch: tuple[Tensor, Tensor], result: EvaluationResult) -> AuditCheck:
    """At a huge radius (ℓ∞ ε = 0.5, ℓ2 ε = 0.5·√D: any image can be turned mid-grey) PGD
    must succeed."""
    name = "large-eps"
    x, y = _clean_correct(model, batch)
    n = len(y)
    if n == 0:
        return _entry(name, True, "skipped: no clean-correct example in the first batch")
    large = LARGE_EPS if _norm(result) == "linf" else LARGE_EPS * math.sqrt(x[0].numel())
    eps = max(large, _eps(result))
    robust = _robust_count(model, x, y, eps, seed=3, norm=_norm(result), steps=LARGE_EPS_STEPS)
    allowed = max(1, math.floor(0.05 * n))
    summary = f"PGD-{LARGE_EPS_STEPS} at ε={eps:g} leaves {robust}/{n} clean-correct examples robust"
    if robust <= allowed:
        return _entry(name, True, summary)
    return _entry(
        name,
        False,
        f"{summary}; it should be (near) 0, since at this radius the image content can be "
        "erased. The attack is not working: masked or zero gradients, a model that does not "
        "take [0, 1] images, or a broken loss. Check input-gradients, and run a black-box attack "
        f"at that radius ({_command(result, 'square:queries=1000', eps=eps, n=100)}): if it fools "
        "the model, the gradient attacks cannot be trusted.",
    )


@CHECKS.register("input-gradients")
def input_gradients(model: nn.Module, batch: tuple[Tensor, Tensor], result: EvaluationResult) -> AuditCheck:
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
def deterministic_logits(model: nn.Module, batch: tuple[Tensor, Tensor], result: EvaluationResult) -> AuditCheck:
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
        "transformation; treat these accuracies as upper bounds and run the EOT version of "
        f"AutoAttack: {_command(result, 'autoattack:version=rand')} "
        "(or add :eot_iter=20 to pgd and apgd-ce/apgd-dlr specs)."
    )
    return _entry("deterministic-logits", passed, detail)


@CHECKS.register("random-noise")
def random_noise(model: nn.Module, batch: tuple[Tensor, Tensor], result: EvaluationResult) -> AuditCheck:
    """Accuracy under random noise in the ε-ball (ℓ∞: uniform; ℓ2: a random direction of length
    ε): reported, and must not be below the attacks'.

    Random noise is the weakest possible attack; when it is *more* effective than the
    evaluated attacks, those attacks are broken.
    """
    name = "random-noise"
    eps = _eps(result)
    x, y = _pool(batch)
    n = len(y)
    if n == 0:
        return _entry(name, True, "skipped: empty batch")
    generator = torch.Generator().manual_seed(4)
    x_noisy = Ball(x, eps, _norm(result)).random_start(generator)
    clean = _correct(model, x, y)
    noisy = _correct(model, x_noisy, y) & clean  # as evaluate(): robust only if clean-correct
    noise_acc = noisy.float().mean().item()
    summary = (
        f"accuracy under {'uniform noise in [−ε, ε]' if _norm(result) == 'linf' else 'random noise of ℓ2 norm ε'} "
        f"(ε={eps:.4g}): {_pct(noise_acc)} "
        f"(clean {_pct(clean.float().mean().item())} on the first {n} examples)"
    )
    accuracies = result.accuracies
    if not accuracies:
        return _entry(name, True, summary)
    strongest = min(accuracies, key=accuracies.get)
    attacked = accuracies[strongest]
    summary += f"; strongest attack {display_name(strongest)}: {_pct(attacked)}"
    if (attacked - noise_acc) * n <= _slack(n):
        return _entry(name, True, summary)
    return _entry(
        name,
        False,
        f"{summary}. Random noise hurts the model more than every attack, so the attacks are "
        "failing (a wrong loss or labels, masked gradients, too small a step size, or an "
        "attack that does not run on the model's real inputs). Treat the attack accuracies as "
        "invalid; check input-gradients and large-eps, and run black-box attacks "
        "(" + _command(result, "square:queries=1000" + (",rays:queries=1000" if _norm(result) == "linf" else ""))
        + ").",
    )


@CHECKS.register("output-range")
def output_range(model: nn.Module, batch: tuple[Tensor, Tensor], result: EvaluationResult) -> AuditCheck:
    """The model must return logits, not probabilities or log-probabilities.

    Attacks put a softmax on top of the outputs (cross-entropy, DLR): on probabilities that
    softmax is nearly flat and the gradients nearly vanish, so every attack is weakened (the
    official AutoAttack code warns about the same thing in ``checks.check_range_output``).
    """
    name = "output-range"
    x, _ = _pool(batch)
    with attack_mode(model), torch.no_grad():
        out = model(x).float()
    if out.shape[1] < 2:
        return _entry(name, True, "skipped: fewer than 2 outputs")
    probabilities = bool(((out >= 0) & (out <= 1)).all()) and bool(((out.sum(1) - 1).abs() < 1e-3).all())
    log_probabilities = bool((out <= 0).all()) and bool((out.logsumexp(1).abs() < 1e-3).all())
    if not (probabilities or log_probabilities):
        return _entry(name, True, "the model returns logits (outputs are neither probabilities nor log-probabilities)")
    kind = "probabilities (rows in [0, 1] summing to 1)" if probabilities else "log-probabilities (rows whose exp sums to 1)"
    return _entry(
        name,
        False,
        f"the model returns {kind}, not logits: the attacks' losses apply a softmax of their own, "
        "which on these outputs is nearly flat, so the gradients nearly vanish and every attack is "
        "weaker than it should be. Remove the final softmax/log-softmax from the model's forward "
        "(or wrap it to return logits) and evaluate again.",
    )


_GRADIENT_CALLS = {("grad", "autograd/__init__.py"), ("backward", "autograd/__init__.py"), ("backward", "_tensor.py")}


@CHECKS.register("dynamic-forward")
def dynamic_forward(model: nn.Module, batch: tuple[Tensor, Tensor], result: EvaluationResult) -> AuditCheck:
    """The forward must be a fixed function: no gradients computed inside it, no state it
    changes, the same output on every call (for the same random draws).

    A forward that runs its own backward pass (an "adaptive" defense) or that depends on how
    often it was called (a counter, running statistics in train mode) is not the function the
    attacks differentiate, so their accuracies mean little (after the official AutoAttack
    code's ``checks.check_dynamic``).
    """
    name = "dynamic-forward"
    x = _pool(batch)[0][:8]
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    gradient_calls: list[str] = []

    def profile(frame: Any, event: str, arg: Any) -> None:
        code = frame.f_code
        if event == "call" and any(code.co_name == fn and code.co_filename.endswith(f) for fn, f in _GRADIENT_CALLS):
            gradient_calls.append(f"torch {code.co_name}()")

    outputs = []
    previous = sys.getprofile()
    sys.setprofile(profile)
    try:
        for _ in range(2):
            with torch.random.fork_rng(devices=[]), torch.no_grad():
                torch.manual_seed(0)  # the same random draws: only the model's own state differs
                outputs.append(model(x).float())
    finally:
        sys.setprofile(previous)
    changed = sorted(k for k, v in model.state_dict().items() if not torch.equal(v, state[k]))
    model.load_state_dict(state)  # leave the model as it was given
    gap = (outputs[0] - outputs[1]).abs().max().item()
    problems = []
    if gradient_calls:
        problems.append(f"the forward computes gradients ({', '.join(sorted(set(gradient_calls)))})")
    if changed:
        problems.append(f"the forward changes the model's state ({', '.join(changed[:3])}{', ...' if len(changed) > 3 else ''})")
    if gap > 1e-4 * max(1.0, outputs[0].abs().max().item()):
        problems.append(f"two calls with the same random draws differ by up to {gap:.3g}")
    if not problems:
        return _entry(name, True, "the forward is a fixed function of its input (no gradients, no state changes)")
    return _entry(
        name,
        False,
        f"{'; '.join(problems)}. Attacks differentiate one fixed function; a forward that adapts "
        "to its input's gradient or to how often it is called is not one, so these accuracies "
        "cannot be trusted. Evaluate in eval mode (model.eval()) without the adaptive part, or "
        "attack the whole defense adaptively (Tramer et al., 2020); black-box attacks give an "
        f"upper bound meanwhile ({_command(result, 'square:queries=5000')}).",
    )
