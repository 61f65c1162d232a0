"""Named attack suites and the paper-layout grouping of attack columns.

A suite is a name that expands into attack specs (``"name:key=value"`` strings, as parsed by
:func:`nofrost.evaluate.robustness.parse_attack_specs`):

* ``paper``: the columns of the NoFrost paper's Tables 1-2 (H. Wang et al., "Removing Batch
  Normalization Boosts Adversarial Training", ICML 2022), measured as its reference code
  measured them (amazon-science/normalizer-free-robust-training ``test.py``; "P" is the paper's
  Sec. 4.1, "T" that file):

  - ``pgd:steps=20``: ε-ball random start, step min(1.25ε, ε + 4/255)/20 = 0.5/255 (T: the
    step rule for every attack, advertorch's ``PGDAttack``; P: 20 iterations);
  - ``apgd-ce:steps=20``, ``apgd-dlr:steps=20``: 1 restart, ρ = 0.75 and the authors' code's
    step-halving periods at 20 steps, which torchattacks' APGD (T) copies;
  - ``mifgsm:steps=20:step_size=pgd``: decay 1, no random start, step 0.5/255 (T: advertorch's
    ``MomentumIterativeAttack`` with the PGD step rule, not Dong et al.'s ε/T = 0.4/255);
  - ``cw-linf:steps=20``: PGD on the CW margin loss with κ = 50 and the PGD start and step (T);
  - ``rays:queries=400``, ``square:queries=400``: 400 queries per example (P; T has neither
    attack, so each follows its original paper; P ran RayS on 1,000 images, we on all ``n``);
  - ``autoattack:version=fast:steps=20``: APGD-CE then APGD-DLR (P: "the fast version"). P
    gives no step count and T has no AutoAttack, so we read P's "20 iterations for all
    white-box attacks" as covering it; the standard AutoAttack uses 100.

  It is weaker than the field's standard on purpose: it reproduces the paper's columns.
* ``strong`` (the default of ``nofrost evaluate``): standard AutoAttack (APGD-CE, APGD-T,
  FAB-T, Square-5000, 100 iterations), the usual reference number for ℓ∞ robustness.

:func:`expand_suites` turns ``"clean,paper"`` or ``["strong", "pgd"]`` into a flat list of
specs; :func:`column_group` and :func:`display_name` place each spec in the paper's table
layout ``clean | white-box | black-box | AA`` under a short header such as ``PGD-20``.

Suites only name attacks (they are checked when the specs are parsed); groups and headers
come from each attack's registered :class:`~nofrost.attacks.AttackInfo` (its kind, display
name and budget option), so a new attack is placed correctly without touching this module.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from nofrost.evaluate.specs import EVALUATION_DEFAULTS, parse_spec

if TYPE_CHECKING:
    from nofrost.attacks import AttackInfo

__all__ = [
    "GROUPS",
    "SUITES",
    "column_group",
    "display_name",
    "expand_suites",
    "list_suites",
    "paper_columns",
]

SUITES: dict[str, tuple[str, ...]] = {
    "paper": (
        "pgd:steps=20",
        "apgd-ce:steps=20",
        "apgd-dlr:steps=20",
        "mifgsm:steps=20:step_size=pgd",
        "cw-linf:steps=20",
        "rays:queries=400",
        "square:queries=400",
        "autoattack:version=fast:steps=20",
    ),
    "strong": ("autoattack:version=standard",),
}

# Column groups in the order of the paper's tables; an attack's group is its registered kind.
GROUPS: tuple[str, ...] = ("clean", "white-box", "black-box", "AutoAttack")
_GROUP_OF_KIND = {"white-box": "white-box", "black-box": "black-box", "ensemble": "AutoAttack"}


def list_suites() -> list[str]:
    """Names of the suites, sorted."""
    return sorted(SUITES)


def expand_suites(text_or_list: str | Sequence[str]) -> list[str]:
    """Replace suite names by their attack specs: ``"clean,paper"`` -> ``["clean", "pgd:…", …]``.

    Accepts a comma-separated string or a list of items; items that are not suite names
    (``clean``, ``pgd``, ``pgd:steps=50``, …) are kept as they are. Order is preserved and
    exact duplicates are dropped (``"paper,pgd:steps=20"`` lists PGD-20 once).
    """
    if isinstance(text_or_list, str):
        items = text_or_list.split(",")
    elif isinstance(text_or_list, Sequence):
        items = list(text_or_list)
    else:
        raise ValueError(
            f"expected attack specs as a string such as 'clean,paper' or a list of strings, "
            f"got {type(text_or_list).__name__}"
        )
    out: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise ValueError(f"attack specs must be strings, got {type(item).__name__} {item!r}")
        item = item.strip()
        if not item:
            continue
        for spec in SUITES.get(item, (item,)):
            if spec not in out:
                out.append(spec)
    return out


def _split(spec: Any) -> tuple[str, dict[str, Any]]:
    """``(name, kwargs)`` of a spec string ``name[:key=value...]`` or an AttackSpec."""
    parsed = parse_spec(spec)
    return parsed.name, dict(parsed.kwargs)


def _info(name: str) -> AttackInfo | None:
    """The registered attack's metadata (None for names no attack is registered under)."""
    from nofrost import attacks

    return attacks.attack_info(name) if name in attacks.list_attacks() else None


