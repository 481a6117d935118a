"""Stable-Baselines3 algorithms by name, and their keyword arguments as plain data.

Checkpoints and saved meta-algorithms store the learner as a name and its settings as plain data
(loadable with ``torch.load(weights_only=True)``): nothing stored is ever imported or called, except
the activation and layer classes of ``torch.nn`` named in ``policy_kwargs``.
"""

from typing import Any

from stable_baselines3 import A2C, DDPG, DQN, PPO, SAC, TD3
from stable_baselines3.common.base_class import BaseAlgorithm
from torch import nn

from lit_meta.errors import ConfigError

SB3_ALGORITHMS: dict[str, type[BaseAlgorithm]] = {
    cls.__name__: cls for cls in (PPO, A2C, SAC, TD3, DDPG, DQN)
}
TORCH_NN_TAG = "torch.nn"


def resolve_rl_algorithm(rl_algorithm: str | type) -> type[BaseAlgorithm]:
    """An SB3 algorithm class, given as the class itself or by the name of one of SB3's own."""
    if isinstance(rl_algorithm, str):
        if rl_algorithm not in SB3_ALGORITHMS:
            raise ConfigError(
                f"unknown rl_algorithm '{rl_algorithm}'; choose one of {', '.join(SB3_ALGORITHMS)} "
                "(or pass any Stable-Baselines3 algorithm class from Python)"
            )
        return SB3_ALGORITHMS[rl_algorithm]
    if isinstance(rl_algorithm, type) and issubclass(rl_algorithm, BaseAlgorithm):
        return rl_algorithm
    raise ConfigError(
        f"rl_algorithm must be a Stable-Baselines3 algorithm class (a subclass of BaseAlgorithm), "
        f"got {rl_algorithm!r}"
    )


def to_plain(value: Any) -> Any:
    """``value`` with ``torch.nn`` classes replaced by ``{"torch.nn": name}``; :class:`TypeError` if
    anything else is not plain data (str, number, bool, None, list, tuple, dict with str keys)."""
    if (
        isinstance(value, type)
        and issubclass(value, nn.Module)
        and getattr(nn, value.__name__, None) is value
    ):
        return {TORCH_NN_TAG: value.__name__}
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, list | tuple):
        return [to_plain(item) for item in value]
    if isinstance(value, dict) and all(isinstance(key, str) for key in value):
        return {key: to_plain(item) for key, item in value.items()}
    raise TypeError(f"{value!r} is not plain data")


def from_plain(value: Any) -> Any:
    """Inverse of :func:`to_plain` (lists stay lists)."""
    if isinstance(value, dict):
        if set(value) == {TORCH_NN_TAG}:
            cls = getattr(nn, str(value[TORCH_NN_TAG]), None)
            if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
                raise ConfigError(f"torch.nn has no module class '{value[TORCH_NN_TAG]}'")
            return cls
        return {key: from_plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [from_plain(item) for item in value]
    return value
