"""MAML for RL (Finn, Abbeel & Levine 2017) as a LightningModule: each training step is one
meta-iteration on a meta-batch of tasks from :class:`~lit_meta.datamodules.RLTaskDataModule`.

A meta-iteration samples, for every task, episodes of the current policy, adapts a copy of it with
``inner_steps`` policy-gradient steps, samples episodes of the adapted copy, and then lets
:class:`~lit_meta.algorithms.MAML` differentiate the post-adaptation PPO surrogate through the inner
updates (``outer_epochs`` optimizer steps on the same episodes, as PPO does). ``algorithm: pretrained``
trains the same policy jointly on all tasks without adaptation: the MAML paper's "pretrained" baseline.
"""

from functools import partial

import numpy as np
import torch
from pytorch_lightning.cli import OptimizerCallable
from torch import Tensor

from lit_meta.algorithms import MAML
from lit_meta.algorithms.maml_rl import AdvantageEstimator, PolicyGradientTask, adaptation_steps, collect_task
from lit_meta.envs.rollouts import EpisodeSampler
from lit_meta.errors import ConfigError, require, require_positive
from lit_meta.modules.base import require_cpu
from lit_meta.modules.distributed import average_gradients_across_processes_, require_data_parallel_strategy
from lit_meta.modules.rl_module import RLModule
from lit_meta.nn import build_policy
from lit_meta.seeding import default_seed, derive_seed, seeded_torch

ALGORITHMS = {"maml": "MAML-RL", "fomaml": "first-order MAML-RL", "pretrained": "pretrained (joint training)"}
"""``algorithm`` value -> the name reports and plots use."""
RANDOM_INIT = "random init"
"""The baseline curve: the same inner rule from a random policy of the same architecture."""


