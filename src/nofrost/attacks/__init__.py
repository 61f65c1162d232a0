"""Adversarial attacks: ``get(name)(model, x, y, eps, **kwargs) -> x_adv``.

Every attack takes float images ``x`` (N, C, H, W) in [0, 1], int64 labels ``y`` (N,) and an
ℓ∞ radius ``eps`` in [0, 1] (8/255, not 8), and returns ``x_adv`` of the same shape and
dtype, in [0, 1] and within ``eps`` of ``x``. The model's parameters, ``requires_grad`` flags
and per-submodule train/eval modes are the same afterwards as before, even if the attack
raises.

Adding an attack is one small module in this package that decorates its function with
``@register_attack("name", kind=..., display=..., budget=...)`` (what suites, tables and the
audit know about it, :class:`AttackInfo`): every public module here (no leading underscore) is imported
automatically, and the shared property tests iterate :func:`list_attacks`. Such a module
should validate with ``_common.check_attack_inputs`` (up front) and
``_common.check_logits_and_labels`` (first forward), run inside ``attack_mode(model)`` and
take gradients with ``input_gradient``; ``pgd.py`` is the worked example.
"""

from __future__ import annotations

import importlib
import pkgutil

from nofrost.attacks._common import (
    attack_mode,
    autocast,
    input_gradient,
    linf_bounds,
    project_linf,
    random_targets,
)
from nofrost.attacks._registry import (
    ATTACKS,
    KINDS,
    Attack,
    AttackInfo,
    attack_info,
    get,
    list_attacks,
    register_attack,
)
from nofrost.attacks.pgd import default_step_size, pgd_attack, pgd_targeted_attack


def _import_attack_modules() -> None:
    # Import every public module of this package so its @register_attack decorators run.
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")


_import_attack_modules()

__all__ = [
    "ATTACKS",
    "KINDS",
    "Attack",
    "AttackInfo",
    "attack_info",
    "attack_mode",
    "autocast",
    "default_step_size",
    "get",
    "input_gradient",
    "linf_bounds",
    "list_attacks",
    "pgd_attack",
    "pgd_targeted_attack",
    "project_linf",
    "random_targets",
    "register_attack",
]
