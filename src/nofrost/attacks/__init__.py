"""Adversarial attacks: ``get(name)(model, x, y, eps, **kwargs) -> x_adv``.

Every attack takes float images ``x`` (N, C, H, W) in [0, 1], int64 labels ``y`` (N,), the
radius ``eps`` of its threat model's ball (``norm="linf"``, the default: a fraction of the
pixel range, 8/255 not 8; ``norm="l2"``: the length of the perturbation, e.g. 0.5) and the
options every attack shares (``generator``, ``precision``, ``num_classes``, ``norm``:
:class:`Setup`). It returns ``x_adv`` of the same shape and dtype, in [0, 1] and within
``eps`` of ``x``. The model's parameters, ``requires_grad`` flags and per-submodule
train/eval modes are the same afterwards as before, even if the attack raises.

Adding an attack is one small module in this package (every public module here, no leading
underscore, is imported automatically) with a function
``fn(model, x, y, eps, setup, *, options...)`` decorated with
``@register_attack("name", kind=..., display=..., budget=..., norms=...)``: the registration
carries what suites, tables and the audit know about it (:class:`AttackInfo`) and wraps it in
the base call (:func:`with_setup`), which validates the inputs and ε for the norm before the
attack runs. The attack validates its own options, runs inside ``attack_mode(model)``, takes
gradients with ``input_gradient`` and projects with a :class:`~nofrost.attacks._core.Ball`;
an attack that only needs the examples the model gets right uses ``run_on_correct`` and can
register that core as ``on_correct`` for AutoAttack. ``pgd.py`` is the worked example, and
the shared property tests iterate :func:`list_attacks`, in both norms.
"""

from __future__ import annotations

import importlib
import pkgutil

from nofrost.attacks._common import (
    attack_mode,
    autocast,
    input_gradient,
    linf_bounds,
    random_targets,
)
from nofrost.attacks._core import Ball, project_linf
from nofrost.attacks._registry import (
    ATTACKS,
    KINDS,
    Attack,
    AttackInfo,
    Setup,
    attack_info,
    attack_options,
    get,
    list_attacks,
    register_attack,
    variant,
    with_setup,
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
    "Ball",
    "Setup",
    "attack_info",
    "attack_options",
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
    "variant",
    "with_setup",
]
