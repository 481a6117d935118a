"""LightningModules: they compose networks, algorithms and evaluation into trainable runs."""

from lit_meta.modules.checkpointing import MetaLearningModule
from lit_meta.modules.few_shot import NETWORKS, FewShotModule, build_network

__all__ = ["NETWORKS", "FewShotModule", "MetaLearningModule", "build_network"]
