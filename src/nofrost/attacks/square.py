"""Square Attack under ℓ∞ or ℓ2: a score-based black-box attack (no gradients).

M. Andriushchenko, F. Croce, N. Flammarion, M. Hein, "Square Attack: a query-efficient
black-box adversarial attack via random search", ECCV 2020.

Random search on the margin loss ``z_y − max_{i≠y} z_i`` of the logits: each query proposes
a change of one random square window of every image still to fool, and keeps it if the
margin decreased. The window covers a fraction ``p`` of the image, with ``p`` following the
paper's piecewise-constant schedule (``p_init`` halved at 10, 50, 200, 500, 1000, 2000, 4000,
6000 and 8000 of 10,000 iterations) rescaled to the query budget, as AutoAttack does
(:func:`p_schedule`); only examples not yet misclassified are queried, and an example stops as
soon as it is fooled.

ℓ∞ (the vertices of the ε-box):

* start at ``x`` plus vertical stripes: every (channel, column) gets ``+ε`` or ``−ε`` (the
  paper's initialisation for untargeted attacks);
* a query sets the window, of side ``s = round(sqrt(p · H · W))`` clipped to
  ``[1, min(H, W) − 1]``, to a random per-channel colour ``x ± ε`` (a colour that would leave
  the window unchanged is never tried, as in the reference code).

ℓ2 (Sec. 3.2 of the paper, following the authors' AutoAttack code, ``square.py``, whose
constants these are):

* the building block is the ``s × s`` "meta-pseudo-Gaussian" pattern ``η``: its top ``⌊s/2⌋``
  rows and its other rows are two rectangles of concentric rings, each ring ``k`` (0 at the
  centre) adding ``1/(k + 1)²`` to the cells it encloses, with opposite signs, the whole of unit
  ℓ2 norm; each use transposes it with probability 1/2 and multiplies each channel by ±1;
* start: blocks of side ``b = ⌊min(H, W) / 5⌋`` (at least 1), as many as fit, centred, each
  filled with its own pattern; the sum is scaled to ``‖δ‖₂ = ε`` and clipped to [0, 1];
* a query picks two windows of side ``s = round(sqrt(p · H · W))``, at least 3, made odd, at
  most ``min(H, W)``: the perturbation in the second window is removed and the first window
  gets, per channel, a fresh pattern plus its old content (rescaled to unit norm), scaled to
  the norm of what the two windows held plus an equal share of the slack ``ε² − ‖δ‖²``. So
  mass moves from the second window to the first and ``‖δ‖₂ = ε`` before clipping (the
  result is rescaled to ε to absorb rounding, then clipped to [0, 1]).

Departures from the reference code, all harmless:

* a window's corner is uniform over all ``(H − s + 1) × (W − s + 1)`` positions (the
  reference draws from ``H − s`` and so never touches the last row and column after the
  initialisation);
* the clean images are classified first (one extra forward pass, not counted in ``queries``)
  so images the model already gets wrong are returned unchanged;
* every random choice (window corners, colours, signs, transpositions) is drawn per image, so
  an image's result does not depend on the other images of the batch; the reference draws one
  window, and one transposition per pattern, for the whole batch;
* ℓ2 start: the blocks have side ``⌊min(H, W) / 5⌋`` and the grid of those that fit is
  centred in each direction; the reference uses ``⌊H / 5⌋`` and offsets both directions by
  ``(H − 5b) // 2``. Both agree for square images of side at least 25 (CIFAR, MNIST,
  ImageNet), where the grid is 5 × 5 blocks;
* the returned ℓ2 point is projected once more onto the ε-ball ∩ [0, 1] (:meth:`Ball.project`),
  so ``‖x_adv − x‖₂ ≤ ε`` holds up to the rounding of one division.

Each query is one forward pass on the examples still to fool; selecting them synchronises
with the host once per query, which is inherent to per-example early stopping.
"""

from __future__ import annotations

import math
import numbers
from functools import partial

import torch
from torch import Tensor, nn

from nofrost.attacks._common import check_positive_int, random_ints
from nofrost.attacks._core import _TINY, Ball, run_on_correct
from nofrost.attacks._registry import Setup, register_attack

__all__ = ["p_schedule", "square_attack"]

# (iteration out of 10,000 after which p is divided by 2**k): the reference schedule.
_SCHEDULE = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)

