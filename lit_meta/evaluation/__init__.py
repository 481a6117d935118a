"""How well a meta-learned initialisation adapts to tasks it has never seen."""

from lit_meta.evaluation.adaptation import AdaptationCurves, adaptation_curves
from lit_meta.evaluation.stats import mean_confidence_interval, summarise_per_step

__all__ = ["AdaptationCurves", "adaptation_curves", "mean_confidence_interval", "summarise_per_step"]
