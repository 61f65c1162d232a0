"""The model registry: ``register_model``, ``create_model``, ``list_models`` and model specs.

A factory is a function ``factory(num_classes: int, *, kwarg=default, ...) -> nn.Module``
with explicit keyword arguments. ``create_model`` fills in the defaults and attaches the
complete, JSON-serializable recipe to the model::

    model.nofrost_spec == {"name": "cifar_resnet18", "num_classes": 10,
                           "kwargs": {"norm": "none", "mean": [...], "std": [...], ...}}

so ``create_model_from_spec(model.nofrost_spec)`` rebuilds exactly the same architecture
(this is what ``model.json`` stores next to the weights).
"""

from __future__ import annotations

import inspect
import json
import numbers
from collections.abc import Mapping
from typing import Any, Callable

from torch import nn

from nofrost.registry import Registry

ModelFactory = Callable[..., nn.Module]

MODELS: Registry[ModelFactory] = Registry("model")


def register_model(name: str) -> Callable[[ModelFactory], ModelFactory]:
    """Decorator registering ``factory(num_classes, **kwargs) -> nn.Module`` under ``name``."""
    return MODELS.register(name)


def list_models() -> list[str]:
    """The registered model names, sorted."""
    return MODELS.names()


def _jsonable(value: Any, where: str) -> Any:
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, where) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v, where) for k, v in value.items()}
    raise ValueError(
        f"{where} has a value of type {type(value).__name__} ({value!r}); model kwargs must be "
        f"JSON values (numbers, strings, booleans, lists) so the model can be rebuilt from its spec"
    )


def model_norm(name: str, norm: str | None = None) -> str:
    """The normalization kind model ``name`` is built with: ``norm`` when given, else the
    factory's default, and ``"none"`` for a normalizer-free model that takes no ``norm``."""
    parameter = inspect.signature(MODELS.get(name)).parameters.get("norm")
    if parameter is None:
        return "none"
    return norm if norm is not None else parameter.default


def _accepted_kwargs(factory: ModelFactory) -> list[str]:
    params = inspect.signature(factory).parameters
    return [n for n, p in params.items() if n != "num_classes" and p.kind != p.VAR_KEYWORD]


def create_model(name: str, num_classes: int, **kwargs: Any) -> nn.Module:
    """Build the registered model ``name`` with ``num_classes`` outputs.

    The model takes images in [0, 1] of shape (N, C, H, W) and normalizes them itself.
    Unknown names or keyword arguments raise ``ValueError`` listing what is available.
    """
    factory = MODELS.get(name)
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
    signature = inspect.signature(factory)
    has_var_kw = any(p.kind == p.VAR_KEYWORD for p in signature.parameters.values())
    accepted = _accepted_kwargs(factory)
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown and not has_var_kw:
        raise ValueError(
            f"model {name!r} got unexpected keyword argument(s) {', '.join(unknown)}; "
            f"it accepts: {', '.join(accepted)}"
        )
    bound = signature.bind(num_classes, **kwargs)
    bound.apply_defaults()
    resolved: dict[str, Any] = {}
    for key, value in bound.arguments.items():
        if key == "num_classes":
            continue
        if signature.parameters[key].kind == inspect.Parameter.VAR_KEYWORD:
            resolved.update(value)
        else:
            resolved[key] = value
    spec = {
        "name": name,
        "num_classes": num_classes,
        "kwargs": {k: _jsonable(v, f"model {name!r} keyword argument {k!r}") for k, v in resolved.items()},
    }
    model = factory(num_classes, **kwargs)
    if not isinstance(model, nn.Module):
        raise TypeError(f"factory for model {name!r} returned {type(model).__name__}, not an nn.Module")
    model.nofrost_spec = spec
    return model


def validate_spec(spec: Any, source: str = "model spec") -> dict[str, Any]:
    """Check that ``spec`` looks like ``{"name": str, "num_classes": int, "kwargs": dict}``."""
    if not isinstance(spec, Mapping):
        raise ValueError(f"{source} must be a JSON object with name, num_classes and kwargs, got {type(spec).__name__}")
    missing = [k for k in ("name", "num_classes", "kwargs") if k not in spec]
    if missing:
        raise ValueError(f"{source} lacks {', '.join(missing)}; expected keys name, num_classes, kwargs")
    if not isinstance(spec["name"], str) or not isinstance(spec["kwargs"], Mapping):
        raise ValueError(f"{source}: 'name' must be a string and 'kwargs' an object")
    return {"name": spec["name"], "num_classes": spec["num_classes"], "kwargs": dict(spec["kwargs"])}


def create_model_from_spec(spec: Mapping[str, Any]) -> nn.Module:
    """Rebuild a model from its ``nofrost_spec`` (e.g. read from ``model.json``)."""
    spec = validate_spec(spec)
    return create_model(spec["name"], spec["num_classes"], **spec["kwargs"])


def spec_to_json(spec: Mapping[str, Any]) -> str:
    return json.dumps(validate_spec(spec), indent=2, sort_keys=True)
