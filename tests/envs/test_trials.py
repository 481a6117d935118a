"""RL² trials: a hidden state carried across episodes and reset between trials, autoreset inside a
trial, trials reproducible from their seeds alone, and the environments collection refuses."""

import itertools

import gymnasium as gym
import pytest
import torch

from lit_meta.envs import make_task_env
from lit_meta.envs.trials import collect_trials, trial_envs
from lit_meta.errors import ConfigError
from lit_meta.nn.recurrent import RecurrentPolicy

BANDIT = "lit_meta/BernoulliBandit-v0"


def bandit_envs(count: int, arms: int = 3):
    tasks = [{f"p{a}": (a + 1 + i) / (arms + count + 1) for a in range(arms)} for i in range(count)]
    return trial_envs([lambda t=t: make_task_env(BANDIT, task=t, env_kwargs={"arms": arms}) for t in tasks])


def family_envs(env_id: str, count: int):
    return trial_envs([lambda: make_task_env(env_id)] * count)


def policy_for(
    envs,
    hidden_size: int = 8,
    seed: int = 0,
    trial_episodes: int | None = None,
    separate_critic: bool = False,
) -> RecurrentPolicy:
    torch.manual_seed(seed)
    return RecurrentPolicy(
        envs.single_observation_space, envs.single_action_space, hidden_size, trial_episodes=trial_episodes,
        separate_critic=separate_critic,
    )  # fmt: skip


def test_hidden_state_is_carried_across_episodes_and_zero_at_each_trial_start():
    envs = bandit_envs(3)
    policy = policy_for(envs)
    trials = collect_trials(policy, envs, episodes=5, seeds=[1, 2, 3])
    assert trials.rewards.shape == (5, 3)  # a bandit episode is one pull
    assert torch.equal(trials.dones, torch.ones(5, 3))
    assert torch.equal(trials.hiddens[0], torch.zeros(3, 8))
    # at every episode boundary the state is not a fresh one: it is the GRU's state after the whole trial so
    # far, recomputed here by running the trial's inputs as one sequence from zeros
    inputs = trials.policy_inputs()
    for t in range(1, 5):
        assert trials.dones[t - 1].all() and trials.hiddens[t].abs().sum() > 0
        *sequences, action_mask, _ = (x[:t] for x in inputs)
        hidden = policy(*sequences, action_mask=action_mask).hidden[0]
        torch.testing.assert_close(trials.hiddens[t], hidden)
    # the next trial starts again from zeros, and (same seeds) plays the same as the first
    again = collect_trials(policy, envs, episodes=5, seeds=[1, 2, 3])
    assert torch.equal(again.hiddens[0], torch.zeros(3, 8))
    assert torch.equal(again.actions, trials.actions) and torch.equal(again.hiddens, trials.hiddens)


@pytest.mark.parametrize("trial_episodes", [None, 2])
@pytest.mark.parametrize(
    "env_id", ["lit_meta/CartPoleTask-v0", "lit_meta/PendulumTask-v0", "lit_meta/TabularMDP-v0"]
)
def test_acting_step_by_step_equals_replaying_the_trial_as_one_sequence(env_id, trial_episodes):
    """Also with the trial's progress read, the count kept while acting."""
    envs = family_envs(env_id, 3)
    policy = policy_for(envs, trial_episodes=trial_episodes)
    trials = collect_trials(policy, envs, episodes=2, seeds=[4, 5, 6])
    *sequences, action_mask, episodes_done = trials.policy_inputs()
    with torch.no_grad():
        replay = policy(*sequences, action_mask=action_mask, episodes_done=episodes_done)
    mask = trials.mask.bool()
    torch.testing.assert_close(replay.distribution.log_prob(trials.actions)[mask], trials.log_probs[mask])
    torch.testing.assert_close(replay.values[mask], trials.values[mask])


def test_episodes_autoreset_inside_a_trial_and_returns_add_up():
    envs = family_envs("lit_meta/CartPoleTask-v0", 4)
    trials = collect_trials(policy_for(envs), envs, episodes=3, seeds=[7, 8, 9, 10])
    for i in range(4):
        steps = int(trials.mask[:, i].sum())
        assert torch.equal(trials.mask[:steps, i], torch.ones(steps))  # a trial is a prefix of the batch
        ends = torch.nonzero(trials.dones[:steps, i]).flatten().tolist()
        assert len(ends) == 3 and ends[-1] == steps - 1  # the trial ends with its third episode
        bounds = [-1, *ends]
        expected = [trials.rewards[a + 1 : b + 1, i].sum().item() for a, b in itertools.pairwise(bounds)]
        assert trials.episode_returns[i].tolist() == expected
        for end in ends[:-1]:  # the step after an episode's end sees a freshly reset CartPole
            assert trials.observations[end + 1, i].abs().max() <= 0.05


