"""RL² (Duan et al. 2016, "RL²: Fast Reinforcement Learning via Slow Reinforcement Learning") as a
LightningModule: a recurrent policy trained with PPO (Schulman et al. 2017) on trials of several episodes
of tasks from :class:`lit_meta.datamodules.RLTaskDataModule`; at test time it adapts to a new task within
one trial, with no gradient step."""

from functools import partial

import numpy as np
import torch
from gymnasium.vector import SyncVectorEnv
from pytorch_lightning.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor

from lit_meta.algorithms.rl2 import PPOConfig, ppo_update
from lit_meta.envs.tabular_mdp import MDP_KEY, random_mdp
from lit_meta.envs.trials import Trials, collect_trials, trial_envs
from lit_meta.errors import require, require_positive
from lit_meta.evaluation.bandit_baselines import BANDIT_BASELINES, play_bandits, tune_baseline
from lit_meta.evaluation.mdp_baselines import MDP_BASELINES, play_mdps
from lit_meta.modules.base import check_optimizer, scheduled_optimizer
from lit_meta.modules.rl_module import RLModule, progress_bar
from lit_meta.nn.recurrent import RecurrentPolicy
from lit_meta.seeding import default_seed, derive_generator, meta_step_seed, seeded_torch

LEARNER = "RL²"
BANDIT_ENV = "lit_meta/BernoulliBandit-v0"
TABULAR_ENV = "lit_meta/TabularMDP-v0"
TUNING_BANDITS = 2000
"""Training bandits on which the baselines' parameters are tuned (ε, UCB1's constant, Gittins' discount),
as the RL² paper tunes them, before they play the held-out bandits."""
RANDOM_PLAY = "random"
"""Uniformly random play on bandits: its expectation, the mean arm."""
EVAL_CHUNK = 512
"""Trials played together at evaluation (memory only: each trial's outcome depends on its own seed)."""


