"""AutoAttack: an ensemble of parameter-free attacks run in turn (``autoattack``).

F. Croce, M. Hein, "Reliable evaluation of adversarial robustness with an ensemble of diverse
parameter-free attacks", ICML 2020. The attacks run one after the other, each only on the
examples that every earlier attack failed to break (the official protocol): an example counts
as robust only if the model classifies it correctly and no attack found a misclassified point
within ε. Whether an attack broke an example is decided by one more forward pass on the point
it returned, never by the attack's own bookkeeping.

Versions (``version=``):

* ``"standard"`` (default): APGD-CE, APGD-T (9 targets), FAB-T (9 targets), Square (5,000
  queries, ``p_init`` 0.8), each with 100 iterations and 1 restart, as in the official
  ``version='standard'`` for ℓ∞. Needs the ``square`` attack; with fewer than 10 classes the
  targeted attacks use ``K − 1`` targets (they need K ≥ 4). One known difference: the
  official standard version runs Square with its window-size schedule *not* rescaled to the
  5,000 queries (``resc_schedule=False``), while ``nofrost.attacks.square`` always rescales.
* ``"fast"``: APGD-CE and APGD-DLR (100 steps, 1 restart; the NoFrost paper's "AA" used 20
  steps: ``steps=20``).
* ``"rand"``: APGD-CE and APGD-DLR with each step's gradient averaged over 20 forward/backward
  passes (EOT, ``eot_iter=20``, 1 restart), as the official ``version='rand'``, for models
  whose outputs are random (randomized defenses, stochastic layers).
* ``"custom"``: ``attacks`` lists registered attack names, ``(name, kwargs)`` pairs or a
  ``{name: kwargs}`` mapping, run in that order. Any registered attack may appear; the ones
  registered with an ``on_correct`` core (APGD, FAB-T, Square, RayS) reuse the clean logits
  and the examples' ε-balls instead of recomputing them.

Every attack validates its own options (and the norm, and the class count) before the first
one runs; ``norm="l2"`` runs every attack of the plan under ℓ2.

``attack_kwargs`` ({name: kwargs}) overrides options of attacks in any version, and ``steps``
sets the iterations of all of them that have a ``steps`` option. Randomness comes from
``generator`` if given, else from ``seed``, else from the global torch RNG; each attack gets
its own generator derived from that, so an attack's random draws do not depend on how many
the attacks before it made.

:func:`run_autoattack` also returns which examples were still robust after each attack (for
tables that show which attack broke what); the registered ``autoattack`` returns ``x_adv``
only.
"""

from __future__ import annotations

import inspect
import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from nofrost.attacks._common import (
    NORMS,
    attack_mode,
    autocast,
    check_logits_and_labels,
    check_norm,
    check_positive_int,
)
from nofrost.attacks._core import Ball
from nofrost.attacks._fast import fast_eval_copy
from nofrost.attacks._registry import (
    ATTACKS,
    RESERVED,
    Setup,
    attack_info,
    attack_options,
    get,
    register_attack,
    variant,
    with_setup,
)

__all__ = ["VERSIONS", "autoattack", "autoattack_plan", "robust_accuracies", "run_autoattack"]

VERSIONS: tuple[str, ...] = ("standard", "fast", "rand", "custom")

_VERSION_PLANS: dict[str, tuple[tuple[str, dict[str, Any]], ...]] = {
    "standard": (
        ("apgd-ce", {}),
        ("apgd-t", {}),
        ("fab-t", {}),
        ("square", {"queries": 5000, "p_init": 0.8}),
    ),
    "fast": (("apgd-ce", {}), ("apgd-dlr", {})),
    # The official version='rand', for randomized models: EOT over 20 draws per step.
    "rand": (("apgd-ce", {"eot_iter": 20}), ("apgd-dlr", {"eot_iter": 20})),
}

_DEFAULT_TARGETS = 9


# --------------------------------------------------------------------------------------------
# The plan: which attacks, in which order, with which options
# --------------------------------------------------------------------------------------------