# ℓ2: the start tiles the image with a grid of this many blocks per side (the reference's 5).
_L2_GRID = 5
# ℓ2: the smallest window side of a query (the reference's 3); sides are also made odd.
_L2_MIN_SIDE = 3


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


def _random_signs(
    shape: tuple[int, ...], generator: torch.Generator | None, like: Tensor
) -> Tensor:
    """Uniform ±1 of ``shape``, in ``like``'s dtype and on its device."""
    positive = random_ints(2, shape, generator, like.device).bool()
    one = torch.ones((), dtype=like.dtype, device=like.device)
    return torch.where(positive, one, -one)


def square_attack(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    eps: float,
    setup: Setup,
    *,
    queries: int = 5000,
    p_init: float = 0.8,
) -> Tensor:
    """Square Attack (Andriushchenko et al., ECCV 2020) under ℓ∞ or ℓ2; returns ``x_adv``.

    Args:
        model, x, y, eps: as for every attack (see :mod:`nofrost.attacks`). Only the model's
            logits are used (no gradients).
        queries: forward passes per example, the initialisation included (default 5000, as
            in AutoAttack's standard version; the NoFrost paper used 400).
        p_init: initial fraction of pixels in the square window (default 0.8, AutoAttack's
            standard setting for both norms); it shrinks with :func:`p_schedule`.
        generator, precision, num_classes, norm: as for every attack (:class:`Setup`); the
            margin is computed in fp32 at either precision.

    Returns:
        ``x_adv``: for each image the point of lowest margin found (the first one to fool the
        model), or ``x`` itself if the model already misclassifies ``x``.
    """
    queries = check_positive_int(queries, "queries")
    p_init = _check_p_init(p_init)
    return run_on_correct(model, x, y, eps, setup.precision, partial(
        _square_rows, model, queries=queries, p_init=p_init, generator=setup.generator), norm=setup.norm)


@torch.no_grad()
def _square_rows(
    model: nn.Module, x0: Tensor, y: Tensor, ball: Ball, clean_logits: Tensor, num_classes: int,
    precision_ctx, *, queries: int, p_init: float, generator: torch.Generator | None,
) -> Tensor:
    """Square Attack on correctly classified rows (``ball`` their ε-ball, ℓ∞ or ℓ2)."""
    if ball.norm == "linf":
        start, candidate = _linf_start, _linf_candidate
    else:
        start, candidate = _l2_start, _l2_candidate

    def margin_of(images: Tensor, labels: Tensor) -> Tensor:
        with precision_ctx:
            return _margin(model(images), labels)

    # The start is kept whatever its margin (as in the reference); only correctly classified
    # images get here. The working tensors hold the examples still to fool; a fooled one is
    # written out and dropped, so a query on a batch that nothing fooled gathers nothing.
    x_best = start(ball, generator)
    x_out, best_margin, live = torch.empty_like(x_best), margin_of(x_best, y), ball
    rows = torch.arange(len(y), device=y.device)
    for iteration in range(queries - 1):
        fooled = best_margin < 0
        if fooled.any():  # one host sync per query
            x_out[rows[fooled]] = x_best[fooled]
            keep = (~fooled).nonzero().squeeze(1)
            if keep.numel() == 0:
                break
            x_best, best_margin, y, rows, live = x_best[keep], best_margin[keep], y[keep], rows[keep], live[keep]
        p = p_schedule(p_init, iteration, queries)
        x_new = candidate(live, x_best, p, generator)
        margin = margin_of(x_new, y)
        improved = margin < best_margin
        best_margin = torch.where(improved, margin, best_margin)
        x_best = torch.where(improved.view(-1, 1, 1, 1), x_new, x_best)
    x_out[rows] = x_best  # after a break these rows are all written already: the same values
    # A no-op under ℓ∞ (every pixel already is a bound); under ℓ2 it absorbs the rounding of
    # the rescaling to ε.
    return ball.project(x_out)


def _windows(top: Tensor, left: Tensor, side: int, h: int, w: int) -> Tensor:
    """(k, 1, h, w) masks of the ``side × side`` windows with corners ``(top, left)`` (k,)."""
    rows = torch.arange(h, device=top.device)
    cols = torch.arange(w, device=top.device)
    in_rows = (rows >= top[:, None]) & (rows < top[:, None] + side)
    in_cols = (cols >= left[:, None]) & (cols < left[:, None] + side)
    return (in_rows[:, :, None] & in_cols[:, None, :])[:, None]