def test_trials_are_reproducible_and_independent_of_their_batch():
    envs = bandit_envs(4)
    policy = policy_for(envs)
    first = collect_trials(policy, envs, episodes=6, seeds=[11, 12, 13, 14])
    second = collect_trials(policy, envs, episodes=6, seeds=[11, 12, 13, 14])
    for name in ("actions", "rewards", "log_probs", "values", "hiddens", "episode_returns"):
        assert torch.equal(getattr(first, name), getattr(second, name)), name
    other = collect_trials(policy, envs, episodes=6, seeds=[21, 22, 23, 24])
    assert not torch.equal(first.actions, other.actions)
    alone = collect_trials(policy, trial_envs([lambda: envs.envs[2]]), episodes=6, seeds=[13])
    assert torch.equal(alone.actions[:, 0], first.actions[:, 2])
    assert torch.equal(alone.rewards[:, 0], first.rewards[:, 2])


def test_collect_trials_refuses_environments_that_reset_a_step_late():
    envs = gym.vector.SyncVectorEnv([lambda: make_task_env(BANDIT)])  # NEXT_STEP autoreset
    with pytest.raises(ConfigError, match="reset in the step that ends an episode"):
        collect_trials(policy_for(envs), envs, episodes=2, seeds=[0])


def test_the_trial_progress_is_the_share_of_episodes_played_before_each_step():
    """The GRU's extra input, recomputed by hand: the episodes completed before each step divided by the
    trial's episodes; the outputs are the GRU's and heads' on those inputs, and they change with the
    progress."""
    envs = bandit_envs(2, arms=3)
    policy = policy_for(envs, trial_episodes=4)
    trials = collect_trials(policy, envs, episodes=4, seeds=[1, 2])
    observations, actions, rewards, dones, action_mask, episodes_done = trials.policy_inputs()
    counted = torch.tensor([0.0, 1.0, 2.0, 3.0])[:, None].expand(4, 2)  # a bandit episode is one pull
    assert torch.equal(episodes_done, counted) and torch.equal(dones.cumsum(0), counted)  # previous dones
    progress = counted / 4
    one_hot = torch.nn.functional.one_hot(actions.long(), 3) * action_mask[..., None]
    inputs = torch.cat([observations, one_hot, rewards[..., None], dones[..., None], progress[..., None]], -1)
    features, _ = policy.gru(inputs.float())
    with torch.no_grad():
        output = policy(observations, actions, rewards, dones, action_mask=action_mask, episodes_done=counted)
    torch.testing.assert_close(output.values, policy.critic(features).squeeze(-1))
    torch.testing.assert_close(output.distribution.logits, policy.actor(features).log_softmax(-1))
    torch.testing.assert_close(output.distribution.log_prob(trials.actions), trials.log_probs)
    with torch.no_grad():
        later = policy(
            observations, actions, rewards, dones, action_mask=action_mask, episodes_done=dones * 3
        )
    assert not torch.allclose(later.values, output.values)
    with pytest.raises(ConfigError, match="needs episodes_done at each step"):
        policy.step(observations[0], actions[0], rewards[0], dones[0], policy.initial_state(2))
    with pytest.raises(ConfigError, match="needs episodes_done at each step"):
        policy(observations, actions, rewards, dones, action_mask=action_mask)


def test_a_separate_critic_reads_the_same_inputs_through_its_own_gru():
    """With ``separate_critic`` the action distribution is the actor GRU's and head's, the value the critic
    GRU's and head's, both recomputed by hand on the trial's inputs; the hidden state carries both GRUs'
    states; the shared-GRU weights are drawn as without the option."""
    envs = bandit_envs(2, arms=3)
    shared, policy = policy_for(envs), policy_for(envs, separate_critic=True)
    for name, parameter in shared.named_parameters():
        assert torch.equal(parameter, policy.get_parameter(name)), name
    assert policy.initial_state(2).shape == (1, 2, 16) and shared.initial_state(2).shape == (1, 2, 8)
    trials = collect_trials(policy, envs, episodes=5, seeds=[1, 2])
    observations, actions, rewards, dones, action_mask, _ = trials.policy_inputs()
    one_hot = torch.nn.functional.one_hot(actions.long(), 3) * action_mask[..., None]
    inputs = torch.cat([observations, one_hot, rewards[..., None], dones[..., None]], -1).float()
    with torch.no_grad():
        actor_features, actor_last = policy.gru(inputs)
        critic_features, critic_last = policy.critic_gru(inputs)
        output = policy(observations, actions, rewards, dones, action_mask=action_mask)
    torch.testing.assert_close(output.distribution.logits, policy.actor(actor_features).log_softmax(-1))
    torch.testing.assert_close(output.values, policy.critic(critic_features).squeeze(-1))
    torch.testing.assert_close(output.hidden, torch.cat([actor_last, critic_last], -1))
    torch.testing.assert_close(output.distribution.log_prob(trials.actions), trials.log_probs)
    torch.testing.assert_close(output.values, trials.values)  # as played, step by step
    assert not torch.allclose(output.values, policy.critic(actor_features).squeeze(-1))
