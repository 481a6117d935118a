"""LightningModules: they compose networks, algorithms and evaluation into trainable runs."""

from lit_meta.modules.base import MetaLearningModule
from lit_meta.modules.few_shot import FewShotModule
from lit_meta.modules.maml_rl import MAMLRLModule
from lit_meta.modules.pearl import PEARLModule
from lit_meta.modules.rl2 import RL2Module
from lit_meta.modules.sb3_reptile import SB3ReptileModule
from lit_meta.modules.varshare_sac import VarShareSACModule

__all__ = [
    "FewShotModule",
    "MAMLRLModule",
    "MetaLearningModule",
    "PEARLModule",
    "RL2Module",
    "SB3ReptileModule",
    "VarShareSACModule",
]