class MAMLRLModule(RLModule):
    """Meta-trains a policy's initial parameters for fast policy-gradient adaptation.

    Train with ``python train.py fit --config configs/nav2d_maml_rl.yaml``.

    :param algorithm: ``maml`` (second-order), ``fomaml`` (first-order) or ``pretrained`` (joint
        training on all tasks, no adaptation in the objective: the paper's baseline).
    :param hidden_sizes: widths of the policy's hidden layers (the paper: two of 100).
    :param activation: ``relu`` or ``tanh``.
    :param init_std: initial standard deviation of a Gaussian policy.
    :param inner_lr: step size α of the policy-gradient adaptation steps (the paper: 0.1).
    :param inner_steps: adaptation steps per task in meta-training.
    :param episodes_per_task: episodes sampled per task before and after each adaptation step (the
        paper's "fast batch size", 20).
    :param gamma: discount factor.
    :param gae_lambda: λ of the generalised advantage estimate (1: Monte-Carlo returns minus baseline).
    :param clip_range: PPO's clipping ε of the outer surrogate.
    :param outer_epochs: optimizer steps per meta-iteration on the same episodes.
    :param gradient_clip_val: clip the meta-gradient to this global norm.
    :param eval_steps: K, the adaptation steps measured at validation, test and by ``evaluate.py`` (the
        adaptation curve's x axis): here policy-gradient steps of size ``inner_lr``.
    :param eval_episodes: episodes averaged per measurement (here also the episodes each adaptation step
        learns from).
    :param seed: seeds the policy's initialisation and every episode (default: the global seed).
    :param optimizer: the meta-optimizer.
    """

    CPU_REASON = "trains on the CPU (its policies are small)"

    ARCHITECTURE_HPARAMS = ("hidden_sizes", "activation")

    def __init__(
        self,
        algorithm: str = "maml",
        hidden_sizes: list[int] | None = None,
        activation: str = "relu",
        init_std: float = 1.0,
        inner_lr: float = 0.1,
        inner_steps: int = 1,
        episodes_per_task: int = 20,
        gamma: float = 0.99,
        gae_lambda: float = 1.0,
        clip_range: float = 0.2,
        outer_epochs: int = 1,
        gradient_clip_val: float | None = None,
        eval_steps: int = 3,
        eval_episodes: int = 20,
        seed: int | None = None,
        optimizer: OptimizerCallable = torch.optim.Adam,
    ) -> None:
        super().__init__()
        seed = default_seed(seed)
        require(seed >= 0, f"seed must be non-negative, got {seed}")
        hidden_sizes = [100, 100] if hidden_sizes is None else list(hidden_sizes)
        self.save_rl_hyperparameters()
        if algorithm not in ALGORITHMS:
            raise ConfigError(f"unknown algorithm '{algorithm}'; choose one of {', '.join(ALGORITHMS)}")
        for name, value in {
            "inner_lr": inner_lr,
            "inner_steps": inner_steps,
            "episodes_per_task": episodes_per_task,
            "outer_epochs": outer_epochs,
            "eval_steps": eval_steps,
            "eval_episodes": eval_episodes,
        }.items():
            require_positive(name, value)
        if gradient_clip_val is not None:
            require_positive("gradient_clip_val", gradient_clip_val)
        require(
            algorithm != "pretrained" or inner_steps == 1,
            "inner_steps applies to maml and fomaml; the pretrained baseline trains without adaptation",
        )
        require(0 < gamma <= 1, f"gamma must be in (0, 1], got {gamma}")
        require(0 <= gae_lambda <= 1, f"gae_lambda must be in [0, 1], got {gae_lambda}")
        require(0 < clip_range < 1, f"clip_range must be in (0, 1), got {clip_range}")
        self.advantages = AdvantageEstimator(gamma, gae_lambda)
        self.optimizer_factory = optimizer
        self.algorithm: MAML | None = None
        self.samplers: dict[int, EpisodeSampler] = {}

    # -------------------------------------------------------------------------------- wiring to data
    def bind_data(self, datamodule) -> None:
        """Build the policy for the task family's spaces (once) and remember the family."""
        self.task_data = datamodule
        if self.algorithm is None:
            self.algorithm = self._maml(self.hparams.seed)

    def _maml(self, seed: int) -> MAML:
        """The inner rule (α = ``inner_lr``) around a new policy for the family's spaces, initialised from
        ``seed`` alone."""
        hparams, template = self.hparams, self.task_data.template_env()
        with seeded_torch(seed):
            policy = build_policy(
                template.observation_space,
                template.action_space,
                hparams.hidden_sizes,
                hparams.activation,
                hparams.init_std,
            )
        return MAML(
            policy, None, hparams.inner_lr, hparams.inner_steps, first_order=hparams.algorithm != "maml"
        )

    def check_trainer(self, trainer) -> None:
        """Episodes are sampled on the CPU: refuse other accelerators, and strategies other than DDP."""
        require_cpu(self, trainer, self.CPU_REASON)
        require_data_parallel_strategy(self, trainer)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return self.optimizer_factory(self.algorithm.parameters())

    @property
    def policy(self) -> torch.nn.Module:
        """The meta-learned initial policy."""
        return self.algorithm.learner

    def sampler(self, episodes: int) -> EpisodeSampler:
        """A vectorised sampler of ``episodes`` environments of the task family (built once per size)."""
        if episodes not in self.samplers:
            default_task = self.task_data.template_env().unwrapped.get_task()
            self.samplers[episodes] = EpisodeSampler(lambda: self.task_data.make_env(default_task), episodes)
        return self.samplers[episodes]

    # ------------------------------------------------------------------------------------ training
    def training_step(self, batch, batch_idx: int) -> None:
        hparams = self.hparams
        inner_steps = 0 if hparams.algorithm == "pretrained" else hparams.inner_steps
        sampler = self.sampler(hparams.episodes_per_task)
        tasks, wrapper, advantages = [], self.algorithm.wrapper, self.advantages
        for index, task in enumerate(batch.task_parameters, start=batch.first_index):
            # the task's episodes depend on its seed alone, whichever process collects them
            seed = derive_seed(hparams.seed, f"train-{batch.meta_step}-{index}")
            with seeded_torch(seed):
                tasks.append(
                    collect_task(wrapper, sampler, task, seed, inner_steps, advantages, hparams.clip_range)
                )
        optimizer = self.optimizers()
        for epoch in range(hparams.outer_epochs):
            optimizer.zero_grad()
            if inner_steps:
                loss = self.algorithm.meta_gradient(tasks).query_loss.mean()
            else:
                loss = self._joint_gradient(tasks)
            average_gradients_across_processes_(self.algorithm.parameters(), self.trainer)
            if hparams.gradient_clip_val is not None:
                self.clip_gradients(optimizer, hparams.gradient_clip_val, gradient_clip_algorithm="norm")
            # Lightning counts its optimizer's steps as global steps: one per meta-iteration
            (optimizer.step if epoch == hparams.outer_epochs - 1 else optimizer.optimizer.step)()
        # means over this process's tasks, averaged over processes (equal shares: the meta-batch's means)
        log = partial(self.log, on_step=True, on_epoch=False, sync_dist=True)
        log("train/return_before", _mean(t.return_before for t in tasks), prog_bar=True)
        if inner_steps:
            log("train/return_after", _mean(t.return_after for t in tasks), prog_bar=True)
        if tasks[0].query.successes is not None:
            log("train/success_rate", _mean(t.query.successes.mean().item() for t in tasks))
        log("train/outer_loss", loss)
        self.count_environment_steps(sum(int(e.mask.sum()) for t in tasks for e in (*t.support, t.query)))

    def _joint_gradient(self, tasks: list[PolicyGradientTask]) -> Tensor:
        """The pretrained baseline: PPO's surrogate of the unadapted policy, averaged over tasks."""
        losses = [task.query_loss(self.policy)[0] for task in tasks]
        loss = torch.stack(losses).mean()
        loss.backward()
        return loss.detach()

    # ---------------------------------------------------------------------------------- evaluation
    @property
    def learner_name(self) -> str:
        return ALGORITHMS[self.hparams.algorithm]

    @property
    def initialisation_name(self) -> str:
        return "pretrained init" if self.hparams.algorithm == "pretrained" else "meta-learned init"

    def curve_names(self) -> tuple[str, ...]:
        """The learned initialisation, and a random one of the same architecture."""
        return self.initialisation_name, RANDOM_INIT

    def adapt_task(self, name: str, task: dict, seed: int, steps: int, episodes: int) -> list[float]:
        """Policy-gradient steps (α = ``inner_lr``) from the learned initialisation or from a random one
        seeded by the data seed (every checkpoint of a task family is compared with the same one)."""
        if name == RANDOM_INIT:
            start = self._maml(derive_seed(self.task_data.hparams.seed, "random-init")).wrapper
        else:
            start = self.algorithm.wrapper
        returns = []
        for sampled, _ in adaptation_steps(start, self.sampler(episodes), task, seed, steps, self.advantages):
            returns.append(sampled.returns.mean().item())
            self.record_success(sampled.successes)
        return returns

    def evaluation_axis(self, steps: int) -> tuple[list[int], str]:
        return list(range(steps + 1)), "policy-gradient adaptation steps"

    def evaluation_details(self) -> dict:
        hparams = self.hparams
        return {"algorithm": hparams.algorithm, "inner_lr": hparams.inner_lr}


def _mean(values) -> float:
    return float(np.mean(list(values)))


__all__ = ["ALGORITHMS", "MAMLRLModule"]
