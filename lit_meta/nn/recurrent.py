"""A recurrent actor-critic for RL² (Duan et al. 2016, "RL²: Fast Reinforcement Learning via Slow
Reinforcement Learning"): a GRU reads, at each step, the observation together with the previous action,
reward and episode-end flag, so its hidden state can carry what it learnt about the task from one
episode of a trial to the next."""

import math
from typing import NamedTuple

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor, nn
from torch.distributions import Categorical, Distribution, Independent, Normal

from lit_meta.errors import ConfigError, require


class PolicyOutput(NamedTuple):
    """What the policy says at each step of ``[T, B]``: the action distribution, the value ``[T, B]``,
    and the hidden state after the last step ``[1, B, hidden_size]``."""

    distribution: Distribution
    values: Tensor
    hidden: Tensor


def space_size(space: gym.Space, what: str) -> int:
    """Width of the policy's encoding of ``space`` (one-hot for ``Discrete``, flat for ``Box``);
    :class:`ConfigError` for a space the policy cannot read or write."""
    if isinstance(space, gym.spaces.Discrete):
        return int(space.n)
    if isinstance(space, gym.spaces.Box) and np.issubdtype(space.dtype, np.floating):
        if what == "action":
            require(len(space.shape) == 1, f"RecurrentPolicy needs a flat Box action space, got {space}")
        return int(np.prod(space.shape))
    raise ConfigError(
        f"RecurrentPolicy handles Discrete and float Box {what} spaces, got {type(space).__name__} {space}"
    )


