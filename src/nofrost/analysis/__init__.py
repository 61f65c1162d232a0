"""Why a model is robust, measured: model properties (Table 5, Figure 6) and normalization
statistics of clean vs adversarial images (Figure 1). ``nofrost analyze`` runs them."""

from nofrost.analysis.analyze import AnalysisSummary, analyze
from nofrost.analysis.bn_stats import (
    LayerStats,
    NormStats,
    bn_layers,
    channel_distance,
    clean_vs_adversarial,
    measured_positions,
    running_stats,
)

__all__ = ["AnalysisSummary", "LayerStats", "NormStats", "analyze", "bn_layers", "channel_distance",
           "clean_vs_adversarial", "measured_positions", "running_stats"]
