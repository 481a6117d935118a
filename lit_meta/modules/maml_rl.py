"""MAML for RL (Finn, Abbeel & Levine 2017) as a LightningModule: each training step is one
meta-iteration on a meta-batch of tasks from :class:`~lit_meta.datamodules.RLTaskDataModule`.

A meta-iteration samples, for every task, episodes of the current policy, adapts a copy of it with
``inner_steps`` policy-gradient steps, samples episodes of the adapted copy, and then lets
:class:`~lit_meta.algorithms.MAML` differentiate the post-adaptation PPO surrogate through the inner
updates (``outer_epochs`` optimizer steps on the same episodes, as PPO does). ``algorithm: pretrained``
trains the same policy jointly on all tasks without adaptation: the MAML paper's "pretrained" baseline.
"""

from functools import partial

import learn2learn as l2l
import numpy as np
import torch
from pytorch_lightning.cli import OptimizerCallable
from torch import Tensor
from tqdm import tqdm

from lit_meta.algorithms import MAML
from lit_meta.algorithms.maml_rl import AdvantageEstimator, PolicyGradientTask, adaptation_steps, collect_task
from lit_meta.datamodules.streams import stream_seed
from lit_meta.envs.rollouts import EpisodeSampler
from lit_meta.errors import ConfigError, require, require_positive
from lit_meta.modules.checkpointing import require_cpu
from lit_meta.modules.distributed import average_gradients_across_processes_, require_data_parallel_strategy
from lit_meta.modules.rl_module import RLModule, default_seed
from lit_meta.nn import build_policy