def _as_kwargs(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise ValueError(f"{what} must be a mapping of option names to values, got {value!r}")
    return dict(value)


def _parse_attacks(attacks: Any) -> list[tuple[str, dict[str, Any]]]:
    if attacks is None:
        raise ValueError(
            "version='custom' needs attacks=[...]: names of registered attacks (e.g. "
            "['apgd-ce', 'apgd-dlr']), (name, kwargs) pairs or a {name: kwargs} mapping"
        )
    if isinstance(attacks, Mapping):
        items = [(name, _as_kwargs(kw, f"the options of {name!r}")) for name, kw in attacks.items()]
    elif isinstance(attacks, Sequence) and not isinstance(attacks, str):
        items = []
        for item in attacks:
            if isinstance(item, str):
                items.append((item, {}))
            elif (
                isinstance(item, Sequence)
                and not isinstance(item, str)
                and len(item) == 2
                and isinstance(item[0], str)
            ):
                items.append((item[0], _as_kwargs(item[1], f"the options of {item[0]!r}")))
            else:
                raise ValueError(
                    f"attacks entries must be attack names or (name, kwargs) pairs, got {item!r}"
                )
    else:
        raise ValueError(
            f"attacks must be a list of attack names or a {{name: kwargs}} mapping, got "
            f"{attacks!r}"
        )
    if not items:
        raise ValueError("attacks is empty: name at least one attack")
    return items


def autoattack_plan(
    version: str = "standard",
    attacks: Any = None,
    attack_kwargs: Mapping[str, Mapping[str, Any]] | None = None,
    steps: int | None = None,
) -> list[tuple[str, dict[str, Any]]]:
    """The ``(attack name, kwargs)`` list a version runs, validated (see the module docs).

    ``steps`` sets the iterations of every attack with a ``steps`` option (APGD, FAB, ...)
    that neither ``attacks`` nor ``attack_kwargs`` sets.

    Raises ValueError for unknown versions or attacks, options an attack does not take,
    repeated attacks, and ``standard`` without a registered ``square`` attack.
    """
    if version not in VERSIONS:
        raise ValueError(f"version must be one of {', '.join(VERSIONS)}, got {version!r}")
    if version == "custom":
        plan = _parse_attacks(attacks)
    else:
        if attacks is not None:
            raise ValueError(
                f"attacks=... is only used with version='custom' (version={version!r} runs "
                f"{', '.join(name for name, _ in _VERSION_PLANS[version])}); use attack_kwargs "
                "to change their options"
            )
        plan = [(name, dict(kw)) for name, kw in _VERSION_PLANS[version]]
    names = [name for name, _ in plan]
    if "autoattack" in names:
        raise ValueError("AutoAttack cannot run itself as one of its attacks")
    if len(set(names)) != len(names):
        raise ValueError(f"each attack may appear once in an AutoAttack run, got {names}")
    overrides = _as_kwargs(attack_kwargs, "attack_kwargs")
    for name in overrides:
        if name not in names:
            raise ValueError(
                f"attack_kwargs names {name!r}, which this AutoAttack run does not use "
                f"(it runs {', '.join(names)})"
            )
    plan = [
        (name, {**kw, **_as_kwargs(overrides.get(name), f"attack_kwargs[{name!r}]")})
        for name, kw in plan
    ]
    if steps is not None:
        steps = check_positive_int(steps, "steps")
        plan = [
            (name, {"steps": steps, **kw})
            if name in ATTACKS and "steps" in inspect.signature(get(name)).parameters
            else (name, kw)
            for name, kw in plan
        ]
    for name, kw in plan:
        if name not in ATTACKS:
            if name == "square":
                raise ValueError(
                    f"AutoAttack version {version!r} runs the Square attack, but no attack "
                    "named 'square' is registered (nofrost.attacks.square); use "
                    "version='fast' or version='custom'"
                )
            get(name)  # raises ValueError listing the known attacks
        params = inspect.signature(get(name)).parameters
        takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        for key in kw:
            if key in RESERVED:
                raise ValueError(
                    f"{key!r} cannot be set for {name!r}: AutoAttack passes it to every attack "
                    "(set it on the AutoAttack call instead)"
                )
            if key not in params and not takes_any:
                raise ValueError(
                    f"attack {name!r} has no option {key!r}; its options: "
                    f"{', '.join(attack_options(name))}"
                )
    return plan


def _with_default_targets(name: str, kwargs: dict[str, Any], num_classes: int) -> dict[str, Any]:
    """Targeted attacks (apgd-t, fab-t) get AutoAttack's 9 targets, or K − 1 when K < 10."""
    if "n_target_classes" in kwargs or "n_target_classes" not in attack_options(name):
        return kwargs
    return {**kwargs, "n_target_classes": min(_DEFAULT_TARGETS, num_classes - 1)}


def _check_options(plan: list[tuple[str, dict[str, Any]]], model: nn.Module, x: Tensor, y: Tensor,
                   eps: float, num_classes: int, precision: str, norm: str) -> None:
    """Every attack checks its own options, the norm and the class count before any runs: a
    call on zero examples does all of an attack's validation and nothing else."""
    for name, kwargs in plan:
        _run_registered(name, kwargs, model, x[:0], y[:0], eps, num_classes, torch.Generator(), precision, norm)


def _run_core(
    name: str, kwargs: dict[str, Any], model: nn.Module, x: Tensor, y: Tensor, ball: Ball,
    clean_logits: Tensor, num_classes: int, generator: torch.Generator, precision_ctx,
) -> Tensor:
    """An attack with an ``on_correct`` core, on still-robust rows, skipping its clean pass."""
    defaults = {k: v for k, v in attack_options(name).items() if v is not inspect.Parameter.empty}
    core = attack_info(name).on_correct
    assert core is not None
    return core(model, x, y, ball, clean_logits, num_classes, precision_ctx, generator=generator,
                **{**defaults, **kwargs})


def _run_registered(
    name: str,
    kwargs: dict[str, Any],
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    eps: float,
    num_classes: int,
    generator: torch.Generator,
    precision: str,
    norm: str,
) -> Tensor:
    """Any registered attack, through the public contract."""
    attack = get(name)
    params = inspect.signature(attack).parameters
    extra: dict[str, Any] = {}
    if "generator" in params:
        extra["generator"] = generator
    if "precision" in params:
        extra["precision"] = precision
    elif precision != "fp32":
        raise ValueError(f"attack {name!r} has no precision option; use precision='fp32'")
    if "num_classes" in params:
        extra["num_classes"] = num_classes
    if "norm" in params:
        extra["norm"] = norm
    else:
        check_norm(norm, attack_info(name).norms, attack=name)
    return attack(model, x, y, eps, **kwargs, **extra)


def _base_seed(seed: int | None, generator: torch.Generator | None) -> int:
    if generator is not None:
        return int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device))
    if seed is not None:
        return int(seed)
    return int(torch.randint(0, 2**62, (1,)))  # the global RNG (e.g. seeded by the caller)


