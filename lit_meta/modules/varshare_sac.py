"""Multi-task SAC over VarShare networks with the Reptile meta-update (the specification "VarShare +
Reptile: Meta-Learning Implementation Details") as a LightningModule.

One training step is one episode of one training task, the tasks taken in turn (the specification's
serial loop): at every environment step the transition goes to that task's replay buffer and SAC takes
one gradient step on a batch of it; at the end of the episode the meta-update moves the shared weights θ
by ε·μ_task (or every ``meta_update_every`` gradient steps). Steps begin and end at episode boundaries,
so a checkpoint (weights, optimizers, replay buffers, random generators) resumes exactly. The episodes
themselves are :mod:`lit_meta.algorithms.sac_episodes`; this module schedules them.

Evaluation on an unseen task gives it a new task id, whose μ starts at zero (effective weights θ) and
whose temperature starts at the trained tasks' mean, and trains SAC on it for K episodes (updates from
its ``ADAPTATION_WARMUP``-th transition on); the return after each is compared with SAC from scratch.
"""

import numpy as np
import torch
from pytorch_lightning.cli import OptimizerCallable

from lit_meta.algorithms.mt_sac import MultiTaskSAC
from lit_meta.algorithms.replay import TaskReplayBuffers
from lit_meta.algorithms.sac_episodes import (
    OPTIMIZED_GROUPS,
    UNSEEN_TASK,
    MetaUpdates,
    adapt_to_new_task,
    evaluate_return,
    run_episode,
)
from lit_meta.algorithms.varshare import TARGET_SYNCS
from lit_meta.errors import ConfigError, require, require_positive
from lit_meta.modules.rl_module import RLModule
from lit_meta.seeding import default_seed, derive_seed, seeded_torch

SCRATCH = "SAC from scratch"
"""The baseline curve: SAC on the unseen task from a new agent."""


