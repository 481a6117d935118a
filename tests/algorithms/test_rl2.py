"""RL²'s update: GAE over the trial, PPO's loss and update, and the spaces the recurrent policy refuses
(trial collection: tests/envs/test_trials.py)."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from lit_meta.algorithms.rl2 import PPOConfig, ppo_loss, ppo_update, trial_advantages
from lit_meta.envs.trials import collect_trials
from lit_meta.errors import ConfigError
from lit_meta.nn.recurrent import RecurrentPolicy
from tests.envs.test_trials import bandit_envs, policy_for


def test_trial_advantages_by_hand():
    """γ = 0.9, λ = 0.5: GAE run backwards from each trial's end, the only terminal step."""
    rewards = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 5.0]])
    values = torch.tensor([[0.5, 0.2], [0.4, 0.1], [0.3, 7.0]])
    mask = torch.tensor([[1.0, 1.0], [1.0, 1.0], [1.0, 0.0]])  # the second trial is 2 steps long
    advantages, returns = trial_advantages(rewards, values, mask, gamma=0.9, gae_lambda=0.5)
    a2 = 1.0 - 0.3  # δ of the last step: terminal
    a1 = (0.0 + 0.9 * 0.3 - 0.4) + 0.45 * a2
    a0 = (1.0 + 0.9 * 0.4 - 0.5) + 0.45 * a1
    b1 = 1.0 - 0.1  # the second trial's end; its padded step (reward 5, value 7) counts for nothing
    b0 = (0.0 + 0.9 * 0.1 - 0.2) + 0.45 * b1
    expected = torch.tensor([[a0, b0], [a1, b1], [a2, 0.0]])
    torch.testing.assert_close(advantages, expected)
    torch.testing.assert_close(returns, expected + values)


def test_trial_advantages_equal_the_discounted_sum_of_td_errors():
    """A_t = Σ_k (γλ)^k δ_{t+k} over the rest of the trial, whatever the episode ends inside it."""
    generator = torch.Generator().manual_seed(0)
    rewards, values = torch.rand(7, 3, generator=generator), torch.rand(7, 3, generator=generator)
    mask = torch.ones(7, 3)
    gamma, gae_lambda = 0.95, 0.8
    advantages, _ = trial_advantages(rewards, values, mask, gamma, gae_lambda)
    next_values = torch.cat([values[1:], torch.zeros(1, 3)])
    deltas = rewards + gamma * next_values - values
    for t in range(7):
        reference = sum((gamma * gae_lambda) ** k * deltas[t + k] for k in range(7 - t))
        torch.testing.assert_close(advantages[t], reference)


def test_ppo_loss_by_hand():
    log_ratio = torch.tensor([0.5, -0.5, 0.5, 0.1])
    old = torch.tensor([-1.0, -2.0, -0.5, -1.0])
    advantages = torch.tensor([1.0, 1.0, -2.0, 3.0])
    values, returns = torch.tensor([1.0, 0.0, 2.0, 9.0]), torch.tensor([0.0, 0.0, 1.0, 0.0])
    entropy = torch.tensor([1.0, 0.5, 0.3, 9.0])
    mask = torch.tensor([1.0, 1.0, 1.0, 0.0])  # the last step is padding
    loss, stats = ppo_loss(
        old + log_ratio, old, advantages, values, returns, entropy, mask,
        clip_range=0.2, value_coef=0.5, entropy_coef=0.1,
    )  # fmt: skip
    e = np.exp
    surrogates = [
        min(e(0.5) * 1.0, 1.2 * 1.0),  # clipped above: 1.2
        min(e(-0.5) * 1.0, 0.8 * 1.0),  # the unclipped ratio is the smaller
        min(e(0.5) * -2.0, 1.2 * -2.0),  # a negative advantage is not clipped when the ratio grows
    ]
    policy_loss = -np.mean(surrogates)
    value_loss = 0.5 * np.mean([1.0, 0.0, 1.0])
    entropy_mean = np.mean([1.0, 0.5, 0.3])
    assert loss.item() == pytest.approx(policy_loss + 0.5 * value_loss - 0.1 * entropy_mean, rel=1e-6)
    assert stats["policy_loss"] == pytest.approx(policy_loss, rel=1e-6)
    assert stats["clip_fraction"] == pytest.approx(1.0)  # |r - 1| > 0.2 on every real step
    kl = np.mean([(e(x) - 1) - x for x in (0.5, -0.5, 0.5)])
    assert stats["approx_kl"] == pytest.approx(kl, rel=1e-6)


class CountingOptimizer:
    def __init__(self, optimizer) -> None:
        self.optimizer, self.steps = optimizer, 0

    def step(self) -> None:
        self.steps += 1
        self.optimizer.step()