def _resolved(name: str, kwargs: dict[str, Any], key: str) -> Any:
    """The value of ``key`` the attack runs with: the spec's, the evaluation default, or the
    attack function's own default (None if the attack is not registered or has no such
    parameter)."""
    if key in kwargs:
        return kwargs[key]
    if key in EVALUATION_DEFAULTS.get(name, {}):
        return EVALUATION_DEFAULTS[name][key]
    from nofrost import attacks

    if name not in attacks.list_attacks():
        return None
    parameter = inspect.signature(attacks.get(name)).parameters.get(key)
    if parameter is None or parameter.default is inspect.Parameter.empty:
        return None
    return parameter.default


def column_group(spec: Any) -> str:
    """The paper-table group of a spec: ``"clean"``, ``"white-box"``, ``"black-box"`` or
    ``"AutoAttack"`` (an ensemble), from the attack's registered kind; unregistered names are
    white-box."""
    name, _ = _split(spec)
    if name == "clean":
        return "clean"
    info = _info(name)
    return _GROUP_OF_KIND[info.kind] if info is not None else "white-box"


def display_name(spec: Any) -> str:
    """A short column header: ``PGD-20``, ``APGD-CE``, ``MIA``, ``CW∞``, ``RayS``,
    ``Square-400``, ``AA-fast``, ``AA``.

    The budget is shown for PGD-like attacks and Square always, and for the others only when
    it differs from the paper's (``mifgsm:steps=50`` is ``MIA-50``); more than one restart is
    shown as ``×r``. Unknown attacks keep their spec label.
    """
    name, kwargs = _split(spec)
    if name == "clean":
        return "clean"
    info = _info(name)
    if info is None:
        return ":".join([name, *(f"{k}={v}" for k, v in kwargs.items())])
    short = info.display
    version = kwargs.get("version")  # an ensemble's non-default version: AA-fast
    if version is not None and version != _resolved(name, {}, "version"):
        short = f"{short}-{version}"
    if info.budget is not None:
        budget = _resolved(name, kwargs, info.budget)
        if budget is not None and (info.paper_budget is None or budget != info.paper_budget):
            short = f"{short}-{budget}"
    restarts = kwargs.get("restarts")
    if isinstance(restarts, int) and restarts > 1:
        short = f"{short}×{restarts}"
    return short


def paper_columns(labels: Sequence[Any]) -> list[tuple[str, str, Any]]:
    """``(group, display name, label)`` for each label, ordered as the paper's tables.

    Groups come in the order ``clean | white-box | black-box | AutoAttack``; within a group the
    given order is kept. Use it to lay out ``result["attacks"]`` (whose keys are spec labels).
    """
    entries = [(column_group(label), display_name(label), label) for label in labels]
    return sorted(entries, key=lambda entry: GROUPS.index(entry[0]))