class VarShareSACModule(RLModule):
    """Multi-task SAC with VarShare layers; the Reptile meta-update absorbs task variations into θ.

    Train with ``python train.py fit --config configs/pendulum_varshare_sac.yaml``.

    :param hidden_sizes: widths of the hidden VarShare layers of the policy and both critics.
    :param meta_step_size: ε of the Reptile meta-update (the VarShare specification's α, 0.05); ``null``
        trains VarShare SAC without meta-updates (the comparison of issue 6).
    :param meta_update_every: gradient steps between meta-updates; ``null``: at the end of each episode.
    :param target_sync: after a meta-update, ``copy`` the critics into their targets (the specification)
        or ``shift`` the targets the same way (keeps Polyak averaging).
    :param mu_penalty: weight of ‖μ_task‖² in the actor and critic losses.
    :param per_task_temperature: one entropy temperature per task (garage's MT-SAC) or one shared.
    :param batch_size: SAC minibatch size; ``learning_starts``: uniform-random steps per task first.
    :param buffer_size: replay capacity per task.
    :param eval_steps: K, the adaptation steps measured at test and by ``evaluate.py`` (the adaptation
        curve's x axis): here SAC training episodes on an unseen task.
    :param eval_episodes: episodes averaged per measurement (deterministic actions).
    :param optimizer: optimizer of the actor, the critics and the temperatures (each its own).
    """

    CPU_REASON = "trains on the CPU (its networks are small)"

    ARCHITECTURE_HPARAMS = ("hidden_sizes", "per_task_temperature")

    def __init__(
        self,
        hidden_sizes: list[int] | None = None,
        gamma: float = 0.99,
        tau: float = 0.005,
        init_temperature: float = 1.0,
        per_task_temperature: bool = True,
        mu_penalty: float = 0.0,
        meta_step_size: float | None = 0.05,
        meta_update_every: int | None = None,
        target_sync: str = "copy",
        batch_size: int = 256,
        learning_starts: int = 1000,
        buffer_size: int = 100_000,
        eval_steps: int = 5,
        eval_episodes: int = 1,
        seed: int | None = None,
        optimizer: OptimizerCallable = torch.optim.Adam,
    ) -> None:
        super().__init__()
        seed = default_seed(seed)
        hidden_sizes = [64, 64] if hidden_sizes is None else list(hidden_sizes)
        self.save_rl_hyperparameters()
        if meta_step_size is not None:
            require(0 < meta_step_size <= 1, f"meta_step_size must be in (0, 1], got {meta_step_size}")
        if meta_update_every is not None:
            require_positive("meta_update_every", meta_update_every)
        if target_sync not in TARGET_SYNCS:
            raise ConfigError(f"unknown target sync '{target_sync}'; choose one of {', '.join(TARGET_SYNCS)}")
        for name, value in {
            "batch_size": batch_size, "buffer_size": buffer_size, "eval_steps": eval_steps,
            "eval_episodes": eval_episodes,
        }.items():  # fmt: skip
            require_positive(name, value)
        require(learning_starts >= 0, f"learning_starts must be non-negative, got {learning_starts}")
        require(mu_penalty >= 0, f"mu_penalty must be non-negative, got {mu_penalty}")
        self.optimizer_factory = optimizer
        self.agent: MultiTaskSAC | None = None
        self.train_tasks: list[dict] = []
        self.envs: list = []
        self.updates = 0

    # -------------------------------------------------------------------------------- wiring to data
    def bind_data(self, datamodule) -> None:
        self.task_data = datamodule
        self.train_tasks = datamodule.fixed_train_tasks()
        self.envs = [datamodule.make_env(task) for task in self.train_tasks]
        if self.agent is None:
            self.agent = self._new_agent(range(len(self.train_tasks)), self.hparams.seed)
            self.replay = self._new_replay()

    def _new_agent(self, task_ids, seed: int) -> MultiTaskSAC:
        space = self.task_data.template_env()
        hparams = self.hparams
        with seeded_torch(seed):
            return MultiTaskSAC(
                space.observation_space.shape[0], space.action_space.shape[0], space.action_space.low,
                space.action_space.high, list(task_ids), hparams.hidden_sizes, hparams.gamma, hparams.tau,
                hparams.init_temperature, hparams.per_task_temperature, mu_penalty=hparams.mu_penalty,
            )  # fmt: skip

    def _new_replay(self) -> TaskReplayBuffers:
        space = self.task_data.template_env()
        size = (space.observation_space.shape[0], space.action_space.shape[0])
        return TaskReplayBuffers(*size, self.hparams.buffer_size)

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        groups = self.agent.parameter_groups()
        return [self.optimizer_factory(groups[name]) for name in OPTIMIZED_GROUPS]

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint["replay_buffers"] = self.replay.state_dict()
        checkpoint["sac_updates"] = self.updates

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        super().on_load_checkpoint(checkpoint)
        if "replay_buffers" in checkpoint:
            self.replay.load_state_dict(checkpoint["replay_buffers"])
            self.updates = checkpoint["sac_updates"]

    # ------------------------------------------------------------------------------------ training
    def training_step(self, batch, batch_idx: int) -> None:
        """One episode of task ``global_step mod tasks``, with one SAC update per environment step; the
        temperature's last step goes through Lightning's optimizer, so Lightning counts episodes."""
        episode, hparams = self.global_step, self.hparams
        task_id = episode % len(self.train_tasks)
        optimizers = dict(zip(OPTIMIZED_GROUPS, self.optimizers(), strict=True))
        seed = derive_seed(hparams.seed, f"episode-{episode}")
        outcome = run_episode(
            self.agent, self.replay, self.envs[task_id], task_id, seed,
            {name: optimizer.optimizer for name, optimizer in optimizers.items()}, hparams.batch_size,
            learning_starts=hparams.learning_starts, updates=self.updates, last_alpha=optimizers["alpha"],
            meta_updates=MetaUpdates(hparams.meta_step_size, hparams.meta_update_every, hparams.target_sync),
        )  # fmt: skip
        self.updates = outcome.updates  # saved in checkpoints: meta_update_every counts across episodes
        self.log(f"train/return/task_{task_id}", outcome.episode_return, on_step=True, on_epoch=False)
        self.log("train/episode_return", outcome.episode_return, prog_bar=True, on_step=True, on_epoch=False)
        for name, value in outcome.stats.items():
            self.log(f"train/{name}", value, on_step=True, on_epoch=False)

    # ---------------------------------------------------------------------------------- evaluation
    @property
    def learner_name(self) -> str:
        return "VarShare SAC" + (" + Reptile" if self.hparams.meta_step_size is not None else "")

    def curve_names(self) -> tuple[str, ...]:
        """This model's θ (a new task id, μ = 0), and SAC from scratch."""
        return self.learner_name, SCRATCH

    def adapt_task(self, name: str, task: dict, seed: int, steps: int, episodes: int) -> list[float]:
        """``steps`` SAC episodes on the unseen ``task`` from this model's θ or a new agent (both seeded
        with ``seed``)."""
        agent = self._new_agent([UNSEEN_TASK], seed) if name == SCRATCH else self.agent
        env, replay, hparams = self.task_data.make_env(task), self._new_replay(), self.hparams
        return adapt_to_new_task(
            agent, env, replay, self.optimizer_factory, seed, steps, episodes, hparams.batch_size
        )

    def evaluation_axis(self, steps: int) -> tuple[list[int], str]:
        return list(range(steps + 1)), "SAC training episodes on the unseen task"

    def evaluation_details(self) -> dict:
        return {"meta_step_size": self.hparams.meta_step_size, "target_sync": self.hparams.target_sync}

    def validation_step(self, batch, batch_idx: int) -> None:
        """Deterministic return on every training task (the multi-task objective), once per validation."""
        if batch_idx > 0:
            return
        returns = [
            evaluate_return(self.agent, env, task_id, derive_seed(self.hparams.seed, f"val-{task_id}"), 1)
            for task_id, env in enumerate(self.envs)
        ]
        for task_id, value in enumerate(returns):
            self.log(f"val/return/task_{task_id}", value, batch_size=1)
        self.log("val/return", float(np.mean(returns)), prog_bar=True, batch_size=1)

    def test_step(self, batch, batch_idx: int) -> None:
        name = self.learner_name
        curve = self.adaptation_curves(batch, self.hparams.eval_steps, None, "test", (name,), batch_idx)[name]
        self.log("test/return", curve[:, -1].mean().float(), batch_size=len(batch))


__all__ = ["VarShareSACModule"]