ALGORITHMS = {"maml": "MAML-RL", "fomaml": "first-order MAML-RL", "pretrained": "pretrained (joint training)"}
"""``algorithm`` value -> the name reports and plots use."""


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
    :param clip: PPO's clipping ε of the outer surrogate.
    :param outer_epochs: optimizer steps per meta-iteration on the same episodes.
    :param gradient_clip_val: clip the meta-gradient to this global norm.
    :param eval_steps: adaptation steps in validation and test (and ``evaluate.py``'s default K).
    :param eval_episodes: episodes per adaptation step at evaluation.
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
        clip: float = 0.2,
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
        # not logged: Lightning refuses to log a module and a datamodule that both have a different
        # ``seed`` (the run's config, saved in the run directory, holds every value anyway)
        self.save_hyperparameters(ignore=["optimizer"], logger=False)
        self.automatic_optimization = False
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
        require(0 < clip < 1, f"clip must be in (0, 1), got {clip}")
        self.advantages = AdvantageEstimator(gamma, gae_lambda)
        self.optimizer_factory = optimizer
        self.algorithm: MAML | None = None
        self.samplers: dict[int, EpisodeSampler] = {}
        self.task_data = None

    # -------------------------------------------------------------------------------- wiring to data
    def bind_data(self, datamodule) -> None:
        """Build the policy for the task family's spaces (once) and remember the family."""
        if not hasattr(datamodule, "make_env"):
            raise ConfigError(
                f"{type(self).__name__} needs an RLTaskDataModule, got {type(datamodule).__name__}"
            )
        self.task_data = datamodule
        if self.algorithm is None:
            self.algorithm = MAML(
                self._fresh_policy(self.hparams.seed),
                None,
                self.hparams.inner_lr,
                self.hparams.inner_steps,
                first_order=self.hparams.algorithm != "maml",
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

    def _fresh_policy(self, seed: int) -> torch.nn.Module:
        template = self.task_data.template_env()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return build_policy(
                template.observation_space,
                template.action_space,
                self.hparams.hidden_sizes,
                self.hparams.activation,
                self.hparams.init_std,
            )

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
        tasks, wrapper, advantages, clip = [], self.algorithm.wrapper, self.advantages, hparams.clip
        for index, task in enumerate(batch.task_parameters, start=batch.first_index):
            # the task's episodes depend on its seed alone, whichever process collects them
            seed = stream_seed(hparams.seed, f"train-{batch.meta_step}-{index}")
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                tasks.append(collect_task(wrapper, sampler, task, seed, inner_steps, advantages, clip))
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
        log("train/outer_loss", loss)

    def _joint_gradient(self, tasks: list[PolicyGradientTask]) -> Tensor:
        """The pretrained baseline: PPO's surrogate of the unadapted policy, averaged over tasks."""
        losses = [task.query_loss(self.policy)[0] for task in tasks]
        loss = torch.stack(losses).mean()
        loss.backward()
        return loss.detach()

    def transfer_batch_to_device(self, batch, device: torch.device, dataloader_idx: int):
        return batch  # task parameters: nothing to move

    # ---------------------------------------------------------------------------------- evaluation
    @property
    def learner_name(self) -> str:
        return ALGORITHMS[self.hparams.algorithm]

    @property
    def initialisation_name(self) -> str:
        return "pretrained init" if self.hparams.algorithm == "pretrained" else "meta-learned init"

    def adaptation_curves(
        self,
        tasks,
        steps: int,
        episodes: int | None,
        split: str,
        initialisations: tuple[str, ...] | None = None,
        first_index: int = 0,
        progress: bool = False,
    ) -> dict[str, Tensor]:
        """Mean return ``[tasks, steps + 1]`` on held-out ``tasks`` before and after each of ``steps``
        policy-gradient steps (α = ``inner_lr``, ``episodes`` per step), from the learned initialisation
        and from a random one of the same architecture. Task ``first_index + i`` of ``split`` gets the
        same episode seeds (derived from the data seed) whichever the initialisation, whichever checkpoint
        is evaluated, and whoever asks."""
        require_positive("steps", steps)
        sampler = self.sampler(episodes or self.hparams.eval_episodes)
        starts = {self.initialisation_name: self.algorithm.wrapper, "random init": self._random_wrapper()}
        names = tuple(starts) if initialisations is None else initialisations
        curves = {name: [] for name in names}
        with torch.inference_mode(False), torch.enable_grad():
            for offset, task in enumerate(tqdm(tasks, desc="adapting", unit="task", disable=not progress)):
                seed = stream_seed(self.task_data.hparams.seed, f"evaluation-{split}-{first_index + offset}")
                for name in names:
                    with torch.random.fork_rng(devices=[]):
                        torch.manual_seed(seed)
                        trajectory = adaptation_steps(
                            starts[name], sampler, task, seed, steps, self.advantages
                        )
                        curves[name].append([episodes.returns.mean().item() for episodes, _ in trajectory])
        return {name: torch.tensor(np.array(rows), dtype=torch.float64) for name, rows in curves.items()}

    def _random_wrapper(self) -> l2l.algorithms.MAML:
        """The same inner rule around a freshly initialised policy of the same architecture, seeded from
        the data seed so that every checkpoint of a task family is compared with the same one."""
        seed = stream_seed(self.task_data.hparams.seed, "random-init")
        return l2l.algorithms.MAML(self._fresh_policy(seed), lr=self.hparams.inner_lr)

    def evaluation_axis(self, steps: int) -> tuple[list[int], str]:
        return list(range(steps + 1)), "policy-gradient adaptation steps"

    def evaluation_details(self) -> dict:
        hparams = self.hparams
        return {"algorithm": hparams.algorithm, "inner_lr": hparams.inner_lr}

    def validation_step(self, batch, batch_idx: int) -> None:
        self._evaluate("val", batch, batch_idx)

    def test_step(self, batch, batch_idx: int) -> None:
        self._evaluate("test", batch, batch_idx)

    def _evaluate(self, split: str, batch, batch_idx: int) -> None:
        name = self.initialisation_name
        returns = self.adaptation_curves(
            batch, self.hparams.eval_steps, None, split, (name,), first_index=batch_idx
        )[name].float()
        log = partial(self.log, batch_size=len(batch), sync_dist=True)
        log(f"{split}/return", returns[:, -1].mean(), prog_bar=True)
        log(f"{split}/return_before", returns[:, 0].mean())


def _mean(values) -> float:
    return float(np.mean(list(values)))


__all__ = ["ALGORITHMS", "MAMLRLModule"]
