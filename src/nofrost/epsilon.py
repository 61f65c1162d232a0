"""Parsing of perturbation sizes given on the command line or in configs.

ε is a fraction of the [0, 1] pixel range. ``"8/255"`` and ``0.0314`` are accepted; a bare
number above 1 is almost always a pixel value on the 0-255 scale, so it is refused with a
message that suggests the fraction form.
"""

from __future__ import annotations

from fractions import Fraction

from nofrost.attacks._common import check_eps


def parse_eps(value: str | float | int, *, what: str = "eps", norm: str = "linf") -> float:
    """Return ε as a float from ``"8/255"``, ``"0.03"`` or a number: in [0, 1] under ℓ∞, any
    finite ε ≥ 0 under ℓ2 (the attacks check it against the images' diameter √D)."""
    if isinstance(value, bool):
        raise ValueError(f"{what} must be a number such as 8/255, got {value!r}")
    if isinstance(value, str):
        text = value.strip()
        try:
            eps = float(Fraction(text)) if "/" in text else float(text)
        except (ValueError, ZeroDivisionError):
            raise ValueError(
                f"{what}: cannot read {value!r} as a perturbation size; write it as a fraction "
                "of the pixel range, e.g. 8/255 or 0.0314"
            ) from None
    elif isinstance(value, (int, float)):
        eps = float(value)
    else:
        raise ValueError(f"{what} must be a number such as 8/255, got {type(value).__name__}")
    return check_eps(eps, what, norm=norm)
