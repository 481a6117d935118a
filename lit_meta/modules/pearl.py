"""PEARL (Rakelly et al., ICML 2019, "Efficient Off-Policy Meta-Reinforcement Learning via Probabilistic
Context Variables") as a LightningModule over the fixed training tasks of an
:class:`~lit_meta.datamodules.RLTaskDataModule`.

A training step is one iteration of the paper's Algorithm 1. Data collection: every training task first
gets ``initial_episodes`` with z from the prior; then, for ``tasks_per_iteration`` tasks drawn at random,
the task's context buffer is emptied and refilled with ``prior_episodes`` collected with z from the prior
(they go to its RL buffer too), and ``posterior_episodes`` are collected with z from the posterior of that
context, into the RL buffer only (the paper's code: ``num_steps_prior`` and
``num_extra_rl_steps_posterior``). Then ``gradient_steps`` updates, each on ``task_batch_size`` tasks: a
context batch of ``context_size`` transitions per task from its context buffer gives its posterior, an RL
batch of ``batch_size`` from its RL buffer the SAC losses. Everything random in a step depends on the run's
seed and the step, and the buffers are saved in checkpoints, so a resumed run is the uninterrupted one.

On a task it has never seen, PEARL adapts by posterior sampling: episode 1 with z from the prior, episode
k+1 with z from the posterior of episodes 1..k (mean actions by default, as the paper's code evaluates; or
sampled, as its Algorithm 2). The curve, the return in episodes
1..K, is compared with SAC learning the task from scratch over its first K episodes.
"""

import math
from typing import Literal

import numpy as np
import torch
from pytorch_lightning.cli import OptimizerCallable
from torch import Tensor

from lit_meta.algorithms.pearl import COVARIANCES, ENCODER_OBJECTIVES, PEARL_GROUPS, PEARLAgent
from lit_meta.algorithms.replay import BATCH_KEYS, TaskReplayBuffers
from lit_meta.algorithms.sac import OPTIMIZED_GROUPS, SoftActorCritic, bounded_target_entropy
from lit_meta.algorithms.sac_episodes import ADAPTATION_WARMUP, run_episode
from lit_meta.envs.rollouts import Episodes, EpisodeSampler
from lit_meta.errors import require, require_one_of, require_positive
from lit_meta.modules.rl_module import RLModule
from lit_meta.seeding import default_seed, derive_seed, meta_step_seed, seeded_torch, stream_generator

LEARNER = "PEARL"
SCRATCH = "SAC from scratch"
"""The baseline curve: SAC learning the unseen task from a new agent, the return of each of its episodes."""


