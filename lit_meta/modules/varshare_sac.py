"""Multi-task SAC over VarShare networks with the Reptile meta-update (seed 000) as a LightningModule.

One training step is one episode of one training task, the tasks taken in turn (the seed's serial
loop): at every environment step the transition goes to that task's replay buffer and SAC takes one
gradient step on a batch of it; at the end of the episode the meta-update moves the shared weights θ
by α·μ_task (or every ``meta_update_every`` gradient steps). Steps begin and end at episode
boundaries, so a checkpoint (weights, optimizers, replay buffers, random generators) resumes exactly.

Evaluation on an unseen task gives it a new task id, whose μ starts at zero (effective weights θ) and
whose temperature starts at the trained tasks' mean, and trains SAC on it for K episodes (updates from
its ``ADAPTATION_WARMUP``-th transition on); the return after each is compared with SAC from scratch.
"""

import copy

import numpy as np
import torch
from pytorch_lightning.cli import OptimizerCallable
from torch import Tensor
from tqdm import tqdm

from lit_meta.algorithms.mt_sac import MultiTaskSAC, TaskReplayBuffers
from lit_meta.algorithms.varshare import TARGET_SYNCS
from lit_meta.datamodules.streams import stream_seed
from lit_meta.errors import ConfigError, require, require_positive
from lit_meta.modules.rl_module import RLModule, default_seed

ADAPTATION_WARMUP = 64
"""Transitions an unseen task collects (with its policy, not at random) before its first SAC update."""