def test_ppo_update_steps_per_minibatch_and_improves_the_value_fit():
    envs = bandit_envs(8)
    policy = policy_for(envs)
    trials = collect_trials(policy, envs, episodes=5, seeds=list(range(8)))
    config = PPOConfig(epochs=3, minibatches=2, entropy_coef=0.0)
    optimizer = torch.optim.Adam(policy.parameters(), lr=1e-2)
    final = CountingOptimizer(optimizer)
    before = [p.detach().clone() for p in policy.parameters()]
    first = ppo_update(policy, optimizer, trials, config, torch.Generator().manual_seed(0), final)
    assert final.steps == 1  # only the last of the 3 x 2 steps goes through final_optimizer
    assert all(not torch.equal(a, b) for a, b in zip(before, policy.parameters(), strict=True))
    for _ in range(20):
        last = ppo_update(policy, optimizer, trials, config, torch.Generator().manual_seed(0))
    assert last["value_loss"] < first["value_loss"]
    with pytest.raises(ConfigError, match="minibatches"):
        ppo_update(policy, optimizer, trials, PPOConfig(minibatches=9), torch.Generator())


@pytest.mark.parametrize("separate_critic", [False, True])
def test_with_a_separate_critic_the_value_loss_does_not_move_the_actor(separate_critic):
    """One PPO step with the value loss weighted 0.5 or 50: with a separate critic (each network's gradient
    clipped on its own) the actor's weights end identical; with one shared GRU the value loss moves the
    actor too. Either way the critic is trained."""
    envs = bandit_envs(4)
    trials = collect_trials(policy_for(envs, separate_critic=separate_critic), envs, 4, seeds=[0, 1, 2, 3])
    stepped = []
    for value_coef in (0.5, 50.0):
        policy = policy_for(envs, separate_critic=separate_critic)
        optimizer = torch.optim.SGD(policy.parameters(), lr=0.1)
        config = PPOConfig(epochs=1, minibatches=1, value_coef=value_coef, max_grad_norm=0.01)
        stats = ppo_update(policy, optimizer, trials, config, torch.Generator().manual_seed(0))
        assert ("critic_grad_norm" in stats) == separate_critic
        stepped.append(dict(policy.named_parameters()))
    actor = [name for name in stepped[0] if name.startswith(("gru.", "actor."))]
    moved = [name for name in actor if not torch.equal(stepped[0][name], stepped[1][name])]
    assert moved == ([] if separate_critic else actor)
    initial = policy_for(envs, separate_critic=separate_critic)
    assert not torch.equal(stepped[0]["critic.weight"], initial.critic.weight)


@pytest.mark.parametrize(
    ("observation_space", "action_space"),
    [
        (gym.spaces.Box(0, 1, (1,)), gym.spaces.MultiDiscrete([2, 3])),
        (gym.spaces.Box(0, 1, (1,)), gym.spaces.Box(-1, 1, (2, 2))),
        (gym.spaces.Box(0, 1, (1,)), gym.spaces.MultiBinary(3)),
        (gym.spaces.Dict({"a": gym.spaces.Discrete(2)}), gym.spaces.Discrete(2)),
        (gym.spaces.Box(0, 5, (2,), dtype=np.int64), gym.spaces.Discrete(2)),
    ],
)
def test_spaces_the_policy_cannot_handle_are_refused(observation_space, action_space):
    with pytest.raises(ConfigError, match="RecurrentPolicy") as error:
        RecurrentPolicy(observation_space, action_space)
    assert "\n" not in str(error.value)


def test_discrete_observations_are_read_one_hot_and_hidden_state_must_be_positive():
    policy = RecurrentPolicy(gym.spaces.Discrete(4), gym.spaces.Discrete(2), hidden_size=3)
    output = policy(torch.tensor([[1, 3]]), torch.tensor([[0, 1]]), torch.zeros(1, 2), torch.zeros(1, 2))
    assert output.values.shape == (1, 2) and output.hidden.shape == (1, 2, 3)
    with pytest.raises(ConfigError, match="hidden_size"):
        RecurrentPolicy(gym.spaces.Discrete(4), gym.spaces.Discrete(2), hidden_size=0)
    with pytest.raises(ConfigError, match="trial_episodes must be positive"):
        RecurrentPolicy(gym.spaces.Discrete(4), gym.spaces.Discrete(2), trial_episodes=0)


@pytest.mark.parametrize("init_std", [1.0, 0.1])
def test_the_gaussian_policy_starts_at_init_std(init_std):
    """A fresh recurrent policy's Gaussian has standard deviation ``init_std`` (the default 1 saturates
    moves of ±0.1, as 2D navigation's are); its actions are drawn as mean + std · noise."""
    box = gym.spaces.Box(-0.1, 0.1, (2,), np.float32)
    policy = RecurrentPolicy(box, box, 8, init_std=init_std)
    output = policy.step(
        torch.zeros(3, 2), torch.zeros(3, 2), torch.zeros(3), torch.zeros(3), policy.initial_state(3)
    )
    torch.testing.assert_close(output.distribution.base_dist.scale, torch.full((1, 3, 2), init_std))
    noise = torch.randn(1, 3, 2)
    action = policy.sample(output.distribution, noise)
    torch.testing.assert_close(action, output.distribution.base_dist.loc + init_std * noise)
    with pytest.raises(ConfigError, match="init_std must be positive"):
        RecurrentPolicy(box, box, 8, init_std=0.0)
