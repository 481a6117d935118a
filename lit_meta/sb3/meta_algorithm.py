"""The generic outer loop of first-order meta-RL over Stable-Baselines3 learners (the "Reptile_sb3"
specification).

Per meta-iteration: sample a batch of tasks, copy the meta-parameters into a fresh SB3 learner per
task, let SB3 train it on its task (``learn`` for ``inner_timesteps``), then ``meta_update`` the
meta-parameters from the trained learners. Subclasses implement ``meta_update`` (Reptile: see
:mod:`lit_meta.sb3.reptile`); SB3 does all of the reinforcement learning.
"""

import copy
import math
import sys
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.logger import HumanOutputFormat, Logger
from stable_baselines3.common.save_util import load_from_zip_file
from tqdm import tqdm

from lit_meta.envs.task_generator import sample_meta_batch
from lit_meta.errors import ConfigError, require, require_positive
from lit_meta.files import atomic_write
from lit_meta.sb3.algorithms import SB3_ALGORITHMS, from_plain, resolve_rl_algorithm, to_plain
from lit_meta.sb3.export import export_policy
from lit_meta.sb3.weights import load_meta_weights
from lit_meta.seeding import meta_step_seed

META_POLICY_FILE = "meta_policy.zip"
"""The meta-initialisation in SB3's own format: ``PPO.load(<dir>/meta_policy.zip)`` opens it."""
META_STATE_FILE = "meta_state.pt"


def folderless_logger(verbose: int = 0) -> Logger:
    """A logger for an SB3 learner that writes no files: its progress table on stdout when ``verbose``
    is 1 or more, else nothing. SB3's default logger (no ``tensorboard_log``) makes an empty
    ``SB3-<time>`` folder in the temp directory at every ``learn``: one per task and meta-step here."""
    return Logger(folder=None, output_formats=[HumanOutputFormat(sys.stdout)] if verbose >= 1 else [])