class VarShareSACModule(RLModule):
    """Multi-task SAC with VarShare layers; the Reptile meta-update absorbs task variations into θ.

    Train with ``python train.py fit --config configs/pendulum_varshare_sac.yaml``.

    :param hidden_sizes: widths of the hidden VarShare layers of the policy and both critics.
    :param meta_update_alpha: α of the meta-update (the seed's 0.05); ``null`` trains VarShare SAC
        without meta-updates (the comparison of issue 6).
    :param meta_update_every: gradient steps between meta-updates; ``null``: at the end of each episode.
    :param target_sync: after a meta-update, ``copy`` the critics into their targets (the seed) or
        ``shift`` the targets the same way (keeps Polyak averaging).
    :param mu_penalty: weight of ‖μ_task‖² in the actor and critic losses.
    :param per_task_temperature: one entropy temperature per task (garage's MT-SAC) or one shared.
    :param batch_size: SAC minibatch size; ``learning_starts``: uniform-random steps per task first.
    :param buffer_size: replay capacity per task.
    :param eval_steps: episodes of SAC on an unseen task at evaluation (K).
    :param eval_episodes: deterministic episodes per measurement.
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
        meta_update_alpha: float | None = 0.05,
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
        # not logged: module and datamodule both have a ``seed`` (see MAMLRLModule)
        self.save_hyperparameters(ignore=["optimizer"], logger=False)
        self.automatic_optimization = False
        if meta_update_alpha is not None:
            require(
                0 < meta_update_alpha <= 1, f"meta_update_alpha must be in (0, 1], got {meta_update_alpha}"
            )
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
        self.task_data = None
        self.train_tasks: list[dict] = []
        self.envs: list = []
        self.updates = 0

    # -------------------------------------------------------------------------------- wiring to data
    def bind_data(self, datamodule) -> None:
        if not hasattr(datamodule, "fixed_train_tasks"):
            raise ConfigError(
                f"{type(self).__name__} needs an RLTaskDataModule, got {type(datamodule).__name__}"
            )
        self.task_data = datamodule
        self.train_tasks = datamodule.fixed_train_tasks()
        self.envs = [datamodule.make_env(task) for task in self.train_tasks]
        if self.agent is None:
            self.agent = self._new_agent(range(len(self.train_tasks)), self.hparams.seed)
            self.replay = self._new_replay()

    def _new_agent(self, task_ids, seed: int) -> MultiTaskSAC:
        space = self.task_data.template_env()
        hparams = self.hparams
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
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
        return [self.optimizer_factory(groups[name]) for name in ("actor", "critic", "alpha")]

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
        """One episode of task ``global_step mod tasks``, with one SAC update per environment step."""
        episode = self.global_step
        task_id = episode % len(self.train_tasks)
        optimizers = dict(zip(("actor", "critic", "alpha"), self.optimizers(), strict=True))
        raw = {name: optimizer.optimizer for name, optimizer in optimizers.items()}
        episode_return, stats = self.run_episode(
            self.agent, self.replay, self.envs[task_id], task_id,
            stream_seed(self.hparams.seed, f"episode-{episode}"), raw, optimizers["alpha"],
        )  # fmt: skip
        self.log(f"train/return/task_{task_id}", episode_return, on_step=True, on_epoch=False)
        self.log("train/episode_return", episode_return, prog_bar=True, on_step=True, on_epoch=False)
        for name, value in stats.items():
            self.log(f"train/{name}", value, on_step=True, on_epoch=False)

    def run_episode(
        self,
        agent,
        replay,
        env,
        task_id,
        seed: int,
        optimizers: dict,
        last_alpha=None,
        meta_updates=True,
        learning_starts: int | None = None,
        update_after: int | None = None,
    ):
        """One training episode on ``task_id``: act, store, update; with ``meta_updates`` (training, if
        ``meta_update_alpha`` is set), meta-update at the end (or every ``meta_update_every`` updates).
        ``last_alpha`` (Lightning's wrapper) takes the episode's last temperature step, so Lightning's
        step count is the episode count. ``learning_starts`` random steps come first, and updates start
        once the task's buffer holds ``update_after`` transitions (default: that and one batch).
        Returns (return, stats)."""
        hparams = self.hparams
        meta_alpha = hparams.meta_update_alpha if meta_updates else None
        learning_starts = hparams.learning_starts if learning_starts is None else learning_starts
        if update_after is None:
            update_after = max(hparams.batch_size, learning_starts)
        agent.set_task(task_id)
        rng = np.random.default_rng([seed, 1])  # not the environment's stream (reset below with seed)
        observation, _ = env.reset(seed=seed % 2**31)
        total, stats, done = 0.0, {}, False
        while not done:
            if replay.size(task_id) < learning_starts:
                action = rng.uniform(env.action_space.low, env.action_space.high).astype(np.float32)
            else:
                action = agent.act(observation)
            next_observation, reward, terminated, truncated, _ = env.step(action)
            replay.add(task_id, observation, action, reward, next_observation, terminated)
            total += float(reward)
            done = terminated or truncated
            observation = next_observation
            if replay.size(task_id) >= update_after:
                step_optimizers = dict(optimizers)
                if done and last_alpha is not None:
                    step_optimizers["alpha"] = last_alpha
                with torch.enable_grad():
                    stats = agent.update(replay.sample(task_id, hparams.batch_size, rng), step_optimizers)
                if meta_updates:  # training: count SAC updates (saved in checkpoints)
                    self.updates += 1
                    every = hparams.meta_update_every
                    if meta_alpha is not None and every is not None and self.updates % every == 0:
                        agent.meta_update(task_id, meta_alpha, hparams.target_sync)
            elif done and last_alpha is not None:
                last_alpha.optimizer.zero_grad()
                last_alpha.step()  # nothing to learn yet; still one Lightning step per episode
        if meta_alpha is not None and hparams.meta_update_every is None and stats:
            agent.meta_update(task_id, meta_alpha, hparams.target_sync)
        return total, {name: float(value) for name, value in stats.items()}

    def transfer_batch_to_device(self, batch, device: torch.device, dataloader_idx: int):
        return batch

    # ---------------------------------------------------------------------------------- evaluation
    def evaluate_return(self, agent, env, task_id, seed: int, episodes: int) -> float:
        """Mean return of ``episodes`` deterministic episodes of ``agent`` on ``task_id``."""
        agent.set_task(task_id)
        returns = []
        for index in range(episodes):
            observation, _ = env.reset(seed=(seed + index) % 2**31)
            total, done = 0.0, False
            while not done:
                observation, reward, terminated, truncated, _ = env.step(
                    agent.act(observation, deterministic=True)
                )
                total += float(reward)
                done = terminated or truncated
            returns.append(total)
        return float(np.mean(returns))

    @property
    def learner_name(self) -> str:
        return "VarShare SAC" + (" + Reptile" if self.hparams.meta_update_alpha is not None else "")

    def adaptation_curves(
        self, tasks, steps: int, episodes: int | None, split: str, initialisations=None, first_index: int = 0,
        progress: bool = False,
    ) -> dict[str, Tensor]:  # fmt: skip
        """Return on each unseen task before and after each of ``steps`` SAC episodes, starting from this
        model's θ (a new task id, μ = 0) and from scratch; the same seeds for both."""
        require_positive("steps", steps)
        episodes = episodes or self.hparams.eval_episodes
        names = initialisations or (self.learner_name, "SAC from scratch")
        curves = {name: [] for name in names}
        with torch.inference_mode(False), torch.enable_grad():
            for offset, task in enumerate(tqdm(tasks, desc="adapting", unit="task", disable=not progress)):
                seed = stream_seed(self.task_data.hparams.seed, f"evaluation-{split}-{first_index + offset}")
                env = self.task_data.make_env(task)
                for name in names:
                    curves[name].append(self._adapt(name == "SAC from scratch", env, seed, steps, episodes))
        return {name: torch.tensor(np.array(rows), dtype=torch.float64) for name, rows in curves.items()}

    def _adapt(self, scratch: bool, env, seed: int, steps: int, episodes: int) -> list[float]:
        task_id = "unseen"
        agent = self._new_agent([task_id], seed) if scratch else copy.deepcopy(self.agent)
        agent.set_task(task_id)  # a new task id: μ = 0, its effective weights are θ
        if not scratch and agent.per_task_temperature:  # its temperature: the trained tasks' mean
            with torch.no_grad():
                learned = [value for key, value in agent.log_alpha.items() if key != task_id]
                agent.log_alpha[task_id].copy_(torch.stack(learned).mean())
        groups = agent.parameter_groups()
        optimizers = {name: self.optimizer_factory(groups[name]) for name in ("actor", "critic", "alpha")}
        replay = self._new_replay()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            row = [self.evaluate_return(agent, env, task_id, seed, episodes)]
            for step in range(steps):  # plain SAC on the new task: no meta-updates, no random warm-up,
                # updates (one batch drawn with replacement) from its ADAPTATION_WARMUP-th transition
                episode_seed = seed + 1000 * (step + 1)
                self.run_episode(
                    agent,
                    replay,
                    env,
                    task_id,
                    episode_seed,
                    optimizers,
                    meta_updates=False,
                    learning_starts=0,
                    update_after=ADAPTATION_WARMUP,
                )
                row.append(self.evaluate_return(agent, env, task_id, seed, episodes))
        return row

    def evaluation_axis(self, steps: int) -> tuple[list[int], str]:
        return list(range(steps + 1)), "SAC training episodes on the unseen task"

    def evaluation_details(self) -> dict:
        return {"meta_update_alpha": self.hparams.meta_update_alpha, "target_sync": self.hparams.target_sync}

    def validation_step(self, batch, batch_idx: int) -> None:
        """Deterministic return on every training task (the multi-task objective), once per validation."""
        if batch_idx > 0:
            return
        returns = [
            self.evaluate_return(
                self.agent, env, task_id, stream_seed(self.hparams.seed, f"val-{task_id}"), 1
            )
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
