"""Machinery shared by all attacks: model state, gradients, projection, precision, validation.

Every attack in this package follows the same discipline:

* :func:`attack_mode` puts the model into the state an attack needs (eval mode, parameters
  frozen) and restores *exactly* what was there before, also when the attack raises. A
  training loop that calls an attack must find its model as it left it.
* Gradients are taken with :func:`input_gradient` (``torch.autograd.grad`` w.r.t. the input
  only), so the parameters' ``.grad`` fields are never touched.
* Inputs are validated up front with clear messages (in the spirit of the Adversarial
  Robustness Toolbox), because the most common failure of robustness evaluations is a silent
  misuse: normalised images, ε given on the 0-255 scale, labels from the wrong dataset.
"""

from __future__ import annotations

import contextlib
import math
import numbers
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor, nn

PRECISIONS: tuple[str, ...] = ("fp32", "bf16")

#: The threat models: ``"linf"`` (ε is the largest change of one pixel value) and ``"l2"``
#: (ε is the Euclidean length of the whole perturbation); see :class:`~nofrost.attacks._core.Ball`.
NORMS: tuple[str, ...] = ("linf", "l2")


# --------------------------------------------------------------------------------------------
# Model state
# --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def attack_mode(model: nn.Module, *, train_mode: bool = False) -> Iterator[nn.Module]:
    """Put ``model`` into the attack state for the duration of the ``with`` block.

    Inside the block every parameter has ``requires_grad=False`` (the attack only needs
    gradients w.r.t. the input; building the parameter graph would waste time and memory) and
    the model is in eval mode, unless ``train_mode=True``: then every submodule keeps its
    current mode, because training-time attacks may be configured to attack the model as it is
    trained (e.g. batch statistics in BatchNorm, as in Madry et al.'s reference training code).
    Note that in train mode, forward passes of the attack update BatchNorm running statistics,
    exactly as the training forward passes do; buffers are not restored.

    On exit (normal or by exception) every submodule's ``training`` flag and every parameter's
    ``requires_grad`` flag are set back to their values on entry. The flags are assigned
    directly rather than via ``Module.train()``, because ``train()`` recurses into children
    and would overwrite mixed per-submodule modes (e.g. a frozen, eval-mode backbone inside a
    training model), and because some libraries override ``train()`` with extra logic.
    """
    modes = [(module, module.training) for module in model.modules()]
    grad_flags = [(param, param.requires_grad) for param in model.parameters()]
    try:
        if not train_mode:
            model.eval()
        for param, _ in grad_flags:
            param.requires_grad_(False)
        yield model
    finally:
        for module, training in modes:
            module.training = training
        for param, requires_grad in grad_flags:
            param.requires_grad_(requires_grad)


# --------------------------------------------------------------------------------------------
# Gradients, projection, random numbers
# --------------------------------------------------------------------------------------------


def input_gradient(loss: Tensor, x: Tensor) -> Tensor:
    """d loss / d x via ``torch.autograd.grad``: parameters' ``.grad`` stay untouched."""
    (grad,) = torch.autograd.grad(loss, x)
    return grad


