"""ℓ∞ Square Attack: a score-based black-box attack (no gradients).

M. Andriushchenko, F. Croce, N. Flammarion, M. Hein, "Square Attack: a query-efficient
black-box adversarial attack via random search", ECCV 2020.

Random search on the margin loss ``z_y − max_{i≠y} z_i`` of the logits:

* start at ``x`` plus vertical stripes: every (channel, column) gets ``+ε`` or ``−ε`` (the
  paper's initialisation for untargeted attacks);
* each later query changes one random square window of side ``s`` of every image to a random
  per-channel colour ``x ± ε`` (a colour that would leave the window unchanged is never
  tried, as in the reference code) and keeps the change if the margin decreased;
* the window covers a fraction ``p`` of the image, ``s = round(sqrt(p · H · W))`` clipped to
  ``[1, min(H, W) − 1]``, with ``p`` following the paper's piecewise-constant schedule (``p_init``
  halved at 10, 50, 200, 500, 1000, 2000, 4000, 6000 and 8000 of 10,000 iterations) rescaled to
  the query budget, as AutoAttack does;
* only examples not yet misclassified are queried; an example stops as soon as it is fooled.

Departures from the reference code, both harmless: the window's corner is uniform over all
``(H − s + 1) × (W − s + 1)`` positions (the reference draws from ``H − s`` and so never
touches the last row and column after initialisation), and the clean images are classified
first (one extra forward pass, not counted in ``queries``) so images the model already gets
wrong are returned unchanged.

Each query is one forward pass on the examples still to fool; selecting them synchronises
with the host once per query, which is inherent to per-example early stopping.
"""

from __future__ import annotations

import math
import numbers
from functools import partial

import torch
from torch import Tensor, nn

from nofrost.attacks._common import (
    _random_device,
    check_attack_inputs,
    check_generator,
    check_positive_int,
    check_precision,
)
from nofrost.attacks._core import Ball, run_on_correct
from nofrost.attacks._registry import register_attack

__all__ = ["p_schedule", "square_attack"]

# (iteration out of 10,000 after which p is divided by 2**k): the reference schedule.
_SCHEDULE = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)


def p_schedule(p_init: float, iteration: int, queries: int) -> float:
    """The fraction of pixels changed at ``iteration`` (0-based) of a ``queries`` budget.

    The reference schedule is defined on 10,000 iterations; ``iteration`` is rescaled to that
    range first, so a 400-query attack shrinks its windows as a 10,000-query one does.
    """
    it = int(iteration / queries * 10000)
    halvings = sum(it > boundary for boundary in _SCHEDULE)
    return p_init / 2**halvings


def _margin(logits: Tensor, y: Tensor) -> Tensor:
    """``z_y − max_{i≠y} z_i`` in fp32; negative iff the example is misclassified."""
    z = logits.float()
    true = z.gather(1, y[:, None]).squeeze(1)
    other = z.scatter(1, y[:, None], float("-inf")).amax(dim=1)
    return true - other


def _check_p_init(p_init: object) -> float:
    if isinstance(p_init, bool) or not isinstance(p_init, numbers.Real):
        raise ValueError(f"p_init must be a number in (0, 1], got {p_init!r}")
    value = float(p_init)
    if not (0 < value <= 1):  # also refuses NaN
        raise ValueError(f"p_init must be a number in (0, 1], got {p_init!r}")
    return value


def _randint(
    high: int, shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device
) -> Tensor:
    """Uniform ints in [0, high) drawn from ``generator`` (on its device), moved to ``device``."""
    draw_on = _random_device(generator, device)
    return torch.randint(0, high, shape, generator=generator, device=draw_on).to(device)


