"""Reptile over Stable-Baselines3 learners (the "Reptile_sb3" specification): SB3 trains each task,
lit-meta meta-learns the initialisation. Nothing here knows about Lightning.

:class:`TaskGenerator` and :func:`sample_meta_batch` live in :mod:`lit_meta.envs.task_generator` (they
need no SB3) and are re-exported here; the seeds of tasks and learners are its
:func:`~lit_meta.envs.task_generator.meta_step_seed`.
"""

from lit_meta.envs.task_generator import REVISIT_POLICIES, TaskGenerator, sample_meta_batch
from lit_meta.sb3.algorithms import SB3_ALGORITHMS, resolve_rl_algorithm
from lit_meta.sb3.export import export_policy, load_policy
from lit_meta.sb3.meta_algorithm import BaseMetaAlgorithm
from lit_meta.sb3.reptile import ReptileMetaRL
from lit_meta.sb3.updates import compute_updates, timesteps_for_updates
from lit_meta.sb3.weights import load_meta_weights, meta_parameter_names

__all__ = [
    "REVISIT_POLICIES",
    "SB3_ALGORITHMS",
    "BaseMetaAlgorithm",
    "ReptileMetaRL",
    "TaskGenerator",
    "compute_updates",
    "export_policy",
    "load_meta_weights",
    "load_policy",
    "meta_parameter_names",
    "resolve_rl_algorithm",
    "sample_meta_batch",
    "timesteps_for_updates",
]