def _attack_generator(base: int, index: int) -> torch.Generator:
    # A different, fixed stream per attack: attack i's draws do not depend on attack i-1's.
    return torch.Generator().manual_seed((base * 1_000_003 + 7919 * (index + 1)) % 2**63)


def run_autoattack(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    eps: float,
    setup: Setup,
    *,
    version: str = "standard",
    attacks: Any = None,
    attack_kwargs: Mapping[str, Mapping[str, Any]] | None = None,
    steps: int | None = None,
    seed: int | None = None,
    batch_size: int | None = None,
    on_attack_done: Callable[[str, Tensor], None] | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """AutoAttack (see the module docstring); returns ``(x_adv, per_attack_robust)``.

    Args:
        model, x, y, eps: as for every attack (see :mod:`nofrost.attacks`).
        version: ``"standard"``, ``"fast"`` or ``"custom"``.
        attacks: for ``version="custom"``: attack names, ``(name, kwargs)`` pairs or a
            ``{name: kwargs}`` mapping, in the order they run.
        attack_kwargs: ``{name: kwargs}`` overriding options of the version's attacks.
        steps: iterations of every attack with a ``steps`` option that ``attacks`` /
            ``attack_kwargs`` leave unset (e.g. ``version="fast", steps=20``: the NoFrost
            paper's AA).
        seed: source of randomness unless ``generator`` is given (neither: the global RNG).
        batch_size: attack at most this many examples at a time (default: all at once).
        on_attack_done: called as ``on_attack_done(name, robust)`` after the clean pass
            (``"clean"``) and after each attack, with the robust mask so far: for progress
            reports and per-attack timing.
        generator, precision, num_classes, norm: as for every attack (:class:`Setup`), passed
            on to every attack of the plan, which must support the norm (the standard, fast
            and rand versions do).

    Returns:
        ``x_adv``: per example the point of the attack that broke it, and for robust
        examples the point returned by the first attack (for the standard and fast
        versions APGD-CE's highest-loss point); examples the model misclassifies are
        returned unchanged. Shape, dtype, range and ε-ball as for every attack.
        ``per_attack_robust``: ``{"clean": correct, name_1: robust after attack 1, …}`` in
        run order, bool tensors of shape (N,) on ``x``'s device; each is the previous one
        with the examples that attack broke set to False, so the last is the AutoAttack
        robustness and ``mask[prev] & ~mask[name]`` shows what ``name`` broke.
    """
    generator, precision, num_classes, norm = setup.generator, setup.precision, setup.num_classes, setup.norm
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)):
        raise ValueError(f"seed must be an int or None, got {seed!r}")
    if batch_size is not None:
        batch_size = check_positive_int(batch_size, "batch_size")
    plan = autoattack_plan(version, attacks, attack_kwargs, steps)
    if num_classes is not None:
        plan = [(name, _with_default_targets(name, kw, num_classes)) for name, kw in plan]
        _check_options(plan, model, x, y, eps, num_classes, precision, norm)

    x0 = x.detach()
    n = x0.shape[0]
    device = x0.device
    if n == 0:
        empty = torch.zeros(0, dtype=torch.bool, device=device)
        return x0.clone(), {"clean": empty, **{name: empty.clone() for name, _ in plan}}
    base = _base_seed(seed, generator)

    def chunks(index: Tensor) -> list[Tensor]:
        return list(index.split(batch_size)) if batch_size is not None else [index]

    with attack_mode(model), torch.enable_grad():
        # Each attack at the precision it keeps its strength at (AttackInfo.bf16).
        contexts = {name: autocast(attack_info(name).precision(precision), device) for name, _ in plan}
        # The clean pass and every verdict run in fp32 whatever the attacks' precision: bf16
        # speeds up the search, but whether an example is robust is the model's own answer.
        with torch.no_grad():
            clean_logits = torch.cat(
                [model(x0[c]) for c in chunks(torch.arange(n, device=device))]
            )
        if num_classes is None:  # else the plan was completed and checked up front
            num_classes = check_logits_and_labels(clean_logits, y)
            plan = [(name, _with_default_targets(name, kw, num_classes)) for name, kw in plan]
            _check_options(plan, model, x0, y, eps, num_classes, precision, norm)
        else:
            check_logits_and_labels(clean_logits, y)
        robust = clean_logits.argmax(dim=1) == y
        per_attack: dict[str, Tensor] = {"clean": robust.clone()}
        if on_attack_done is not None:
            on_attack_done("clean", per_attack["clean"])
        x_adv = x0.clone()
        ball = Ball(x0, eps, norm)
        # The attacks run on a faster copy where it computes the same function (BN folded,
        # weights standardised once, channels_last); what they broke is decided on the model.
        attack_model = fast_eval_copy(model, x0[:8], clean_logits[:8])
        first = True
        for index, (name, kwargs) in enumerate(plan):
            todo = robust.nonzero().squeeze(1) if eps > 0 else robust.new_zeros(0).long()
            if todo.numel() > 0:
                attack_generator = _attack_generator(base, index)
                for rows in chunks(todo):
                    if attack_info(name).on_correct is not None:
                        x_rows = _run_core(
                            name, kwargs, attack_model, x0[rows], y[rows], ball[rows], clean_logits[rows],
                            num_classes, attack_generator, contexts[name],
                        )  # fmt: skip
                    else:
                        x_rows = _run_registered(
                            name, kwargs, attack_model, x0[rows], y[rows], eps, num_classes,
                            attack_generator, precision, norm,
                        )  # fmt: skip
                    # Never trust an attack's own bookkeeping: project (a no-op for attacks
                    # that keep the contract) and classify the point it returned.
                    x_rows = ball[rows].project(x_rows.detach())
                    with torch.no_grad():
                        broken = model(x_rows).argmax(dim=1) != y[rows]
                    robust[rows] = robust[rows] & ~broken
                    if first:
                        x_adv[rows] = x_rows
                    else:
                        x_adv[rows] = torch.where(
                            broken.view(-1, *([1] * (x0.dim() - 1))), x_rows, x_adv[rows]
                        )
                first = False
            per_attack[name] = robust.clone()
            if on_attack_done is not None:
                on_attack_done(name, per_attack[name])
    return x_adv, per_attack


run_autoattack = with_setup(run_autoattack, "autoattack", NORMS)

autoattack = register_attack("autoattack", kind="ensemble", display="AA", budget=None, norms=NORMS)(
    variant(
        run_autoattack,
        "autoattack",
        "AutoAttack under the attack contract; returns ``x_adv`` (see :func:`run_autoattack`).",
        fixed={"on_attack_done": None},
        output=lambda result: result[0],
        returns="Tensor",
    )
)


def robust_accuracies(per_attack_robust: Mapping[str, Tensor]) -> dict[str, float]:
    """``{name: fraction robust}`` for the masks of :func:`run_autoattack` (same order)."""
    return {
        name: (float(mask.float().mean()) if mask.numel() else float("nan"))
        for name, mask in per_attack_robust.items()
    }
