"""Reptile over Stable-Baselines3 learners (the "Reptile_sb3" specification) as a LightningModule: each
training step is one meta-iteration of :class:`lit_meta.sb3.ReptileMetaRL` on a meta-batch from
:class:`RLTaskDataModule`."""

import math
from pathlib import Path

import torch
from pytorch_lightning.cli import OptimizerCallable
from stable_baselines3.common.utils import ConstantSchedule, LinearSchedule

from lit_meta.errors import require, require_positive
from lit_meta.modules.rl_module import RLModule
from lit_meta.sb3 import ReptileMetaRL, resolve_rl_algorithm, timesteps_for_updates
from lit_meta.sb3.evaluation import adaptation_returns, updates_per_step
from lit_meta.sb3.export import export_policy
from lit_meta.seeding import default_seed, meta_step_seed

INITIALISATIONS = {"meta-learned init": True, "fresh init": False}
"""Curve name -> whether the learner starts from the meta-parameters (else from SB3's random init)."""
SB3_EXPORT = "sb3/meta_policy.zip"
"""Where, inside the run directory, the meta-initialisation is exported in SB3's format."""


class SB3ReptileModule(RLModule):
    """Meta-trains the initial parameters of an SB3 learner with Reptile.

    Train with ``python train.py fit --config configs/cartpole_sb3_reptile.yaml``.

    :param rl_algorithm: the inner learner, one of SB3's algorithms by name (``PPO``, ``SAC``, ...).
    :param rl_algo_kwargs: its keyword arguments (``policy``, ``n_steps``, ``policy_kwargs``, ...).
    :param inner_timesteps: timesteps of each task's inner ``learn``; or give ``inner_updates``.
    :param inner_updates: Reptile's k, gradient updates per task (converted to timesteps with
        :func:`lit_meta.sb3.timesteps_for_updates`).
    :param meta_step_size: ε at the first meta-iteration.
    :param meta_step_size_final: ε at ``trainer.max_steps``, linearly annealed (the Reptile paper anneals
        to 0); ``None`` keeps ε constant.
    :param ignore_prefixes: parameter-name prefixes the meta-update leaves alone (e.g. ``log_std``).
    :param eval_steps: K, the adaptation steps measured at validation, test and by ``evaluate.py`` (the
        adaptation curve's x axis): here rounds of ``eval_step_timesteps`` of inner training.
    :param eval_step_timesteps: timesteps per round (default ``inner_timesteps``).
    :param eval_episodes: episodes averaged per measurement (deterministic actions).
    :param seed: seeds the meta-initialisation and every inner learner (default: the global seed).
    :param optimizer: the meta-optimizer; it receives the Reptile direction as gradient and ε as its
        learning rate, so ``torch.optim.SGD`` gives exactly θ ← θ + ε·mean(θᵢ − θ).
    """

    CPU_REASON = "trains on the CPU (SB3 learners run there)"
    FORK_RNG = False  # SB3 seeds the global generators itself when it builds a learner

    ARCHITECTURE_HPARAMS = ("rl_algorithm", "rl_algo_kwargs", "ignore_prefixes")

    def __init__(
        self,
        rl_algorithm: str = "PPO",
        rl_algo_kwargs: dict | None = None,
        inner_timesteps: int | None = None,
        inner_updates: int | None = None,
        meta_step_size: float = 1.0,
        meta_step_size_final: float | None = 0.0,
        ignore_prefixes: list[str] | None = None,
        eval_steps: int = 1,
        eval_step_timesteps: int | None = None,
        eval_episodes: int = 5,
        seed: int | None = None,
        optimizer: OptimizerCallable = torch.optim.SGD,
    ) -> None:
        super().__init__()
        seed = default_seed(seed)
        self.save_rl_hyperparameters()
        self.learner_class = resolve_rl_algorithm(rl_algorithm)
        device = (rl_algo_kwargs or {}).get("device", "cpu")
        require(
            device == "cpu", f"{type(self).__name__} runs its SB3 learners on the CPU, got device '{device}'"
        )
        require(
            (inner_timesteps is None) != (inner_updates is None),
            "give either model.inner_timesteps or model.inner_updates, not both or neither",
        )
        if inner_updates is not None:
            inner_timesteps = timesteps_for_updates(
                self.learner_class, inner_updates, **(rl_algo_kwargs or {})
            )
        require_positive("inner_timesteps", inner_timesteps)
        require(0 < meta_step_size <= 1, f"meta_step_size must be in (0, 1], got {meta_step_size}")
        if meta_step_size_final is not None:
            require(
                0 <= meta_step_size_final <= meta_step_size,
                f"meta_step_size_final must be in [0, meta_step_size], got {meta_step_size_final}",
            )
        for name, value in {"eval_steps": eval_steps, "eval_episodes": eval_episodes}.items():
            require_positive(name, value)
        self.inner_timesteps = inner_timesteps
        self.eval_step_timesteps = eval_step_timesteps or inner_timesteps
        require_positive("eval_step_timesteps", self.eval_step_timesteps)
        self.optimizer_factory = optimizer
        self.meta_algorithm: ReptileMetaRL | None = None

    # -------------------------------------------------------------------------------- wiring to data
    def bind_data(self, datamodule) -> None:
        """Build the meta-algorithm on the datamodule's task family (its spaces and task generator)."""
        if self.meta_algorithm is not None:
            self.meta_algorithm.task_generator = datamodule.task_generator
            self.task_data = datamodule
            return
        hparams = self.hparams
        final = hparams.meta_step_size_final
        schedule = (
            ConstantSchedule(hparams.meta_step_size)
            if final is None
            else LinearSchedule(hparams.meta_step_size, final, 1.0)
        )
        self.meta_algorithm = ReptileMetaRL(
            datamodule.task_generator,
            self.learner_class,
            hparams.rl_algo_kwargs,
            meta_step_size=schedule,
            ignore_prefixes=hparams.ignore_prefixes or (),
            meta_batch_size=datamodule.hparams.meta_batch_size,
            inner_timesteps=self.inner_timesteps,
            seed=hparams.seed,
            template_env=datamodule.template_env(),
        )
        self.meta_policy = self.meta_algorithm.policy  # a submodule: its weights are the checkpoint's
        self.task_data = datamodule

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return self.optimizer_factory(self.meta_algorithm.meta_parameters())

    # ------------------------------------------------------------------------------------ training
    def training_step(self, batch, batch_idx: int) -> None:
        max_steps = self.trainer.max_steps
        if self.hparams.meta_step_size_final is not None:
            require(max_steps > 0, "annealing meta_step_size needs trainer.max_steps")
        self.meta_algorithm.meta_optimizer = self.optimizers()  # Lightning's, over meta_parameters()
        self.meta_algorithm.horizon = max_steps if max_steps > 0 else None  # ε is annealed to max_steps
        self.meta_algorithm.meta_step = batch.meta_step
        step_size = self.meta_algorithm.current_meta_step_size()
        stats = self.meta_algorithm.train_step(batch.tasks, meta_step=batch.meta_step)
        self.log("train/meta_step_size", step_size, on_step=True, on_epoch=False)
        if math.isfinite(stats["inner_return"]):
            self.log("train/inner_return", stats["inner_return"], prog_bar=True, on_step=True, on_epoch=False)

    # ---------------------------------------------------------------------------------- evaluation
    @property
    def learner_name(self) -> str:
        return self.hparams.rl_algorithm

    def curve_names(self) -> tuple[str, ...]:
        return tuple(INITIALISATIONS)

    def evaluation_seed(self, split: str, index: int) -> int:
        """The inner seed of held-out task ``index`` of ``split``, derived from this module's seed."""
        return meta_step_seed(self.hparams.seed, f"evaluation-{split}", 0, index)

    def adapt_task(self, name: str, task: dict, seed: int, steps: int, episodes: int) -> list[float]:
        """Rounds of ``eval_step_timesteps`` of SB3 training from the meta-learned initialisation or from
        SB3's random one, the learner seeded with ``seed`` either way."""
        return adaptation_returns(
            self.meta_algorithm,
            lambda: self.task_data.make_env(task),
            seed,
            steps,
            self.eval_step_timesteps,
            episodes,
            from_meta=INITIALISATIONS[name],
        )

    def evaluation_axis(self, steps: int) -> tuple[list[int], str]:
        """Cumulative inner gradient updates after each of ``steps`` rounds."""
        updates = updates_per_step(self.meta_algorithm, self.eval_step_timesteps, steps)
        return updates, "inner gradient updates"

    def evaluation_details(self) -> dict:
        return {"rl_algorithm": self.hparams.rl_algorithm, "step_timesteps": self.eval_step_timesteps}

    def on_train_end(self) -> None:
        """Export the meta-initialisation in SB3's own format, ``<run_dir>/sb3/meta_policy.zip``, which
        :func:`lit_meta.sb3.load_policy` opens without running code from it."""
        if self.trainer.is_global_zero:
            export_policy(self.meta_algorithm.meta_model, Path(self.trainer.default_root_dir) / SB3_EXPORT)


__all__ = ["SB3ReptileModule"]