def _random_corners(
    k: int, side: int, h: int, w: int, generator: torch.Generator | None, device: torch.device
) -> tuple[Tensor, Tensor]:
    """One ``side × side`` window per image, its corner ``(top, left)`` uniform over all the
    positions where it fits."""
    top = random_ints(h - side + 1, (k,), generator, device)
    left = random_ints(w - side + 1, (k,), generator, device)
    return top, left


def _random_windows(
    k: int, side: int, h: int, w: int, generator: torch.Generator | None, device: torch.device
) -> tuple[Tensor, Tensor, Tensor]:
    """:func:`_random_corners` with the windows' masks (k, 1, h, w): ``(mask, top, left)``."""
    top, left = _random_corners(k, side, h, w, generator, device)
    return _windows(top, left, side, h, w), top, left


# --------------------------------------------------------------------------------------------
# ℓ∞
# --------------------------------------------------------------------------------------------


def _linf_start(ball: Ball, generator: torch.Generator | None) -> Tensor:
    """Vertical stripes: one ±ε per (image, channel, column)."""
    n, c, _, w = ball.x.shape
    stripes = random_ints(2, (n, c, 1, w), generator, ball.x.device).bool()
    return torch.where(stripes, ball.hi, ball.lo)


def _linf_candidate(ball: Ball, best: Tensor, p: float, generator: torch.Generator | None) -> Tensor:
    """``best`` with one random window per image set to a random colour ``x ± ε`` that changes it."""
    k, c, h, w = best.shape
    device = best.device
    s = min(max(int(round(math.sqrt(p * h * w))), 1), max(min(h, w) - 1, 1))
    top, left = _random_corners(k, s, h, w, generator, device)
    colour = random_ints(2, (k, c, 1), generator, device).bool()
    # If the colour equals the window's current content, any other colour changes it
    # (x + ε and x − ε differ wherever ε > 0): flip a uniformly random non-empty set of
    # channels, which makes the colour uniform over the ones that change something.
    flips = random_ints(2 ** min(c, 30) - 1, (k,), generator, device) + 1
    bits = torch.arange(c, device=device).clamp(max=29)
    flip = ((flips[:, None] >> bits) & 1).bool().view(k, c, 1)
    # Only the window's pixels are read and written (positions in each flattened h·w plane):
    # late in the attack a window is a few pixels of the image.
    offsets = torch.arange(s, device=device)
    pixels = (top[:, None] + offsets)[:, :, None] * w + (left[:, None] + offsets)[:, None, :]
    pixels = pixels.view(k, 1, s * s).expand(k, c, s * s)
    old, hi, lo = (t.reshape(k, c, h * w).gather(2, pixels) for t in (best, ball.hi, ball.lo))
    patch = torch.where(colour, hi, lo)
    unchanged = (patch == old).flatten(1).all(dim=1).view(k, 1, 1)
    patch = torch.where(unchanged, torch.where(colour ^ flip, hi, lo), patch)
    return best.reshape(k, c, h * w).scatter(2, pixels, patch).view_as(best)


# --------------------------------------------------------------------------------------------
# ℓ2
# --------------------------------------------------------------------------------------------


