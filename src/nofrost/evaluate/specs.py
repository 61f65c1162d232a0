"""Attack specs: an attack name plus keyword arguments, written ``name[:key=value...]``."""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

# The paper evaluates every white-box attack with 20 iterations (Sec. 4.1); PGD's registered
# default is the training setting (10), so evaluation raises it unless told otherwise.
EVALUATION_DEFAULTS: dict[str, dict[str, Any]] = {"pgd": {"steps": 20}, "pgd-t": {"steps": 20}}


@dataclass(frozen=True)
class AttackSpec:
    """An attack name plus keyword arguments, written ``name[:key=value[:key=value]]``."""

    name: str
    kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return ":".join([self.name, *(f"{k}={v}" for k, v in self.kwargs.items())])

    def resolved_kwargs(self) -> dict[str, Any]:
        """The keyword arguments the attack runs with: evaluation defaults, then the spec's."""
        return {**EVALUATION_DEFAULTS.get(self.name, {}), **self.kwargs}


def _parse_value(text: str) -> Any:
    """int, float, a fraction such as ``1/255`` (as a float), a bool, else the text itself."""
    for cast in (int, float, lambda t: float(Fraction(t))):
        try:
            return cast(text)
        except (ValueError, ZeroDivisionError):
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


def parse_spec(spec: str | AttackSpec) -> AttackSpec:
    """``"pgd:steps=50:restarts=5"`` -> ``AttackSpec("pgd", {"steps": 50, "restarts": 5})``."""
    if isinstance(spec, AttackSpec):
        return spec
    if not isinstance(spec, str):
        raise ValueError(f"expected an attack spec such as 'pgd:steps=20', got {spec!r}")
    name, *options = spec.strip().split(":")
    kwargs: dict[str, Any] = {}
    for option in options:
        key, sep, value = option.partition("=")
        if not sep:
            raise ValueError(f"attack option {option!r} in {spec!r}: expected key=value, e.g. pgd:steps=50")
        kwargs[key] = _parse_value(value)
    return AttackSpec(name, kwargs)
