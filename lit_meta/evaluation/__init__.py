"""How well a meta-learned initialisation adapts to tasks it has never seen."""

from lit_meta.evaluation.adaptation import AdaptationCurve, adaptation_curve
from lit_meta.evaluation.stats import mean_confidence_interval, summarise_per_step

__all__ = ["AdaptationCurve", "adaptation_curve", "mean_confidence_interval", "summarise_per_step"]