def _rings(rows: int, cols: int) -> Tensor:
    """A ``rows × cols`` rectangle of concentric rings around cell ``(rows // 2, cols // 2)``:
    ring ``k`` adds ``1/(k + 1)²`` to every cell within Chebyshev distance ``k`` of the centre,
    for ``k`` up to ``max(rows, cols) // 2``; unit ℓ2 norm (float64)."""
    if rows == 0:
        return torch.zeros(0, cols, dtype=torch.float64)
    d_rows = (torch.arange(rows) - rows // 2).abs()
    d_cols = (torch.arange(cols) - cols // 2).abs()
    distance = torch.maximum(d_rows[:, None], d_cols[None, :])
    weights = 1.0 / torch.arange(1, max(rows, cols) // 2 + 2, dtype=torch.float64) ** 2
    tail = weights.flip(0).cumsum(0).flip(0)  # tail[d] = Σ_{k ≥ d} weights[k]
    pattern = tail[distance]
    return pattern / pattern.norm()


def _pattern(side: int, like: Tensor) -> Tensor:
    """The ``side × side`` meta-pseudo-Gaussian pattern η (unit ℓ2 norm), in ``like``'s dtype
    and on its device: rings on the top ``side // 2`` rows, minus rings on the others."""
    top = side // 2
    eta = torch.cat([_rings(top, side), -_rings(side - top, side)])
    return (eta / eta.norm()).to(dtype=like.dtype, device=like.device)


def _placed_patterns(
    eta: Tensor, top: Tensor, left: Tensor, window: Tensor, transpose: Tensor
) -> Tensor:
    """(k, 1, h, w): for each image the pattern ``eta`` (transposed where ``transpose``, (k,))
    with its corner at ``(top, left)``, zero outside ``window`` (k, 1, h, w)."""
    side = eta.shape[0]
    h, w = window.shape[-2:]
    r = (torch.arange(h, device=top.device) - top[:, None]).clamp(0, side - 1)[:, :, None]
    c = (torch.arange(w, device=top.device) - left[:, None]).clamp(0, side - 1)[:, None, :]
    placed = torch.where(transpose.view(-1, 1, 1), eta[c, r], eta[r, c])[:, None]
    return torch.where(window, placed, 0.0)


def _channel_norms(v: Tensor) -> Tensor:
    """ℓ2 norm of each (image, channel) plane, (k, c, 1, 1)."""
    return v.square().sum(dim=(2, 3), keepdim=True).sqrt()


def _l2_start(ball: Ball, generator: torch.Generator | None) -> Tensor:
    """A grid of blocks, each a pattern with a random transposition and per-channel signs,
    scaled to ``‖δ‖₂ = ε`` and clipped to [0, 1]."""
    x = ball.x
    n, c, h, w = x.shape
    side = max(min(h, w) // _L2_GRID, 1)
    grid_h, grid_w = h // side, w // side
    eta = _pattern(side, x)
    transpose = random_ints(2, (n, 1, grid_h, grid_w, 1, 1), generator, x.device).bool()
    signs = _random_signs((n, c, grid_h, grid_w, 1, 1), generator, x)
    blocks = torch.where(transpose, eta.T, eta) * signs  # (n, c, grid_h, grid_w, side, side)
    tiled = blocks.permute(0, 1, 2, 4, 3, 5).reshape(n, c, grid_h * side, grid_w * side)
    top, left = (h - grid_h * side) // 2, (w - grid_w * side) // 2
    delta = torch.zeros_like(x)
    delta[:, :, top : top + grid_h * side, left : left + grid_w * side] = tiled
    return torch.clamp(x + ball.eps * ball.normalize(delta), 0.0, 1.0)


def _l2_candidate(ball: Ball, best: Tensor, p: float, generator: torch.Generator | None) -> Tensor:
    """``best`` with the perturbation of a second window moved into a first one, reshaped by a
    fresh pattern; ``‖δ‖₂ = ε`` before clipping to [0, 1]."""
    x, eps = ball.x, ball.eps
    k, c, h, w = best.shape
    device = best.device
    s = max(round(math.sqrt(p * h * w)), _L2_MIN_SIDE)
    s = min(s + 1 - s % 2, min(h, w))  # odd, and it fits
    first, top, left = _random_windows(k, s, h, w, generator, device)
    second, _, _ = _random_windows(k, s, h, w, generator, device)
    transpose = random_ints(2, (k,), generator, device).bool()
    signs = _random_signs((k, c, 1, 1), generator, best)

    delta = best - x
    # Per channel, the first window gets the mass of both windows plus its share of the slack
    # ε² − ‖δ‖² (zero unless clipping to [0, 1] shortened δ), so ‖δ‖₂ = ε afterwards.
    slack = (eps**2 - delta.flatten(1).square().sum(dim=1)).clamp(min=0).view(k, 1, 1, 1)
    mass = (slack / c + _channel_norms(torch.where(first | second, delta, 0.0)).square()).sqrt()
    old = torch.where(first, delta, 0.0)
    fresh = _placed_patterns(_pattern(s, best), top, left, first, transpose) * signs
    fresh = fresh + old / (_channel_norms(old) + _TINY)
    fresh = fresh / (_channel_norms(fresh) + _TINY) * mass
    delta = torch.where(first, fresh, torch.where(second, 0.0, delta))
    return torch.clamp(x + eps * ball.normalize(delta), 0.0, 1.0)


square_attack = register_attack(
    "square",
    kind="black-box",
    display="Square",
    budget="queries",
    norms=("linf", "l2"),
    on_correct=_square_rows,
    bf16=False,
)(square_attack)