def expected_input_gradient(
    model: nn.Module,
    x: Tensor,
    objective: Callable[[Tensor], Tensor],
    precision_ctx: contextlib.AbstractContextManager[Any],
    eot_iter: int = 1,
    logits: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """``(logits, value, grad)``: ``grad`` = d ``objective(model(x)).sum()`` / dx, averaged over
    ``eot_iter`` forward/backward passes (Expectation over Transformation, Athalye et al. 2018,
    for randomized models); ``logits`` and ``value`` are the last pass's, as in the authors'
    AutoAttack code. ``x`` is a leaf that requires grad; ``logits``, if given, are a forward
    pass of ``x`` already made, used as the first pass.
    """
    grad: Tensor | None = None
    for i in range(eot_iter):
        if i > 0 or logits is None:
            with precision_ctx:
                logits = model(x)
        value = objective(logits)
        g = input_gradient(value.sum(), x)
        grad = g if grad is None else grad + g
    assert grad is not None and logits is not None
    return logits, value, grad / eot_iter if eot_iter > 1 else grad


def linf_bounds(x: Tensor, eps: float) -> tuple[Tensor, Tensor]:
    """Per-pixel bounds ``(lo, hi)`` of the ℓ∞ ε-ball around ``x`` intersected with [0, 1].

    Computing ``x ± eps`` in x's dtype rounds ``eps`` itself to that dtype first, which can put
    a bound several ulps outside the ball (far more than 1e-6 in bf16/fp16). So the bounds are
    computed in float64 and, where rounding them to x's dtype moved them outward, pulled one
    ulp back toward ``x``: ``|x_adv - x| <= eps`` then holds exactly, not approximately.
    Computing the bounds once per attack also keeps the projection in the step loop one clamp.
    """
    wide = torch.float32 if x.device.type == "mps" else torch.float64  # MPS has no float64
    xw = x.to(wide)
    lo_w = (xw - eps).clamp_(min=0.0)
    hi_w = (xw + eps).clamp_(max=1.0)
    lo = lo_w.to(x.dtype)
    hi = hi_w.to(x.dtype)
    lo = torch.where(lo.to(wide) < lo_w, torch.nextafter(lo, x), lo)
    hi = torch.where(hi.to(wide) > hi_w, torch.nextafter(hi, x), hi)
    return lo, hi


def _random_device(generator: torch.Generator | None, device: torch.device) -> torch.device:
    # Random numbers must be drawn on the generator's device; a CPU generator with a CUDA batch
    # draws on the CPU and copies (once per restart, outside the step loop).
    return generator.device if generator is not None else device


def gaussian_like(x: Tensor, generator: torch.Generator | None) -> Tensor:
    """Standard normal noise with x's shape, dtype and device, drawn from ``generator``."""
    noise = torch.randn(
        x.shape, generator=generator, device=_random_device(generator, x.device), dtype=x.dtype
    )
    return noise.to(x.device)


def random_ints(
    high: int, shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device
) -> Tensor:
    """Uniform ints in [0, high) of ``shape`` drawn from ``generator`` (on its device), on ``device``."""
    ints = torch.randint(0, high, shape, generator=generator, device=_random_device(generator, device))
    return ints.to(device)


def uniform_like(x: Tensor, low: float, high: float, generator: torch.Generator | None) -> Tensor:
    """Uniform noise in [low, high) with x's shape, dtype and device, drawn from ``generator``."""
    u = torch.rand(
        x.shape, generator=generator, device=_random_device(generator, x.device), dtype=x.dtype
    )
    return (u * (high - low) + low).to(x.device)


def random_targets(
    y: Tensor, num_classes: int, generator: torch.Generator | None = None
) -> Tensor:
    """A target class for each label, uniformly among the ``num_classes - 1`` classes ≠ y.

    ``(y + k) mod K`` with ``k`` uniform in {1, …, K-1} is a bijection onto the other classes,
    so the targets are exactly uniform and never equal ``y`` (the PGD^T attack of the NoFrost
    paper, Wang et al. 2022, attacks toward such a random wrong class).
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, numbers.Integral):
        raise ValueError(f"num_classes must be an int, got {num_classes!r}")
    if num_classes < 2:
        raise ValueError(f"random targets need at least 2 classes, got num_classes={num_classes}")
    check_labels(y, None, what="y")
    check_labels_in_range(y, int(num_classes), what="y")
    offset = torch.randint(
        1,
        int(num_classes),
        y.shape,
        generator=generator,
        device=_random_device(generator, y.device),
        dtype=y.dtype,
    ).to(y.device)
    return (y + offset) % int(num_classes)


# --------------------------------------------------------------------------------------------
# Precision
# --------------------------------------------------------------------------------------------


def autocast(
    precision: str = "fp32", device: torch.device | str = "cpu"
) -> contextlib.AbstractContextManager[Any]:
    """Context manager running the model's forward pass at ``precision``.

    * ``"fp32"``: autocast is explicitly *disabled*, so an attack called from inside a bf16
      training loop still computes its gradients in full precision unless asked otherwise.
    * ``"bf16"``: ``torch.autocast(device_type, dtype=torch.bfloat16)``. On CUDA this is the
      fast path. On CPU it is supported too (PyTorch's CPU autocast); it is mainly useful to
      test bf16 behaviour without a GPU and is usually slower than fp32 on CPUs without native
      bf16 instructions. Other device types are refused with a clear message.

    Gradients w.r.t. the input keep the input's dtype either way; attacks cast logits to fp32
    before the loss so the loss itself is never computed in bf16.
    """
    check_precision(precision)
    device_type = torch.device(device).type
    if device_type not in ("cpu", "cuda"):
        if precision == "fp32":
            return contextlib.nullcontext()
        raise ValueError(
            f"precision='bf16' is supported on cuda and cpu, not on {device_type!r}; "
            "use precision='fp32'"
        )
    if precision == "fp32":
        return torch.autocast(device_type=device_type, enabled=False)
    return torch.autocast(device_type=device_type, dtype=torch.bfloat16)


# --------------------------------------------------------------------------------------------
# Validation (all checks run once, before the attack's loop)
# --------------------------------------------------------------------------------------------


def check_eps(eps: Any, what: str = "eps", *, norm: str = "linf", dim: int | None = None) -> float:
    """ε as a float ≥ 0 that its norm can mean on images in [0, 1].

    ℓ∞: at most 1; larger values are almost certainly on the 0-255 scale. ℓ2: at most √dim
    (the diameter of the image box [0, 1]^dim, when ``dim`` is known); ℓ2 radii above 1 are
    common (3.0 on ImageNet), but one above the diameter is a 0-255 value or a typo.
    """
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real):
        raise ValueError(
            f"{what} must be a Python number such as 8/255, got {type(eps).__name__} {eps!r}"
        )
    value = float(eps)
    if math.isnan(value) or math.isinf(value) or value < 0:
        valid = "a number in [0, 1]" if norm == "linf" else "a finite number >= 0"
        raise ValueError(f"{what} must be {valid}, got {eps!r}")
    if norm == "linf" and value > 1:
        raise ValueError(
            f"{what}={value:g} is larger than 1, but images are in [0, 1] and ε is a fraction of "
            f"the pixel range; did you mean {value:g}/255 (={value / 255:.4f})?"
        )
    if norm == "l2" and dim and value > math.sqrt(dim):
        raise ValueError(
            f"{what}={value:g} under ℓ2 is larger than the diameter √{dim} = {math.sqrt(dim):.4g} "
            f"of the image box [0, 1]^{dim}; did you mean {value:g}/255 (={value / 255:.4g})?"
        )
    return value


def check_norm(norm: Any, supported: tuple[str, ...] = NORMS, *, attack: str | None = None) -> str:
    """``norm`` if it is one of ``supported``; else a ValueError that says which are."""
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {', '.join(NORMS)}, got {norm!r}")
    if norm not in supported:
        who = f"the {attack!r} attack" if attack else "this attack"
        raise ValueError(
            f"{who} is defined for the {', '.join(supported)} threat model only, not {norm}; "
            "`nofrost list` shows the norms each attack takes"
        )
    return norm


def check_positive_int(value: Any, what: str) -> int:
    """A positive int (bools and floats such as 10.0 are refused: they hide config typos)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{what} must be a positive integer, got {value!r}")
    return int(value)


def check_non_negative(value: Any, what: str) -> float:
    """A finite real number >= 0 (bools refused). ``what`` names it in the error, e.g. "decay (μ)"."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{what} must be a non-negative number, got {value!r}")
    return float(value)


def check_step_size(step_size: Any, what: str = "step_size", *, norm: str = "linf") -> float:
    """A finite step size > 0 (at most 1 under ℓ∞, where a step moves each pixel by it)."""
    if isinstance(step_size, bool) or not isinstance(step_size, numbers.Real):
        raise ValueError(f"{what} must be a positive number, got {step_size!r}")
    value = float(step_size)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{what} must be a positive number, got {step_size!r}")
    if norm == "linf" and value > 1:
        raise ValueError(
            f"{what}={value:g} is larger than 1, but images are in [0, 1]; "
            f"did you mean {what}={value:g}/255?"
        )
    return value


def check_precision(precision: Any) -> str:
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return precision


def check_generator(generator: Any) -> torch.Generator | None:
    if generator is not None and not isinstance(generator, torch.Generator):
        raise ValueError(
            f"generator must be a torch.Generator or None, got {type(generator).__name__}"
        )
    return generator


def check_num_classes(num_classes: Any) -> int | None:
    if num_classes is None:
        return None
    if isinstance(num_classes, bool) or not isinstance(num_classes, numbers.Integral):
        raise ValueError(f"num_classes must be an int or None, got {num_classes!r}")
    if num_classes < 2:
        raise ValueError(f"num_classes must be at least 2, got {num_classes}")
    return int(num_classes)


def check_images(x: Any) -> None:
    """x: a float (N, C, H, W) tensor with finite values in [0, 1]."""
    if not isinstance(x, Tensor):
        raise ValueError(f"x must be a torch.Tensor of images, got {type(x).__name__}")
    if not x.is_floating_point():
        raise ValueError(
            f"x must be a float tensor with values in [0, 1], got dtype {x.dtype}; "
            "convert uint8 images with x.float() / 255"
        )
    if x.dim() != 4:
        raise ValueError(
            f"x must have shape (N, C, H, W), got shape {tuple(x.shape)}; "
            "add a batch dimension with x.unsqueeze(0) for a single image"
        )
    if x.numel() == 0:
        return
    # One host synchronisation for all three statistics (validation runs once, up front).
    lo, hi, finite = torch.stack(
        [x.min().float(), x.max().float(), torch.isfinite(x).all().float()]
    ).tolist()
    if not finite:
        raise ValueError("x contains NaN or infinite values")
    if lo < 0 or hi > 1:
        raise ValueError(
            f"x must lie in [0, 1], got values in [{lo:.4g}, {hi:.4g}]: models in nofrost take "
            "[0, 1] images and normalise inside the model; pass unnormalised images "
            "(e.g. not mean/std-normalised, not 0-255)"
        )


def check_labels(y: Any, n: int | None, what: str = "y") -> None:
    """y: an int64 tensor of shape (n,) (shape only; see :func:`check_labels_in_range`)."""
    if not isinstance(y, Tensor):
        raise ValueError(f"{what} must be a torch.Tensor of class indices, got {type(y).__name__}")
    if y.dtype != torch.int64:
        raise ValueError(
            f"{what} must be an int64 tensor of class indices, got dtype {y.dtype}; "
            f"use {what}.long() (one-hot or probability labels are not accepted)"
        )
    if y.dim() != 1:
        raise ValueError(
            f"{what} must have shape (N,) with one class index per image, got shape "
            f"{tuple(y.shape)}"
        )
    if n is not None and y.shape[0] != n:
        raise ValueError(f"{what} has {y.shape[0]} labels but x has {n} images")


def check_labels_in_range(y: Tensor, num_classes: int, what: str = "y") -> None:
    """All labels in [0, num_classes)."""
    if y.numel() == 0:
        return
    lo, hi = torch.stack([y.min(), y.max()]).tolist()
    if lo < 0 or hi >= num_classes:
        raise ValueError(
            f"{what} contains class indices in [{lo}, {hi}], but the model has {num_classes} "
            f"output classes (valid indices 0..{num_classes - 1}); are the labels from "
            "another dataset?"
        )


def check_same_device(x: Tensor, y: Tensor, what: str = "y") -> None:
    if x.device != y.device:
        raise ValueError(f"x is on {x.device} but {what} is on {y.device}; move them together")


def check_logits(logits: Any, n: int) -> int:
    """The model's output must be (N, K) logits; returns K."""
    if not isinstance(logits, Tensor):
        raise ValueError(
            f"the model must return a tensor of logits of shape (N, num_classes), got "
            f"{type(logits).__name__}; wrap models that return tuples or dicts"
        )
    if logits.dim() != 2 or logits.shape[0] != n:
        raise ValueError(
            f"the model must return logits of shape (N, num_classes) = ({n}, K), got shape "
            f"{tuple(logits.shape)}"
        )
    if logits.shape[1] < 2:
        raise ValueError(f"the model must have at least 2 output classes, got {logits.shape[1]}")
    return int(logits.shape[1])


def check_attack_inputs(
    model: Any,
    x: Any,
    y: Any,
    eps: Any,
    num_classes: int | None = None,
    *,
    norm: Any = "linf",
    supported: tuple[str, ...] = ("linf",),
    attack: str | None = None,
) -> tuple[float, int | None]:
    """The checks every attack does up front; returns ``(eps, num_classes)``.

    Checks the norm (one of the attack's ``supported`` ones), the model type, the images, ε
    for that norm and those images, and the labels' shape/dtype/device, and, if
    ``num_classes`` is known, the label range (otherwise check it with
    :func:`check_logits_and_labels` on the first forward pass).
    """
    norm = check_norm(norm, supported, attack=attack)
    num_classes = check_num_classes(num_classes)
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    check_images(x)
    eps = check_eps(eps, norm=norm, dim=x[0].numel() if x.shape[0] else None)
    check_labels(y, x.shape[0], what="y")
    check_same_device(x, y, what="y")
    if num_classes is not None:
        check_labels_in_range(y, num_classes, what="y")
    return eps, num_classes


def check_logits_and_labels(logits: Any, y: Tensor, target: Tensor | None = None) -> int:
    """On an attack's first forward pass: logits are (N, K) and all labels lie in [0, K)."""
    num_classes = check_logits(logits, y.shape[0])
    check_labels_in_range(y, num_classes, what="y")
    if target is not None:
        check_labels_in_range(target, num_classes, what="target")
    return num_classes