def square_attack(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    eps: float,
    *,
    queries: int = 5000,
    p_init: float = 0.8,
    generator: torch.Generator | None = None,
    precision: str = "fp32",
    num_classes: int | None = None,
    norm: str = "linf",
) -> Tensor:
    """ℓ∞ Square Attack (Andriushchenko et al., ECCV 2020); returns ``x_adv``.

    Args:
        model, x, y, eps: as for every attack (see :mod:`nofrost.attacks`). Only the model's
            logits are used (no gradients).
        queries: forward passes per example, the initialisation included (default 5000, as
            in AutoAttack's standard version; the NoFrost paper used 400).
        p_init: initial fraction of pixels in the square window (default 0.8, the paper's ℓ∞
            setting); it shrinks with :func:`p_schedule`.
        generator: source of all randomness, for reproducible ``x_adv``.
        precision: ``"fp32"`` or ``"bf16"`` forward passes (the margin is computed in fp32).
        num_classes: the model's number of classes if known (validates the labels up front).
        norm: the threat model (``"linf"``).

    Returns:
        ``x_adv``: for each image the point of lowest margin found (the first one to fool the
        model), or ``x`` itself if the model already misclassifies ``x``.
    """
    eps, num_classes = check_attack_inputs(model, x, y, eps, num_classes, norm=norm, attack="square")
    queries = check_positive_int(queries, "queries")
    p_init = _check_p_init(p_init)
    check_precision(precision)
    check_generator(generator)

    return run_on_correct(model, x, y, eps, precision, partial(
        _square_rows, model, queries=queries, p_init=p_init, generator=generator), norm=norm)


@torch.no_grad()
def _square_rows(
    model: nn.Module, x0: Tensor, y: Tensor, ball: Ball, clean_logits: Tensor, num_classes: int,
    precision_ctx, *, queries: int, p_init: float, generator: torch.Generator | None,
) -> Tensor:
    """Square Attack on correctly classified rows (``ball`` their ℓ∞ ε-ball)."""
    lo, hi = ball.lo, ball.hi
    n = x0.shape[0]
    c, h, w = x0.shape[1:]
    device = x0.device

    def margin_of(images: Tensor, labels: Tensor) -> Tensor:
        with precision_ctx:
            return _margin(model(images), labels)

    # Vertical stripes: one ±ε per (image, channel, column), kept whatever their margin (as in
    # the reference); only correctly classified images get here.
    stripes = _randint(2, (n, c, 1, w), generator, device).bool()
    x_init = torch.where(stripes, hi, lo)
    x_best, best_margin = x_init, margin_of(x_init, y)

    rows = torch.arange(h, device=device)
    cols = torch.arange(w, device=device)
    side_max = max(min(h, w) - 1, 1)
    for iteration in range(queries - 1):
        active = (best_margin >= 0).nonzero().squeeze(1)  # one host sync per query
        k = active.numel()
        if k == 0:
            break
        p = p_schedule(p_init, iteration, queries)
        s = min(max(int(round(math.sqrt(p * h * w))), 1), side_max)

        # One window per image: corner uniform over all positions where it fits.
        top = _randint(h - s + 1, (k,), generator, device)
        left = _randint(w - s + 1, (k,), generator, device)
        in_rows = (rows >= top[:, None]) & (rows < top[:, None] + s)
        in_cols = (cols >= left[:, None]) & (cols < left[:, None] + s)
        window = (in_rows[:, :, None] & in_cols[:, None, :])[:, None]  # (k, 1, h, w)

        lo_a, hi_a, best_a = lo[active], hi[active], x_best[active]
        colour = _randint(2, (k, c, 1, 1), generator, device).bool()
        # If the colour equals the window's current content, any other colour changes it
        # (x + ε and x − ε differ wherever ε > 0): flip a uniformly random non-empty set of
        # channels, which makes the colour uniform over the ones that change something.
        flips = _randint(2 ** min(c, 30) - 1, (k,), generator, device) + 1
        bits = torch.arange(c, device=device).clamp(max=29)
        flip = ((flips[:, None] >> bits) & 1).bool().view(k, c, 1, 1)
        x_new = torch.where(window, torch.where(colour, hi_a, lo_a), best_a)
        unchanged = (x_new == best_a).flatten(1).all(dim=1).view(k, 1, 1, 1)
        other = torch.where(window, torch.where(colour ^ flip, hi_a, lo_a), best_a)
        x_new = torch.where(unchanged, other, x_new)

        margin = margin_of(x_new, y[active])
        improved = margin < best_margin[active]
        best_margin[active] = torch.where(improved, margin, best_margin[active])
        x_best[active] = torch.where(improved.view(k, 1, 1, 1), x_new, best_a)
    return x_best


register_attack(
    "square", kind="black-box", display="Square", budget="queries", on_correct=_square_rows
)(square_attack)
