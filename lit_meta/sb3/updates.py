"""How many gradient updates an SB3 learner takes in a given number of timesteps, and the inverse.

Reptile's k is a number of inner *updates*; SB3's ``learn`` takes a number of *timesteps*. These
functions translate between the two by following SB3's own loops:

* on-policy (PPO, A2C): each rollout collects ``n_steps · n_envs`` timesteps, then ``n_epochs`` passes
  over it in minibatches of ``batch_size`` (A2C: one update per rollout) — ``learn`` runs whole rollouts;
* off-policy (SAC, TD3, DDPG, DQN): each rollout collects ``train_freq`` steps per environment, then
  ``gradient_steps`` updates once more than ``learning_starts`` timesteps have been collected.

PPO's ``target_kl`` can stop an epoch early; with it set the count is an upper bound. TD3 and DDPG
update the actor every ``policy_delay`` critic updates: the count is of critic updates.
"""

import inspect
import math
from typing import Any

from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm

from lit_meta.errors import ConfigError, require, require_positive


def compute_updates(
    algorithm: type[BaseAlgorithm] | BaseAlgorithm, timesteps: int, n_envs: int = 1, **algo_kwargs: Any
) -> int:
    """Gradient updates that ``learn(total_timesteps=timesteps)`` performs from a fresh start.

    :param algorithm: an SB3 algorithm class (hyperparameters from ``algo_kwargs`` or its defaults) or
        a constructed model (its own hyperparameters and number of environments).
    :param timesteps: total environment timesteps, summed over the ``n_envs`` environments.
    """
    require(timesteps >= 0, f"timesteps must not be negative, got {timesteps}")
    settings = _settings(algorithm, n_envs, algo_kwargs)
    if settings["on_policy"]:
        return _rollouts(timesteps, settings["rollout"]) * settings["updates_per_rollout"]
    return sum(
        settings["updates_per_rollout"]
        for rollout in range(1, _rollouts(timesteps, settings["rollout"]) + 1)
        if rollout * settings["rollout"] > settings["learning_starts"]
    )


def timesteps_for_updates(
    algorithm: type[BaseAlgorithm] | BaseAlgorithm, updates: int, n_envs: int = 1, **algo_kwargs: Any
) -> int:
    """The fewest whole rollouts of timesteps whose ``learn`` performs exactly ``updates`` gradient
    updates (``learn`` always completes its last rollout, so these are the timesteps it collects).

    Raises :class:`ConfigError` when no number of timesteps gives exactly that many (updates come in
    blocks of one rollout's worth).
    """
    require_positive("the number of inner updates", updates)
    settings = _settings(algorithm, n_envs, algo_kwargs)
    per_rollout, rollout = settings["updates_per_rollout"], settings["rollout"]
    if updates % per_rollout:
        raise ConfigError(
            f"{updates} inner updates cannot be reached: {settings['name']} with these settings updates in "
            f"blocks of {per_rollout} per rollout of {rollout} timesteps; ask for a multiple of {per_rollout}"
        )
    rollouts = updates // per_rollout
    if not settings["on_policy"]:
        rollouts += settings["learning_starts"] // rollout  # rollouts that end at or before learning_starts
    return rollouts * rollout


def collected_timesteps(
    algorithm: type[BaseAlgorithm] | BaseAlgorithm, timesteps: int, n_envs: int = 1, **algo_kwargs: Any
) -> int:
    """The timesteps ``learn(total_timesteps=timesteps)`` really collects: whole rollouts."""
    rollout = _settings(algorithm, n_envs, algo_kwargs)["rollout"]
    return _rollouts(timesteps, rollout) * rollout


def _rollouts(timesteps: int, rollout: int) -> int:
    return math.ceil(timesteps / rollout)


def _settings(algorithm: type[BaseAlgorithm] | BaseAlgorithm, n_envs: int, algo_kwargs: dict) -> dict:
    """The hyperparameters that decide the update count, read from a model or a class and kwargs."""
    if isinstance(algorithm, BaseAlgorithm):
        cls, n_envs = type(algorithm), algorithm.n_envs

        def value(name: str) -> Any:
            return getattr(algorithm, name)
    elif isinstance(algorithm, type) and issubclass(algorithm, BaseAlgorithm):
        cls = algorithm
        defaults = {
            name: parameter.default
            for klass in reversed(cls.__mro__)
            if klass.__init__ is not object.__init__
            for name, parameter in inspect.signature(klass.__init__).parameters.items()
            if parameter.default is not inspect.Parameter.empty
        }

        def value(name: str) -> Any:
            return algo_kwargs.get(name, defaults.get(name))
    else:
        raise ConfigError(
            f"rl_algorithm must be a Stable-Baselines3 algorithm class or model, got {algorithm!r}"
        )
    require_positive("n_envs", n_envs)
    if issubclass(cls, OnPolicyAlgorithm):
        rollout = value("n_steps") * n_envs
        batch_size = value("batch_size") if "batch_size" in _init_parameters(cls) else rollout
        epochs = value("n_epochs") if "n_epochs" in _init_parameters(cls) else 1
        return {
            "name": cls.__name__,
            "on_policy": True,
            "rollout": rollout,
            "updates_per_rollout": epochs * math.ceil(rollout / batch_size),
        }
    if issubclass(cls, OffPolicyAlgorithm):
        frequency, unit = _train_freq(value("train_freq"))
        require(
            unit == "step",
            f"{cls.__name__} trains every {frequency} episodes; counting needs a step-based train_freq",
        )
        rollout = frequency * n_envs
        gradient_steps = value("gradient_steps")
        return {
            "name": cls.__name__,
            "on_policy": False,
            "rollout": rollout,
            "updates_per_rollout": rollout if gradient_steps < 0 else gradient_steps,
            "learning_starts": value("learning_starts"),
        }
    raise ConfigError(f"{cls.__name__} is neither an on-policy nor an off-policy SB3 algorithm")


def _init_parameters(cls: type) -> set[str]:
    return set(inspect.signature(cls.__init__).parameters)


def _train_freq(train_freq: Any) -> tuple[int, str]:
    """SB3's ``train_freq`` (an int, a ``(n, unit)`` pair or a ``TrainFreq``) as ``(n, unit)``."""
    if isinstance(train_freq, int):
        return train_freq, "step"
    if hasattr(train_freq, "frequency"):
        return train_freq.frequency, str(getattr(train_freq.unit, "value", train_freq.unit))
    frequency, unit = train_freq
    return int(frequency), str(unit)
