"""The metric registry and the per-batch inputs that metrics share.

A metric is a function ``metric(batch: MetricBatch, **options) -> Tensor`` of per-example
values (shape ``(N,)``), registered with what it needs:

* ``"clean_logits"``: the model's logits on the batch (computed once by ``evaluate``);
* ``"labels"``: the true labels;
* ``"adversarial"``: adversarial examples, asked for with :meth:`MetricBatch.adversarial`
  (computed once per batch and attack setting, so metrics that use the same ``x*`` share it).

``evaluate(metrics=...)`` builds one :class:`MetricBatch` per batch, calls every requested
metric on it, and reports each metric's mean (and its per-example values beside the JSON).
Adding a metric is one small module that calls :func:`register_metric`, plus its test.
"""

from __future__ import annotations

import inspect
import zlib
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch
from torch import Tensor, nn

from nofrost import attacks as attack_registry
from nofrost.data.loader import derive_seed
from nofrost.evaluate.specs import AttackSpec, parse_spec

__all__ = ["NEEDS", "MetricBatch", "MetricInfo", "list_metrics", "metric_info", "parse_metric_specs",
           "register_metric"]  # fmt: skip

NEEDS = ("clean_logits", "labels", "adversarial")


@dataclass(frozen=True)
class MetricInfo:
    name: str
    display: str  # the paper's column header, e.g. "M(x)"
    higher_is_better: bool
    needs: tuple[str, ...]
    compute: Callable[..., Tensor]

    @property
    def summary(self) -> str:
        """The first line of the metric's docstring."""
        return (inspect.getdoc(self.compute) or "").split("\n")[0]

    def options(self) -> dict[str, Any]:
        """The metric's options and their defaults."""
        params = list(inspect.signature(self.compute).parameters.values())[1:]
        return {p.name: p.default for p in params}


_METRICS: dict[str, MetricInfo] = {}


def register_metric(
    name: str, *, display: str, higher_is_better: bool, needs: Sequence[str]
) -> Callable[[Callable[..., Tensor]], Callable[..., Tensor]]:
    """Register ``metric(batch, **options) -> per-example values`` under ``name``."""
    unknown = sorted(set(needs) - set(NEEDS))
    if unknown:
        raise ValueError(f"metric {name!r}: unknown needs {unknown}; known: {', '.join(NEEDS)}")

    def decorator(fn: Callable[..., Tensor]) -> Callable[..., Tensor]:
        if name in _METRICS:
            raise ValueError(f"metric {name!r} is registered twice")
        _METRICS[name] = MetricInfo(name, display, higher_is_better, tuple(needs), fn)
        return fn

    return decorator


def list_metrics() -> list[str]:
    return sorted(_METRICS)


def metric_info(name: str) -> MetricInfo:
    try:
        return _METRICS[name]
    except KeyError:
        raise ValueError(f"unknown metric {name!r}; available: {', '.join(list_metrics())}") from None


def parse_metric_specs(metrics: str | Sequence[str | AttackSpec] | None) -> list[AttackSpec]:
    """``"margin,thickness:beta=0.5"`` (or a list of such items) as checked specs."""
    if not metrics:
        return []
    items = metrics.split(",") if isinstance(metrics, str) else list(metrics)
    specs = []
    for item in items:
        if isinstance(item, str) and not item.strip():
            continue
        spec = parse_spec(item.strip() if isinstance(item, str) else item)
        options = metric_info(spec.name).options()
        unknown = sorted(set(spec.kwargs) - set(options))
        if unknown:
            raise ValueError(f"metric {spec.name!r} has no option {unknown[0]!r} (in {spec.label!r}); "
                             f"its options: {', '.join(options) or 'none'}")
        if spec.label in {s.label for s in specs}:
            raise ValueError(f"metric {spec.label!r} is asked for twice")
        specs.append(spec)
    return specs


@dataclass
class MetricBatch:
    """What the metrics of one evaluated batch share.

    ``model`` is the model itself (every value is computed on it, in fp32); ``attack_model``
    the copy the attacks run on (the model or its faster copy, :mod:`nofrost.attacks._fast`).
    ``eps`` and ``norm`` are the evaluation's threat model; ``seed`` this batch's seed.
    """

    model: nn.Module
    attack_model: nn.Module
    x: Tensor
    y: Tensor
    clean_logits: Tensor
    eps: float
    norm: str
    seed: int
    precision: str = "fp32"
    _adversarial: dict[tuple, Tensor] = field(default_factory=dict, repr=False)

    @property
    def predicted(self) -> Tensor:
        return self.clean_logits.argmax(dim=1)

    def logits(self, images: Tensor) -> Tensor:
        """The model's fp32 logits on ``images``, a batch's worth of images at a time."""
        if len(images) == 0:
            return self.clean_logits[:0].float()
        with torch.no_grad():
            return torch.cat([self.model(chunk).float() for chunk in images.split(max(len(self.x), 1))])

    def adversarial(self, attack: str, *, eps: float | None = None, norm: str | None = None,
                    **options: Any) -> Tensor:
        """``x*``: the registered ``attack`` with ``options`` at ``eps`` / ``norm`` (default: the
        evaluation's), run against the model's own predictions instead of the labels.

        Attacking the prediction makes ``x*`` label-free, as TRADES's smoothness attack is:
        misclassified examples are attacked too (under the labels, an attack returns them
        unchanged). Computed once per batch and setting; seeded by the batch seed and the
        setting, so it does not depend on which other metrics run.
        """
        eps = self.eps if eps is None else eps
        norm = self.norm if norm is None else norm
        settings = tuple(sorted((k, tuple(v.tolist()) if isinstance(v, Tensor) else v) for k, v in options.items()))
        key = (attack, eps, norm, settings)
        if key not in self._adversarial:
            extra = {"norm": norm} if norm != "linf" else {}
            if self.precision != "fp32":
                extra["precision"] = self.precision
            self._adversarial[key] = attack_registry.get(attack)(
                self.attack_model, self.x, self.predicted, eps, generator=self.generator(repr(key)), **extra, **options
            ).detach()
        return self._adversarial[key]

    def generator(self, purpose: str) -> torch.Generator:
        """A generator on the batch's device, seeded by the batch seed and ``purpose``: the
        same draws for the same purpose whatever else runs."""
        generator = torch.Generator(device=self.x.device)
        generator.manual_seed(derive_seed(self.seed, zlib.crc32(purpose.encode())))
        return generator
