"""Stochastic policies for policy-gradient meta-RL: an MLP from observations to an action distribution.

The MAML paper's locomotion and navigation policies (Finn, Abbeel & Levine 2017, section 5.3): two
hidden layers of 100 ReLU units, a Gaussian over actions with a state-independent, learned standard
deviation. Discrete action spaces get a categorical head. Every parameter lives in plain ``nn.Linear``
layers and one ``nn.Parameter``, so learn2learn's ``clone``/``adapt`` differentiate through them.
"""

from collections.abc import Sequence

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor, nn
from torch.distributions import Categorical, Distribution, Independent, Normal

from lit_meta.errors import ConfigError, require_positive
from lit_meta.nn.mlp import MLP


class GaussianMLPPolicy(nn.Module):
    """π(a | s) = N(μθ(s), diag(σ²)), with μθ an MLP and log σ a learned vector (one per action dim)."""

    def __init__(
        self,
        observation_size: int,
        action_size: int,
        hidden_sizes: Sequence[int] = (100, 100),
        activation: str = "relu",
        init_std: float = 1.0,
    ) -> None:
        super().__init__()
        require_positive("init_std", init_std)
        self.mean = MLP(observation_size, action_size, hidden_sizes, activation)
        self.log_std = nn.Parameter(torch.full((action_size,), float(np.log(init_std))))

    def forward(self, observations: Tensor) -> Distribution:
        mean = _per_step(self.mean, observations)
        return Independent(Normal(mean, self.log_std.exp(), validate_args=False), 1, validate_args=False)


class CategoricalMLPPolicy(nn.Module):
    """π(a | s) = softmax(MLPθ(s)) over a discrete action set."""

    def __init__(
        self, observation_size: int, actions: int, hidden_sizes: Sequence[int] = (100, 100), activation="relu"
    ) -> None:
        super().__init__()
        self.logits = MLP(observation_size, actions, hidden_sizes, activation)

    def forward(self, observations: Tensor) -> Distribution:
        return Categorical(logits=_per_step(self.logits, observations), validate_args=False)


def _per_step(network: nn.Module, observations: Tensor) -> Tensor:
    """``network`` applied to each observation of a ``[..., obs]`` batch (:class:`MLP` flattens its input)."""
    batch_shape = observations.shape[:-1]
    return network(observations.reshape(-1, observations.shape[-1])).reshape(*batch_shape, -1)


def build_policy(
    observation_space: gym.Space,
    action_space: gym.Space,
    hidden_sizes: Sequence[int] = (100, 100),
    activation: str = "relu",
    init_std: float = 1.0,
) -> nn.Module:
    """The policy for these spaces: Gaussian for a flat ``Box`` of actions, categorical for ``Discrete``.
    Observations must be a flat ``Box``; anything else is refused with one sentence."""
    if not isinstance(observation_space, gym.spaces.Box) or len(observation_space.shape) != 1:
        raise ConfigError(
            f"the MLP policy needs flat Box observations, but the environment has {observation_space}"
        )
    observation_size = observation_space.shape[0]
    if isinstance(action_space, gym.spaces.Box) and len(action_space.shape) == 1:
        return GaussianMLPPolicy(observation_size, action_space.shape[0], hidden_sizes, activation, init_std)
    if isinstance(action_space, gym.spaces.Discrete):
        return CategoricalMLPPolicy(observation_size, int(action_space.n), hidden_sizes, activation)
    raise ConfigError(f"the MLP policy acts in a flat Box or a Discrete action space, not in {action_space}")


__all__ = ["CategoricalMLPPolicy", "GaussianMLPPolicy", "build_policy"]