class RL2Module(RLModule):
    """RL²: a GRU policy whose hidden state, carried across the episodes of a trial, learns the task.

    Train with ``python train.py fit --config configs/bandits_rl2.yaml``. Each training step plays one
    trial of ``episodes_per_trial`` episodes on each task of the meta-batch and runs PPO on those trials.

    :param hidden_size: width of the GRU's state.
    :param episodes_per_trial: episodes per training trial (bandits: pulls).
    :param init_std: initial standard deviation of the Gaussian policy (continuous actions), on the
        actions' own scale.
    :param trial_progress: the policy also reads the episodes of the trial already played divided by
        ``episodes_per_trial`` (:class:`~lit_meta.nn.recurrent.RecurrentPolicy`'s ``trial_episodes``), so
        that its value and its exploration can depend on what remains of a training trial (a longer
        evaluation trial reads past 1); off (default): the paper's inputs.
    :param separate_critic: the value comes from a GRU of its own instead of the policy's
        (:class:`~lit_meta.nn.recurrent.RecurrentPolicy`'s ``separate_critic``), each network's gradient
        norm clipped on its own; off (default): one shared GRU.
    :param gamma: discount over the whole trial (episode ends inside a trial are not terminal).
    :param gae_lambda: GAE's λ.
    :param clip_range: PPO's ε.
    :param ppo_epochs: passes of PPO over each batch of trials.
    :param minibatches: minibatches of whole trials per pass (at most ``data.meta_batch_size``).
    :param value_coef: weight of the value loss.
    :param entropy_coef: weight of the entropy bonus.
    :param max_grad_norm: gradient norm clipping of each PPO step.
    :param normalize_advantages: standardise advantages in each minibatch.
    :param eval_steps: K, the adaptation steps measured at validation, test and by ``evaluate.py`` (the
        adaptation curve's x axis): here the episodes of one trial (default ``episodes_per_trial``).
    :param eval_episodes: episodes averaged per measurement: here trials per held-out task (the return
        in episode k is averaged over them).
    :param seed: seeds the policy's initialisation and every trial (default: the global seed).
    :param optimizer: PPO's optimizer (its learning rate is PPO's).
    :param lr_scheduler: schedule of PPO's learning rate, stepped once per meta-iteration (e.g.
        ``torch.optim.lr_scheduler.LinearLR`` down to 0 over the run, as PPO's own annealing).
    """

    CPU_REASON = "plays its trials on the CPU"

    ARCHITECTURE_HPARAMS = ("hidden_size", "trial_progress", "separate_critic")
    TRAINED_HPARAMS = ("episodes_per_trial",)

    def __init__(
        self,
        hidden_size: int = 64,
        episodes_per_trial: int = 10,
        init_std: float = 1.0,
        trial_progress: bool = False,
        separate_critic: bool = False,
        gamma: float = 0.99,
        gae_lambda: float = 0.95,
        clip_range: float = 0.2,
        ppo_epochs: int = 4,
        minibatches: int = 4,
        value_coef: float = 0.5,
        entropy_coef: float = 0.01,
        max_grad_norm: float = 0.5,
        normalize_advantages: bool = True,
        eval_steps: int | None = None,
        eval_episodes: int = 1,
        seed: int | None = None,
        optimizer: OptimizerCallable = torch.optim.Adam,
        lr_scheduler: LRSchedulerCallable | None = None,
    ) -> None:
        super().__init__()
        seed = default_seed(seed)
        if eval_steps is None:
            eval_steps = episodes_per_trial
        for name, value in {
            "hidden_size": hidden_size, "episodes_per_trial": episodes_per_trial, "init_std": init_std,
            "eval_steps": eval_steps, "eval_episodes": eval_episodes,
        }.items():  # fmt: skip
            require_positive(name, value)
        self.save_rl_hyperparameters()
        self.ppo = PPOConfig(
            gamma=gamma, gae_lambda=gae_lambda, clip_range=clip_range, epochs=ppo_epochs,
            minibatches=minibatches, value_coef=value_coef, entropy_coef=entropy_coef,
            max_grad_norm=max_grad_norm, normalize_advantages=normalize_advantages,
        )  # fmt: skip
        check_optimizer(optimizer, lr_scheduler)
        self.optimizer_factory, self.lr_scheduler_factory = optimizer, lr_scheduler
        self.policy: RecurrentPolicy | None = None
        self.tuned_baselines: dict[str, dict] = {}

    # -------------------------------------------------------------------------------- wiring to data
    def bind_data(self, datamodule) -> None:
        """Build the policy for the datamodule's task family (its observation and action spaces)."""
        require(
            self.ppo.minibatches <= datamodule.hparams.meta_batch_size,
            f"minibatches ({self.ppo.minibatches}) cannot exceed data.meta_batch_size "
            f"({datamodule.hparams.meta_batch_size}), the trials of each PPO update",
        )
        if datamodule is not self.task_data:
            self._vector_envs: dict[int, SyncVectorEnv] = {}  # batch size -> environments of the family
        self.task_data = datamodule
        if self.policy is None:
            template = datamodule.template_env()
            with seeded_torch(meta_step_seed(self.hparams.seed, "policy", 0, 0)):  # the seed alone decides
                self.policy = RecurrentPolicy(
                    template.observation_space, template.action_space, self.hparams.hidden_size,
                    self.hparams.init_std,
                    self.hparams.episodes_per_trial if self.hparams.trial_progress else None,
                    self.hparams.separate_critic,
                )  # fmt: skip

    def configure_optimizers(self) -> dict:
        return scheduled_optimizer(
            self.policy.parameters(), self.optimizer_factory, self.lr_scheduler_factory
        )

    # ------------------------------------------------------------------------------------ training
    def trials(self, tasks: list, episodes: int, seeds: list[int]) -> Trials:
        """A trial of ``episodes`` episodes on each of ``tasks`` (task dicts), seeded by ``seeds``. The
        environments are made once per batch size and set to each call's tasks."""
        envs = self._vector_envs.get(len(tasks))
        if envs is None:
            envs = trial_envs([partial(self.task_data.make_env, None)] * len(tasks))
            self._vector_envs[len(tasks)] = envs
        for env, task in zip(envs.envs, tasks, strict=True):
            env.unwrapped.set_task(task)
        return collect_trials(self.policy, envs, episodes, seeds)

    def training_step(self, batch, batch_idx: int) -> None:
        seed, step = self.hparams.seed, batch.meta_step
        tasks = batch.task_parameters
        seeds = [meta_step_seed(seed, "trial", step, i) for i in range(len(tasks))]
        trials = self.trials(tasks, self.hparams.episodes_per_trial, seeds)
        # Lightning counts the steps of its optimizer wrapper: only the last PPO step of a meta-iteration
        # goes through it, so trainer.max_steps counts meta-iterations
        optimizer = self.optimizers()
        shuffle = torch.Generator().manual_seed(meta_step_seed(seed, "minibatches", step, 0))
        stats = ppo_update(
            self.policy, optimizer.optimizer, trials, self.ppo, shuffle, final_optimizer=optimizer
        )
        scheduler = self.lr_schedulers()
        if scheduler is not None:
            self.log("train/lr", scheduler.get_last_lr()[0], on_step=True, on_epoch=False)
            scheduler.step()
        returns = trials.episode_returns.float()
        self.count_environment_steps(int(trials.mask.sum()))
        self.log("train/trial_return", returns.sum(1).mean(), prog_bar=True, on_step=True, on_epoch=False)
        self.log("train/episode_return_first", returns[:, 0].mean(), on_step=True, on_epoch=False)
        self.log("train/episode_return_last", returns[:, -1].mean(), on_step=True, on_epoch=False)
        if trials.episode_successes is not None:
            rate = trials.episode_successes.float().mean()
            self.log("train/success_rate", rate, on_step=True, on_epoch=False)
        for name, value in stats.items():
            self.log(f"train/{name}", value, on_step=True, on_epoch=False)

    # ---------------------------------------------------------------------------------- evaluation
    @property
    def learner_name(self) -> str:
        return LEARNER

    def curve_names(self) -> tuple[str, ...]:
        """RL²; on Bernoulli bandits also the RL² paper's baselines (Table 1:
        :data:`~lit_meta.evaluation.bandit_baselines.BANDIT_BASELINES`) and uniformly random play; on
        random tabular MDPs those of its Table 2
        (:data:`~lit_meta.evaluation.mdp_baselines.MDP_BASELINES`)."""
        env = self.task_data.hparams.env if self.task_data is not None else None
        if env == BANDIT_ENV:
            return (LEARNER, *BANDIT_BASELINES, RANDOM_PLAY)
        return (LEARNER, *MDP_BASELINES) if env == TABULAR_ENV else (LEARNER,)

    def compute_curves(
        self, tasks: list, names: tuple[str, ...], steps: int, episodes: int, split: str, first_index: int,
        progress: bool,
    ) -> dict[str, Tensor]:  # fmt: skip
        """``[tasks, steps]``: the return in each episode ``1..steps`` of a trial, averaged over ``episodes``
        trials per task (the baselines: their reward per pull, on the same tasks). Trial ``j`` of task
        ``first_index + i`` of ``split`` has its own seed, so trials are played many tasks at once."""
        curves = {}
        if LEARNER in names:
            jobs = [(first_index + i, task, j) for i, task in enumerate(tasks) for j in range(episodes)]
            seed, returns, successes = self.hparams.seed, [], []
            with torch.no_grad():
                for start in progress_bar(range(0, len(jobs), EVAL_CHUNK), progress, "trials", "it"):
                    chunk = jobs[start : start + EVAL_CHUNK]
                    seeds = [meta_step_seed(seed, f"evaluation-{split}", j, index) for index, _, j in chunk]
                    trials = self.trials([task for _, task, _ in chunk], steps, seeds)
                    returns.append(trials.episode_returns)
                    successes.append(trials.episode_successes)
            curves[LEARNER] = torch.cat(returns).view(len(tasks), episodes, steps).mean(1)
            if successes[0] is not None:
                self.success_curves = {
                    LEARNER: torch.cat(successes).view(len(tasks), episodes, steps).mean(1).double()
                }
        baselines = [name for name in names if name != LEARNER]
        if baselines:
            play = self._bandit_baselines if self.task_data.hparams.env == BANDIT_ENV else self._mdp_baselines
            curves.update(play(tasks, baselines, steps, episodes, split, first_index))
        return {name: curves[name] for name in names}

    def _bandit_baselines(
        self, tasks, names, steps: int, episodes: int, split: str, first_index: int
    ) -> dict:
        """The baselines' reward per pull, ``[tasks, steps]``, each task played ``episodes`` times; each
        plays all tasks at once from one seed of ``split`` and ``first_index``."""
        means = self._arm_means(tasks)
        repeated = np.repeat(means, episodes, axis=0)
        curves = {}
        for name in names:
            if name == RANDOM_PLAY:
                rewards = means.mean(1, keepdims=True).repeat(steps, 1)
            else:
                rng = np.random.default_rng(
                    meta_step_seed(self.hparams.seed, f"{name}-{split}", 0, first_index)
                )
                played = play_bandits(name, repeated, steps, rng, **self.tuned_parameters(name, steps))
                rewards = played.reshape(len(tasks), episodes, steps).mean(1)
            curves[name] = torch.tensor(rewards, dtype=torch.float64)
        return curves

    def _mdp_baselines(self, tasks, names, steps: int, episodes: int, split: str, first_index: int) -> dict:
        """The baselines' return in each episode ``1..steps`` of a trial, ``[tasks, steps]``, averaged over
        ``episodes`` trials per task; each plays all tasks at once from one seed of ``split`` and
        ``first_index``."""
        family = self.task_data.make_env(tasks[0])
        mdp, horizon = family.unwrapped, family.spec.max_episode_steps
        drawn = [random_mdp(int(task[MDP_KEY]), mdp.states, mdp.actions) for task in tasks]
        means, transitions = (
            np.repeat(np.stack(part), episodes, axis=0) for part in zip(*drawn, strict=True)
        )
        curves = {}
        for name in names:
            rng = np.random.default_rng(meta_step_seed(self.hparams.seed, f"{name}-{split}", 0, first_index))
            played = play_mdps(name, means, transitions, steps, horizon, rng)
            curves[name] = torch.tensor(
                played.reshape(len(tasks), episodes, steps).mean(1), dtype=torch.float64
            )
        return curves

    def _arm_means(self, tasks: list) -> np.ndarray:
        """``[tasks, arms]``: the success probabilities of each bandit of ``tasks``."""
        bandit, means = self.task_data.make_env(tasks[0]).unwrapped, []
        for task in tasks:
            bandit.set_task(task)
            means.append(bandit.arm_means())
        return np.stack(means)

    def tuned_parameters(self, name: str, pulls: int) -> dict:
        """The parameter of baseline ``name`` tuned for ``pulls`` pulls on :data:`TUNING_BANDITS` training
        bandits of the family (a seed stream of their own, never the held-out ones); remembered in
        :attr:`tuned_baselines`, which the report records."""
        key = f"{name}, {pulls} pulls"
        if key not in self.tuned_baselines:
            family, seed = self.task_data.template_env().unwrapped, self.task_data.hparams.seed
            training = family.sample_tasks(TUNING_BANDITS, derive_generator(seed, "baseline-tuning"))
            self.tuned_baselines[key] = tune_baseline(
                name, self._arm_means(training), pulls, derive_generator(seed, "baseline-tuning", name)
            )
        return self.tuned_baselines[key]

    def evaluation_axis(self, steps: int) -> tuple[list[int], str]:
        """Episode ``1..steps`` of a trial (on bandits, a pull)."""
        return list(range(1, steps + 1)), "episode of the trial"

    def evaluation_details(self) -> dict:
        return {
            "tuned_baselines": {key: value for key, value in self.tuned_baselines.items() if value},
            "hidden_size": self.hparams.hidden_size,
            "trial_progress": self.hparams.trial_progress,
            "separate_critic": self.hparams.separate_critic,
            "trained_episodes_per_trial": self.hparams.episodes_per_trial,
            "curve": "return in each episode of one trial, averaged over `episodes` trials per task",
        }

    def evaluate_batch(self, split: str, batch, batch_idx: int) -> None:
        """Mean return per episode over a trial of ``eval_steps`` episodes, and the trial's return."""
        returns = self.adaptation_curves(
            batch,
            self.hparams.eval_steps,
            self.hparams.eval_episodes,
            split,
            (LEARNER,),
            first_index=batch_idx,
        )[LEARNER].float()
        self.log(f"{split}/return", returns.mean(), prog_bar=True, batch_size=len(batch))
        self.log(f"{split}/trial_return", returns.sum(1).mean(), batch_size=len(batch))
        if LEARNER in self.success_curves:
            rates = self.success_curves[LEARNER].float()
            self.log(f"{split}/success_rate", rates.mean(), batch_size=len(batch))
            self.log(f"{split}/success_rate_last", rates[:, -1].mean(), batch_size=len(batch))


__all__ = ["RL2Module"]
