"""Reptile over Stable-Baselines3 learners (seed 001): SB3 trains each task, lit-meta meta-learns the
initialisation. Nothing here knows about Lightning."""

from lit_meta.sb3.algorithms import SB3_ALGORITHMS, resolve_rl_algorithm
from lit_meta.sb3.export import export_policy, load_policy
from lit_meta.sb3.meta_algorithm import BaseMetaAlgorithm, derive_seed, sample_meta_batch
from lit_meta.sb3.reptile import ReptileMetaRL
from lit_meta.sb3.task_generator import REVISIT_POLICIES, TaskGenerator
from lit_meta.sb3.updates import compute_updates, timesteps_for_updates
from lit_meta.sb3.weights import load_meta_weights, meta_parameter_names

__all__ = [
    "REVISIT_POLICIES",
    "SB3_ALGORITHMS",
    "BaseMetaAlgorithm",
    "ReptileMetaRL",
    "TaskGenerator",
    "compute_updates",
    "derive_seed",
    "export_policy",
    "load_meta_weights",
    "load_policy",
    "meta_parameter_names",
    "resolve_rl_algorithm",
    "sample_meta_batch",
    "timesteps_for_updates",
]