class BaseMetaAlgorithm(ABC):
    """First-order meta-learning of an SB3 learner's initial parameters.

    :param task_generator: any object with ``get_task(meta_step, seed) -> (env, info,
        origin_meta_step)`` and ``reset_history()`` (e.g.
        :class:`lit_meta.envs.task_generator.TaskGenerator`).
    :param rl_algorithm: the inner learner, an SB3 algorithm class (``PPO``, ``SAC``, ...) or its name.
    :param rl_algo_kwargs: keyword arguments of every learner (``policy`` defaults to ``MlpPolicy``,
        ``device`` to ``cpu``; ``seed`` is set per task by the meta-algorithm).
    :param meta_batch_size: tasks per meta-iteration.
    :param inner_timesteps: environment timesteps of each task's inner ``learn``; SB3 completes its
        last rollout, so it collects whole rollouts (:func:`lit_meta.sb3.timesteps_for_updates` asks
        for k gradient updates instead).
    :param seed: seeds the meta-initialisation, the task seeds and every inner learner.
    :param template_env: an environment whose spaces the learners share (default: a task from the
        generator, whose history is then reset).

    Every SB3 learner is built with its own derived seed, and SB3 seeds Python's, NumPy's and torch's
    global generators when it builds one: meta-training is reproducible, and it reseeds those global
    generators as it goes.
    """

    def __init__(
        self,
        task_generator,
        rl_algorithm: type[BaseAlgorithm] | str,
        rl_algo_kwargs: dict[str, Any] | None = None,
        meta_batch_size: int = 5,
        inner_timesteps: int = 2048,
        seed: int = 0,
        template_env: gym.Env | None = None,
    ) -> None:
        for method in ("get_task", "reset_history"):
            require(
                callable(getattr(task_generator, method, None)),
                f"the task generator must have a {method}() method, {type(task_generator).__name__} has not",
            )
        require_positive("meta_batch_size", meta_batch_size)
        require_positive("inner_timesteps", inner_timesteps)
        require(isinstance(seed, int) and seed >= 0, f"seed must be a non-negative integer, got {seed!r}")
        self.task_generator = task_generator
        self.rl_algorithm = resolve_rl_algorithm(rl_algorithm)
        self.rl_algo_kwargs = dict(rl_algo_kwargs or {})
        for reserved in ("env", "seed"):
            require(reserved not in self.rl_algo_kwargs, f"rl_algo_kwargs must not set '{reserved}'")
        self.meta_batch_size = meta_batch_size
        self.inner_timesteps = inner_timesteps
        self.seed = seed
        self.meta_step = 0
        self.horizon: int | None = None
        """The meta-step at which schedules (ε annealing) reach their end; set by :meth:`learn`."""
        if template_env is None:
            template_env = sample_meta_batch(task_generator, 0, 1, seed)[0][0]
            task_generator.reset_history()
        self.meta_model = self.make_learner(template_env, seed)
        """An SB3 model whose policy holds the meta-initialisation (used for predict and save)."""

    # --------------------------------------------------------------------------------------- learners
    def make_learner(self, env: gym.Env, seed: int) -> BaseAlgorithm:
        """A fresh SB3 learner on ``env`` (its own optimizer, buffers and entropy coefficient)."""
        # a deep copy: SB3 writes into the policy_kwargs it is given
        kwargs = {"policy": "MlpPolicy", "device": "cpu", **copy.deepcopy(self.rl_algo_kwargs)}
        try:
            learner = self.rl_algorithm(env=env, seed=seed, **kwargs)
        except (TypeError, ValueError, AssertionError) as error:
            raise ConfigError(
                f"{self.rl_algorithm.__name__} refused rl_algo_kwargs {kwargs}: {error}"
            ) from None
        if not kwargs.get("tensorboard_log"):
            learner.set_logger(folderless_logger(kwargs.get("verbose", 0)))
        return learner

    def adapt(
        self, env: gym.Env, seed: int, timesteps: int | None = None, from_meta: bool = True
    ) -> BaseAlgorithm:
        """A learner on ``env`` started from the meta-initialisation (or, with ``from_meta=False``, from
        SB3's own random initialisation for ``seed``) and trained for ``timesteps`` (default
        ``inner_timesteps``; 0 trains nothing)."""
        learner = self.make_learner(env, seed)
        if from_meta:
            load_meta_weights(learner, self.policy)
        timesteps = self.inner_timesteps if timesteps is None else timesteps
        if timesteps > 0:
            learner.learn(total_timesteps=timesteps, reset_num_timesteps=True)
        return learner

    # ------------------------------------------------------------------------------------- outer loop
    def sample_tasks(self, meta_step: int) -> list[tuple]:
        return sample_meta_batch(self.task_generator, meta_step, self.meta_batch_size, self.seed)

    def train_step(self, tasks: list[tuple] | None = None, meta_step: int | None = None) -> dict[str, float]:
        """One meta-iteration: adapt a learner to each task, then :meth:`meta_update`.

        :return: ``inner_return``, the mean over tasks of the return of each learner's last (up to 10)
            episodes during its inner training; ``nan`` if no episode ended.
        """
        meta_step = self.meta_step if meta_step is None else meta_step
        self.meta_step = meta_step  # schedules read it
        tasks = self.sample_tasks(meta_step) if tasks is None else tasks
        learners = [
            self.adapt(env, meta_step_seed(self.seed, "learner", meta_step, index))
            for index, (env, _info, _origin) in enumerate(tasks)
        ]
        self.meta_update(learners)
        self.meta_step = meta_step + 1
        returns = [_recent_return(learner) for learner in learners]
        finite = [value for value in returns if math.isfinite(value)]
        return {"inner_return": float(np.mean(finite)) if finite else math.nan}

    def learn(self, total_meta_steps: int, progress_bar: bool = True) -> "BaseMetaAlgorithm":
        """Meta-train for ``total_meta_steps`` more meta-iterations, from :attr:`meta_step`.

        Schedules run until the end of this call (:attr:`horizon`), as SB3's ``learn`` does with
        ``reset_num_timesteps=False``: a run saved at meta-step s of ``learn(n)`` and continued after
        :meth:`load_meta_algo` with ``learn(n - s)`` follows the same schedule as one ``learn(n)``.
        """
        require_positive("total_meta_steps", total_meta_steps)
        self.horizon = self.meta_step + total_meta_steps
        bar = tqdm(range(total_meta_steps), desc="meta-training", unit="meta-step", disable=not progress_bar)
        for _ in bar:
            stats = self.train_step()
            bar.set_postfix(inner_return=f"{stats['inner_return']:.1f}")
        return self

    @property
    def progress_remaining(self) -> float:
        """1 at the start of the schedule, 0 at :attr:`horizon` (1 throughout when there is none)."""
        if not self.horizon:
            return 1.0
        return max(0.0, 1.0 - self.meta_step / self.horizon)

    @abstractmethod
    def meta_update(self, task_models: list[BaseAlgorithm]) -> None:
        """Update the meta-parameters (``self.policy``) from the learners trained on this batch's tasks."""

    # ------------------------------------------------------------------------------------ shared API
    @property
    def policy(self) -> torch.nn.Module:
        """The SB3 policy holding the meta-initialisation."""
        return self.meta_model.policy

    def predict(self, observation, state=None, episode_start=None, deterministic: bool = False):
        """The meta-initialisation's action, as SB3's ``predict``."""
        return self.meta_model.predict(observation, state, episode_start, deterministic)

    def save_meta_algo(self, path: str | Path) -> Path:
        """Save into the directory ``path``: ``meta_policy.zip`` (SB3's format, opened safely by
        :func:`lit_meta.sb3.load_policy`, and by ``PPO.load``/``SAC.load`` for files one trusts) and
        ``meta_state.pt`` (meta-step, settings, generator state; plain data, loadable with
        ``weights_only=True``)."""
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        export_policy(self.meta_model, folder / META_POLICY_FILE)
        try:
            algo_kwargs = to_plain(self.rl_algo_kwargs)
        except TypeError:
            algo_kwargs = None  # must be given again to load_meta_algo
        name = self.rl_algorithm.__name__
        state = {
            "class": type(self).__name__,
            "rl_algorithm": name if SB3_ALGORITHMS.get(name) is self.rl_algorithm else None,
            "rl_algo_kwargs": algo_kwargs,
            "settings": {
                "meta_batch_size": self.meta_batch_size,
                "inner_timesteps": self.inner_timesteps,
                "seed": self.seed,
                **self._settings(),
            },
            "meta_step": self.meta_step,
            "horizon": self.horizon,
            "extra": self._extra_state(),
        }
        if callable(getattr(self.task_generator, "state_dict", None)):
            state["task_generator"] = self.task_generator.state_dict()
        atomic_write(folder / META_STATE_FILE, lambda file: torch.save(state, file))
        return folder

    @classmethod
    def load_meta_algo(cls, path: str | Path, task_generator, **overrides: Any) -> "BaseMetaAlgorithm":
        """A meta-algorithm saved by :meth:`save_meta_algo`, continuing where it stopped. Settings that
        were not plain data (an algorithm class outside SB3, objects in ``rl_algo_kwargs``) must be
        given again in ``overrides``."""
        folder = Path(path)
        for name in (META_POLICY_FILE, META_STATE_FILE):
            require((folder / name).is_file(), f"{folder} holds no saved meta-algorithm ({name} is missing)")
        state = torch.load(folder / META_STATE_FILE, map_location="cpu", weights_only=True)
        require(
            state.get("class") == cls.__name__,
            f"{folder} holds a {state.get('class')}, not a {cls.__name__}",
        )
        kwargs = {**cls._settings_from_plain(state["settings"]), "rl_algorithm": state["rl_algorithm"]}
        if state["rl_algo_kwargs"] is not None:
            kwargs["rl_algo_kwargs"] = from_plain(state["rl_algo_kwargs"])
        kwargs.update(overrides)
        for needed in ("rl_algorithm", "rl_algo_kwargs"):
            require(
                kwargs.get(needed) is not None,
                f"{folder} could not store {needed} as plain data; pass it again to load_meta_algo",
            )
        algorithm = cls(task_generator, **kwargs)
        _, params, _ = load_from_zip_file(folder / META_POLICY_FILE, load_data=False, device="cpu")
        algorithm.policy.load_state_dict(params["policy"])
        algorithm.meta_step = state["meta_step"]
        algorithm.horizon = state["horizon"]
        algorithm._load_extra_state(state["extra"])
        if "task_generator" in state and callable(getattr(task_generator, "load_state_dict", None)):
            task_generator.load_state_dict(state["task_generator"])
        return algorithm

    def _settings(self) -> dict:
        """Constructor settings of the subclass, as plain data (for :meth:`save_meta_algo`)."""
        return {}

    @classmethod
    def _settings_from_plain(cls, settings: dict) -> dict:
        """Inverse of :meth:`_settings`: constructor keyword arguments."""
        return settings

    def _extra_state(self) -> dict:
        return {}

    def _load_extra_state(self, state: dict) -> None:  # noqa: B027 (an optional hook)
        """Inverse of :meth:`_extra_state`."""


def _recent_return(learner: BaseAlgorithm, episodes: int = 10) -> float:
    buffer = list(learner.ep_info_buffer or [])[-episodes:]
    return float(np.mean([info["r"] for info in buffer])) if buffer else math.nan