class PEARLModule(RLModule):
    """PEARL: SAC conditioned on a latent task variable inferred from context by a probabilistic encoder.

    Train with ``python train.py fit --config configs/cheetah_vel_pearl.yaml``; ``data.train_tasks`` fixes
    the training tasks.

    :param latent_size: dimension of z (the paper: 5).
    :param hidden_sizes: widths of the policy's and critics' hidden layers (the paper: 300, 300, 300).
    :param encoder_hidden_sizes: widths of the context encoder's (the paper: 200, 200, 200), and of the
        reward decoder's when ``encoder_objective`` has one.
    :param kl_weight: β of the KL term in the encoder's loss (the paper: 0.1).
    :param reward_scale: rewards are scaled by it in the critics' targets (the paper: 5) and in the reward
        decoder's.
    :param initial_episodes: episodes per training task, z from the prior, before the first update.
    :param tasks_per_iteration: training tasks whose data is refreshed each iteration.
    :param prior_episodes: episodes per refreshed task with z from the prior (context and RL buffers).
    :param posterior_episodes: episodes per refreshed task with z from the posterior (RL buffer only; the
        paper code's ``num_extra_rl_steps_posterior``).
    :param posterior_context_episodes: episodes per refreshed task with z from the posterior into the
        context and RL buffers (the paper code's ``num_steps_posterior``), so that the encoder also learns
        from the context it reads after the first episode of a new task.
    :param gradient_steps: updates per iteration.
    :param task_batch_size: tasks per update (the paper's meta-batch, 16).
    :param context_size: context transitions per task and update (the paper: 100).
    :param batch_size: RL transitions per task and update (the paper: 256).
    :param buffer_size: capacity of each task's RL buffer (its context buffer holds the same).
    :param eval_steps: K, the episodes on a held-out task (the adaptation curve's x axis).
    :param eval_episodes: trials per held-out task, run side by side (each samples its own z).
    :param adaptation_actions: how a held-out task's episodes are played: ``deterministic`` (the mean
        action, as the paper's code evaluates) or ``sampled`` (the paper's Algorithm 2, the same stochastic
        policy whose episodes fill the context buffers in training).
    :param seed: seeds the networks and every iteration (default: the global seed).
    :param optimizer: the optimizer of each group (actor, critics, temperature, encoder).
    :param posterior_covariance: the encoder's Gaussian factors: ``diagonal`` (the paper) or ``full``
        precision matrices (:class:`~lit_meta.algorithms.pearl.ContextEncoder`).
    :param target_entropy: SAC's target entropy, in nats per action dimension on actions rescaled to
        [−1, 1] (SAC's −1). It sets how much the policy's actions vary, so how much an episode played with
        z from the prior shows of a task: on 2D navigation, where the reward is a distance, the jitter
        around the point the policy walks to is what locates the goal (docs/benchmarks.md).
    :param encoder_objective: what trains the encoder besides the KL term: ``critic`` (the paper's
        choice), ``reward`` (a reward decoder's squared error, the paper's section 4.1 alternative of
        reconstructing the MDP) or ``critic_and_reward``
        (:class:`~lit_meta.algorithms.pearl.PEARLAgent`).
    :param context_deviations: each context transition's Gaussian factor also reads the transition's
        deviation from the mean of its context (:class:`~lit_meta.algorithms.pearl.ContextEncoder`). On
        2D navigation a step's reward says only how far the goal is; how rewards vary with position
        across the context says where, and an encoder reads that far sooner when each factor sees it
        (docs/benchmarks.md).
    """

    CPU_REASON = "collects its episodes on the CPU (its networks are small)"

    ARCHITECTURE_HPARAMS = (
        "latent_size", "hidden_sizes", "encoder_hidden_sizes", "posterior_covariance", "encoder_objective",
        "context_deviations",
    )  # fmt: skip

    def __init__(
        self,
        latent_size: int = 5,
        hidden_sizes: list[int] | None = None,
        encoder_hidden_sizes: list[int] | None = None,
        gamma: float = 0.99,
        tau: float = 0.005,
        init_temperature: float = 1.0,
        kl_weight: float = 0.1,
        reward_scale: float = 5.0,
        initial_episodes: int = 2,
        tasks_per_iteration: int = 5,
        prior_episodes: int = 2,
        posterior_episodes: int = 3,
        gradient_steps: int = 200,
        task_batch_size: int = 16,
        context_size: int = 100,
        batch_size: int = 256,
        buffer_size: int = 100_000,
        eval_steps: int = 3,
        eval_episodes: int = 4,
        seed: int | None = None,
        optimizer: OptimizerCallable = torch.optim.Adam,
        posterior_covariance: Literal["diagonal", "full"] = "diagonal",
        posterior_context_episodes: int = 0,
        adaptation_actions: Literal["deterministic", "sampled"] = "deterministic",
        target_entropy: float = -1.0,
        encoder_objective: Literal["critic", "reward", "critic_and_reward"] = "critic",
        context_deviations: bool = False,
    ) -> None:
        super().__init__()
        seed = default_seed(seed)
        hidden_sizes = [300, 300, 300] if hidden_sizes is None else list(hidden_sizes)
        encoder_hidden_sizes = [200, 200, 200] if encoder_hidden_sizes is None else list(encoder_hidden_sizes)
        self.save_rl_hyperparameters()
        for name, value in {
            "latent_size": latent_size, "initial_episodes": initial_episodes,
            "tasks_per_iteration": tasks_per_iteration, "prior_episodes": prior_episodes,
            "gradient_steps": gradient_steps, "task_batch_size": task_batch_size,
            "context_size": context_size, "batch_size": batch_size, "buffer_size": buffer_size,
            "eval_steps": eval_steps, "eval_episodes": eval_episodes, "reward_scale": reward_scale,
        }.items():  # fmt: skip
            require_positive(name, value)
        for name, value in {
            "posterior_episodes": posterior_episodes, "posterior_context_episodes": posterior_context_episodes
        }.items():  # fmt: skip
            require(value >= 0, f"{name} must not be negative, got {value}")
        require(kl_weight >= 0, f"kl_weight must not be negative, got {kl_weight}")
        require_one_of("posterior_covariance", posterior_covariance, COVARIANCES)
        require_one_of("encoder_objective", encoder_objective, ENCODER_OBJECTIVES)
        require(
            adaptation_actions in ("deterministic", "sampled"),
            f"adaptation_actions must be deterministic or sampled, got {adaptation_actions!r}",
        )
        require(
            target_entropy < math.log(2),
            f"target_entropy must be below log 2 = 0.693 nats per action dimension (a uniform policy's on "
            f"[-1, 1]), got {target_entropy}",
        )
        self.optimizer_factory = optimizer
        self.agent: PEARLAgent | None = None
        self.samplers: dict[int, EpisodeSampler] = {}
        self.training_successes: list[float] = []
        self.iteration_steps = 0

    # -------------------------------------------------------------------------------- wiring to data
    def bind_data(self, datamodule) -> None:
        """The training tasks, and (once) the agent and the buffers for the family's spaces."""
        self.task_data = datamodule
        self.train_tasks = datamodule.fixed_train_tasks()
        self.samplers = {}
        if self.agent is None:
            space, hparams = datamodule.template_env(), self.hparams
            sizes = (space.observation_space.shape[0], space.action_space.shape[0])
            with seeded_torch(hparams.seed):
                self.agent = PEARLAgent(
                    *sizes, space.action_space.low, space.action_space.high, hparams.latent_size,
                    hparams.hidden_sizes, hparams.encoder_hidden_sizes, hparams.gamma, hparams.tau,
                    hparams.init_temperature, hparams.kl_weight, hparams.reward_scale,
                    hparams.posterior_covariance, hparams.target_entropy, hparams.encoder_objective,
                    hparams.context_deviations,
                )  # fmt: skip
            self.rl_replay = TaskReplayBuffers(*sizes, hparams.buffer_size)
            self.context_replay = TaskReplayBuffers(*sizes, hparams.buffer_size)

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        groups = self.agent.parameter_groups()
        return [self.optimizer_factory(groups[name]) for name in PEARL_GROUPS]

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint["replay_buffers"] = self.rl_replay.state_dict()
        checkpoint["context_buffers"] = self.context_replay.state_dict()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        super().on_load_checkpoint(checkpoint)
        if "replay_buffers" in checkpoint:
            self.rl_replay.load_state_dict(checkpoint["replay_buffers"])
            self.context_replay.load_state_dict(checkpoint["context_buffers"])

    def sampler(self, episodes: int) -> EpisodeSampler:
        """A vectorised sampler of ``episodes`` environments of the task family (built once per size)."""
        if episodes not in self.samplers:
            default_task = self.task_data.template_env().unwrapped.get_task()
            self.samplers[episodes] = EpisodeSampler(lambda: self.task_data.make_env(default_task), episodes)
        return self.samplers[episodes]

    # ------------------------------------------------------------------------------------ training
    def collect(self, task_id: int, episodes: int, seed: int, posterior: bool, into_context: bool) -> float:
        """``episodes`` episodes of training task ``task_id`` into its RL buffer (and its context buffer if
        ``into_context``), each with its own z from the prior or from the posterior of a context batch of
        the task's context buffer; their mean return."""
        if posterior:
            context = self.context_replay.sample(
                task_id, self.hparams.context_size, stream_generator(seed, 0)
            )
            mean, variance = self.agent.repeat_posterior(*self.agent.posterior(context), episodes)
        else:
            mean, variance = self.agent.prior(episodes)
        latent = self.agent.sample_latent(mean, variance)
        collected = self.sampler(episodes).sample(self.agent.policy(latent), self.train_tasks[task_id], seed)
        rows = collected.transitions()
        self.iteration_steps += len(rows["obs"])
        self.rl_replay.add(task_id, *(rows[key] for key in BATCH_KEYS))
        if into_context:
            self.context_replay.add(task_id, *(rows[key] for key in BATCH_KEYS))
        if collected.successes is not None:
            self.training_successes.append(collected.successes.mean().item())
        return collected.returns.mean().item()

    def training_step(self, batch, batch_idx: int) -> None:
        """One iteration: collect (initial data for tasks that have none, then refresh
        ``tasks_per_iteration`` tasks), then ``gradient_steps`` updates. Only the last update's temperature
        step goes through Lightning's optimizer, so ``trainer.max_steps`` counts iterations."""
        hparams, step = self.hparams, self.global_step
        rng = stream_generator(hparams.seed, "iteration", step)
        self.training_successes, self.iteration_steps = [], 0
        seed = lambda purpose, index: meta_step_seed(hparams.seed, purpose, step, index)  # noqa: E731
        with seeded_torch(derive_seed(hparams.seed, "iteration", step)), torch.no_grad():
            for task_id in range(len(self.train_tasks)):
                if self.rl_replay.size(task_id) == 0:
                    self.collect(task_id, hparams.initial_episodes, seed("initial", task_id), False, True)
            prior, posterior = [], []
            refreshed = rng.choice(
                len(self.train_tasks), min(hparams.tasks_per_iteration, len(self.train_tasks))
            )
            for index, task_id in enumerate(refreshed.tolist()):
                self.context_replay.clear(task_id)
                prior.append(self.collect(task_id, hparams.prior_episodes, seed("prior", index), False, True))
                if hparams.posterior_context_episodes:
                    posterior.append(
                        self.collect(
                            task_id,
                            hparams.posterior_context_episodes,
                            seed("posterior_context", index),
                            True,
                            True,
                        )
                    )
                if hparams.posterior_episodes:
                    posterior.append(
                        self.collect(
                            task_id, hparams.posterior_episodes, seed("posterior", index), True, False
                        )
                    )
        with seeded_torch(derive_seed(hparams.seed, "updates", step)):
            stats = self._updates(rng)
        log = dict(on_step=True, on_epoch=False)
        self.log("train/return_prior", float(np.mean(prior)), prog_bar=True, **log)
        self.count_environment_steps(self.iteration_steps)
        if posterior:
            self.log("train/return_posterior", float(np.mean(posterior)), prog_bar=True, **log)
        if self.training_successes:
            self.log("train/success_rate", float(np.mean(self.training_successes)), **log)
        for name, value in stats.items():
            self.log(f"train/{name}", value, **log)

    def _updates(self, rng: np.random.Generator) -> dict[str, Tensor]:
        hparams = self.hparams
        wrappers = dict(zip(PEARL_GROUPS, self.optimizers(), strict=True))
        optimizers = {name: wrapper.optimizer for name, wrapper in wrappers.items()}
        tasks = min(hparams.task_batch_size, len(self.train_tasks))
        for update in range(hparams.gradient_steps):
            chosen = rng.choice(len(self.train_tasks), tasks, replace=False).tolist()
            context = _stack([self.context_replay.sample(t, hparams.context_size, rng) for t in chosen])
            batch = _stack([self.rl_replay.sample(t, hparams.batch_size, rng) for t in chosen])
            last = update == hparams.gradient_steps - 1
            stats = self.agent.update(
                context, batch, {**optimizers, "alpha": wrappers["alpha"]} if last else optimizers
            )
        return stats

    # ---------------------------------------------------------------------------------- evaluation
    @property
    def learner_name(self) -> str:
        return LEARNER

    def curve_names(self) -> tuple[str, ...]:
        return LEARNER, SCRATCH

    @torch.no_grad()
    def posterior_sampling(self, task: dict, seed: int, steps: int, trials: int) -> list[float]:
        """The mean return over ``trials`` side-by-side trials of each of ``steps`` episodes on ``task``:
        episode 1 with z from the prior, episode k + 1 with z from the posterior of episodes 1..k of the
        same trial (each trial its own context and its own z), actions as ``adaptation_actions`` says."""
        sampler, context, returns = self.sampler(trials), None, []
        for episode in range(steps):
            if context is None:
                mean, variance = self.agent.prior(trials)
            else:
                mean, variance = self.agent.posterior(context, context["mask"])
            latent = self.agent.sample_latent(mean, variance)
            collected = sampler.sample(
                self.agent.policy(latent, deterministic=self.hparams.adaptation_actions == "deterministic"),
                task,
                seed + episode * trials,
            )
            returns.append(collected.returns.mean().item())
            self.record_success(collected.successes)
            context = append_to_context(context, collected)
        return returns

    def adapt_task(self, name: str, task: dict, seed: int, steps: int, episodes: int) -> list[float]:
        """PEARL's posterior sampling (``episodes`` trials), or SAC from scratch (one run)."""
        if name == LEARNER:
            return self.posterior_sampling(task, seed, steps, episodes)
        return self.sac_from_scratch(task, seed, steps)

    def sac_from_scratch(self, task: dict, seed: int, steps: int) -> list[float]:
        """The return of each of the first ``steps`` episodes of a new SAC agent (the PEARL agent's SAC
        sizes, without z) learning ``task``, updates from its ``ADAPTATION_WARMUP``-th transition on."""
        hparams, space = self.hparams, self.task_data.template_env()
        sizes = (space.observation_space.shape[0], space.action_space.shape[0])
        low, high = space.action_space.low, space.action_space.high
        agent = SoftActorCritic(
            *sizes, low, high, hparams.hidden_sizes, hparams.gamma, hparams.tau, hparams.init_temperature,
            bounded_target_entropy(low, high, sizes[1], hparams.target_entropy),
        )  # fmt: skip
        groups = agent.parameter_groups()
        optimizers = {name: self.optimizer_factory(groups[name]) for name in OPTIMIZED_GROUPS}
        replay, env = TaskReplayBuffers(*sizes, hparams.buffer_size), self.task_data.make_env(task)
        returns = []
        for episode in range(steps):
            outcome = run_episode(
                agent, replay, env, 0, seed + episode, optimizers, hparams.batch_size,
                update_after=ADAPTATION_WARMUP,
            )  # fmt: skip
            returns.append(outcome.episode_return)
        return returns

    def evaluation_axis(self, steps: int) -> tuple[list[int], str]:
        return list(range(1, steps + 1)), "episode on the new task"

    def evaluation_details(self) -> dict:
        hparams = self.hparams
        return {
            "latent_size": hparams.latent_size,
            "adaptation_actions": hparams.adaptation_actions,
            "encoder_objective": hparams.encoder_objective,
            "curve": "return in episodes 1..K: PEARL by posterior sampling (episode 1 with z from the "
            "prior), SAC from scratch learning online",
        }

    def evaluate_batch(self, split: str, batch, batch_idx: int) -> None:
        """The return in the first episode (z from the prior), in the last (z from the posterior of the
        episodes before), and over all ``eval_steps`` episodes on held-out task ``batch_idx``."""
        returns = self.adaptation_curves(
            batch,
            self.hparams.eval_steps,
            self.hparams.eval_episodes,
            split,
            (LEARNER,),
            first_index=batch_idx,
        )[LEARNER].float()
        log = dict(batch_size=len(batch))
        self.log(f"{split}/return", returns[:, -1].mean(), prog_bar=True, **log)
        self.log(f"{split}/return_prior", returns[:, 0].mean(), **log)
        self.log(
            f"{split}/return_posterior",
            returns[:, 1:].mean() if returns.shape[1] > 1 else returns[:, 0].mean(),
            **log,
        )
        if LEARNER in self.success_curves:
            rates = self.success_curves[LEARNER].float()
            self.log(f"{split}/success_rate", rates[:, -1].mean(), **log)
            self.log(f"{split}/success_rate_prior", rates[:, 0].mean(), **log)


def _stack(batches: list[dict[str, Tensor]]) -> dict[str, Tensor]:
    """Per-task batches ``[B, ...]`` stacked into ``[T, B, ...]``."""
    return {key: torch.stack([batch[key] for batch in batches]) for key in batches[0]}


def append_to_context(context: dict | None, collected: Episodes) -> dict[str, Tensor]:
    """Each trial's context ``[E, N, ...]`` with the episode each trial just played appended, and its
    ``mask`` ``[E, N]`` (1 on steps really taken)."""
    steps = {
        "obs": collected.observations, "action": collected.actions, "reward": collected.rewards,
        "next_obs": collected.next_observations, "terminated": collected.terminated, "mask": collected.mask,
    }  # fmt: skip
    steps = {key: value.transpose(0, 1) for key, value in steps.items()}
    if context is None:
        return steps
    return {key: torch.cat([context[key], steps[key]], dim=1) for key in steps}


__all__ = ["PEARLModule", "append_to_context"]