class RecurrentPolicy(nn.Module):
    """GRU actor-critic: ``[obs, previous action, previous reward, previous done] -> GRU -> heads``.

    Discrete actions get a categorical head and are fed back one-hot; flat Box actions get a diagonal
    Gaussian with a state-independent, learned log standard deviation and are fed back as sampled.
    Sequences are time-major, ``[T, B, ...]``; ``hidden`` is ``[1, B, hidden_size]`` (zeros at the start
    of a trial, :meth:`initial_state`).

    :param observation_space: the task family's observation space (Discrete or float Box).
    :param action_space: its action space (Discrete or flat float Box).
    :param hidden_size: width of the GRU's state (the RL² paper uses 256 for bandits).
    :param init_std: the Gaussian's initial standard deviation (Box actions; on the scale of the actions:
        an action space of ±0.1 wants less than the default 1, which saturates every action).
    :param trial_episodes: if given, the GRU also reads the trial's progress, the episodes completed
        before the step divided by ``trial_episodes`` (the training trials' length; a longer trial reads
        past 1): a trial has a fixed length, so what remains of it is part of its state (Pardo et al. 2018,
        "Time Limits in Reinforcement Learning"), which a GRU would otherwise have to count out itself.
        ``None`` (default): the RL² paper's inputs only.
    :param separate_critic: the value is read from a second GRU of the same size over the same inputs,
        instead of from the actor's (policy and value networks apart, as public PPO reimplementations of
        RL² keep them), so the value loss, whose scale grows with the trial's return, does not steer the
        features the policy reads; the hidden state is then the two GRUs' states side by side
        ``[1, B, 2 * hidden_size]``. Off (default): one shared GRU.
    """

    def __init__(
        self,
        observation_space: gym.Space,
        action_space: gym.Space,
        hidden_size: int = 64,
        init_std: float = 1.0,
        trial_episodes: int | None = None,
        separate_critic: bool = False,
    ) -> None:
        super().__init__()
        require(hidden_size > 0, f"hidden_size must be positive, got {hidden_size}")
        require(init_std > 0, f"init_std must be positive, got {init_std}")
        require(
            trial_episodes is None or trial_episodes > 0,
            f"trial_episodes must be positive, got {trial_episodes}",
        )
        self.trial_episodes = trial_episodes
        self.observation_space, self.action_space = observation_space, action_space
        self.observation_size = space_size(observation_space, "observation")
        self.action_size = space_size(action_space, "action")
        self.discrete = isinstance(action_space, gym.spaces.Discrete)
        self.hidden_size = hidden_size
        progress_size = 0 if trial_episodes is None else 1
        input_size = self.observation_size + self.action_size + 2 + progress_size
        self.gru = nn.GRU(input_size, hidden_size)
        self.actor = nn.Linear(hidden_size, self.action_size)
        self.critic = nn.Linear(hidden_size, 1)
        if not self.discrete:
            self.log_std = nn.Parameter(torch.full((self.action_size,), math.log(init_std)))
        # PPO's usual initialisation (CleanRL): near-uniform initial policy, unit-scale values
        nn.init.orthogonal_(self.actor.weight, gain=0.01)
        nn.init.orthogonal_(self.critic.weight, gain=1.0)
        nn.init.zeros_(self.actor.bias)
        nn.init.zeros_(self.critic.bias)
        # built last, so a shared-GRU policy draws its initial weights exactly as before the option
        self.critic_gru = nn.GRU(input_size, hidden_size) if separate_critic else None

    @property
    def state_size(self) -> int:
        """Width of the hidden state: ``hidden_size``, twice that with a separate critic."""
        return self.hidden_size * (1 if self.critic_gru is None else 2)

    def initial_state(self, batch_size: int) -> Tensor:
        """The hidden state at the start of a trial: zeros."""
        return torch.zeros(1, batch_size, self.state_size, device=self.critic.weight.device)

    def gradient_groups(self) -> list[list[nn.Parameter]]:
        """Parameters whose gradient norm is clipped together: all of them, or, with a separate critic,
        the actor's (its GRU, head and standard deviation) and the critic's, each on its own."""
        if self.critic_gru is None:
            return [list(self.parameters())]
        critic = [*self.critic_gru.parameters(), *self.critic.parameters()]
        critic_ids = {id(p) for p in critic}
        return [[p for p in self.parameters() if id(p) not in critic_ids], critic]

    def encode(self, observations: Tensor, actions: Tensor) -> tuple[Tensor, Tensor]:
        """Observations ``[T, B, ...]`` and actions ``[T, B(, A)]`` as flat float features."""
        if isinstance(self.observation_space, gym.spaces.Discrete):
            observations = nn.functional.one_hot(observations.long(), self.observation_size)
        observations = observations.reshape(*observations.shape[:2], self.observation_size).float()
        if self.discrete:
            actions = nn.functional.one_hot(actions.long(), self.action_size)
        return observations, actions.float()

    def forward(
        self,
        observations: Tensor,
        previous_actions: Tensor,
        previous_rewards: Tensor,
        previous_dones: Tensor,
        hidden: Tensor | None = None,
        action_mask: Tensor | None = None,
        episodes_done: Tensor | None = None,
    ) -> PolicyOutput:
        """The policy over a sequence ``[T, B]`` started from ``hidden`` (default: a fresh trial).

        ``previous_actions`` etc. at step ``t`` are those of step ``t - 1``; ``action_mask`` ``[T, B]``
        zeroes the previous action where there was none (the first step of a trial). ``episodes_done``
        ``[T, B]``, needed with ``trial_episodes`` only: the episodes of the trial completed before each
        step, as the trial counted them while acting (:attr:`~lit_meta.envs.trials.Trials.episodes_done`).
        """
        require(
            self.trial_episodes is None or episodes_done is not None,
            "a policy that reads the trial's progress needs episodes_done at each step",
        )
        observations, previous_actions = self.encode(observations, previous_actions)
        if action_mask is not None:
            previous_actions = previous_actions * action_mask.unsqueeze(-1)
        parts = [observations, previous_actions, previous_rewards.unsqueeze(-1), previous_dones.unsqueeze(-1)]
        if self.trial_episodes is not None:
            parts.append((episodes_done / self.trial_episodes).unsqueeze(-1))
        inputs = torch.cat(parts, dim=-1).float()
        if hidden is None:
            hidden = self.initial_state(inputs.shape[1])
        if self.critic_gru is None:
            features, hidden = self.gru(inputs, hidden)
            value_features = features
        else:
            actor_hidden, critic_hidden = hidden.split(self.hidden_size, dim=-1)
            features, actor_hidden = self.gru(inputs, actor_hidden.contiguous())
            value_features, critic_hidden = self.critic_gru(inputs, critic_hidden.contiguous())
            hidden = torch.cat([actor_hidden, critic_hidden], dim=-1)
        head = self.actor(features)
        if self.discrete:
            distribution: Distribution = Categorical(logits=head)
        else:
            distribution = Independent(Normal(head, self.log_std.exp().expand_as(head)), 1)
        return PolicyOutput(distribution, self.critic(value_features).squeeze(-1), hidden)

    def step(
        self,
        observation: Tensor,
        previous_action: Tensor,
        previous_reward: Tensor,
        previous_done: Tensor,
        hidden: Tensor,
        action_mask: Tensor | None = None,
        episodes_done: Tensor | None = None,
    ) -> PolicyOutput:
        """One step for a batch ``[B]``: :meth:`forward` on a sequence of length 1 (outputs ``[1, B]``)."""
        unsqueeze = lambda x: None if x is None else x.unsqueeze(0)  # noqa: E731
        return self(
            unsqueeze(observation), unsqueeze(previous_action), unsqueeze(previous_reward),
            unsqueeze(previous_done), hidden, unsqueeze(action_mask), unsqueeze(episodes_done),
        )  # fmt: skip

    def sample(self, distribution: Distribution, noise: Tensor) -> Tensor:
        """An action drawn from ``distribution`` with given noise, so the caller owns the randomness:
        ``noise`` is uniform in [0, 1) ``[..., ]`` for a categorical (inverse CDF), standard normal
        ``[..., A]`` for a Gaussian (``mean + std * noise``)."""
        if self.discrete:
            cdf = distribution.probs.cumsum(-1)
            return (
                torch.searchsorted(cdf, noise.unsqueeze(-1).to(cdf.dtype))
                .squeeze(-1)
                .clamp_max(self.action_size - 1)
            )
        normal = distribution.base_dist
        return normal.loc + normal.scale * noise
