"""Per-example metrics of a model, registered by name: ``evaluate(metrics="margin,thickness")``.

* ``margin``: decision margin M(x) (:mod:`.margin`);
* ``thickness``: boundary thickness T(x) (:mod:`.thickness`);
* ``smoothness``: KL smoothness D(x) (:mod:`.smoothness`).

The model properties of the NoFrost paper's Sec. 4.3 (Table 5, Figure 6). See
:mod:`._registry` for how a metric is written.
"""

from nofrost.evaluate.metrics import margin, smoothness, thickness  # noqa: F401  (registration)
from nofrost.evaluate.metrics._registry import (
    MetricBatch,
    MetricInfo,
    list_metrics,
    metric_info,
    parse_metric_specs,
    register_metric,
)

__all__ = ["MetricBatch", "MetricInfo", "list_metrics", "metric_info", "parse_metric_specs", "register_metric"]
