"""MAML for RL: the meta-gradient through one policy-gradient inner step against a closed-form reference,
the first-order variant, and the policy-gradient pieces (returns, GAE, baseline, PPO) by hand."""

import math

import gymnasium as gym
import learn2learn as l2l
import pytest
import torch
from torch.func import functional_call

from lit_meta.algorithms import MAML
from lit_meta.algorithms.maml_rl import AdvantageEstimator, PolicyGradientTask, collect_task
from lit_meta.algorithms.policy_gradient import (
    discounted_returns,
    fit_linear_baseline,
    generalized_advantages,
    linear_baseline_features,
    lvc_policy_loss,
    normalize,
    ppo_clip_loss,
)
from lit_meta.envs import make_task_env
from lit_meta.envs.rollouts import Episodes, EpisodeSampler
from lit_meta.errors import ConfigError
from lit_meta.nn import GaussianMLPPolicy, build_policy

ALPHA, CLIP = 0.3, 0.2


def fixed_episodes(generator, steps=6, episodes=4, obs=3, act=2, lengths=(6, 4, 5, 2)) -> Episodes:
    mask = torch.zeros(steps, episodes)
    for e, length in enumerate(lengths):
        mask[:length, e] = 1
    return Episodes(
        observations=torch.randn(steps, episodes, obs, generator=generator) * mask.unsqueeze(-1),
        actions=torch.randn(steps, episodes, act, generator=generator),
        rewards=torch.randn(steps, episodes, generator=generator) * mask,
        log_probs=torch.randn(steps, episodes, generator=generator) * 0.3 - 3.0,
        mask=mask,
        terminated=torch.zeros(steps, episodes),
    )


def linear_policy() -> GaussianMLPPolicy:
    torch.manual_seed(3)
    policy = GaussianMLPPolicy(3, 2, hidden_sizes=[], init_std=0.7)
    with torch.no_grad():
        policy.log_std.copy_(torch.tensor([-0.3, 0.2]))
    return policy


def closed_form_inner_gradient(params: dict, episodes: Episodes, advantages) -> dict:
    """∇ of −mean_t ρ_t·A_t, ρ_t = π_t / π_old,t, for a linear Gaussian policy, written out by hand.

    ``∇ ρ_t = ρ_t ∇ log π_t`` with ``∇ log π_t`` in closed form: ∂/∂μ = (a − μ)/σ², ∂/∂log σ =
    (a − μ)²/σ² − 1; ρ_t stays a function of the parameters, so differentiating this gradient again
    gives the score-function second-order term.
    """
    weight, bias, log_std = params["mean.1.weight"], params["mean.1.bias"], params["log_std"]
    x, a, mask = episodes.observations, episodes.actions, episodes.mask
    mean = x @ weight.T + bias
    std = log_std.exp()
    log_prob = (-0.5 * ((a - mean) / std) ** 2 - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
    magic = torch.exp(log_prob - episodes.log_probs)
    coefficient = (-advantages * mask / mask.sum() * magic).unsqueeze(-1)  # [T, E, 1]
    d_mean = (a - mean) / std**2
    return {
        "mean.1.weight": torch.einsum("tea,teo->ao", coefficient * d_mean, x),
        "mean.1.bias": (coefficient * d_mean).sum((0, 1)),
        "log_std": (coefficient * ((a - mean) ** 2 / std**2 - 1)).sum((0, 1)),
    }


def reference_meta_gradient(policy, task: PolicyGradientTask, first_order: bool) -> dict:
    params = {name: p.detach().clone().requires_grad_() for name, p in policy.named_parameters()}
    inner = closed_form_inner_gradient(params, task.support[0], task.support_advantages[0])
    adapted = {
        name: params[name] - ALPHA * (inner[name].detach() if first_order else inner[name]) for name in params
    }
    query = task.query
    distribution = functional_call(policy, adapted, (query.observations,))
    loss = ppo_clip_loss(
        distribution.log_prob(query.actions), query.log_probs, task.query_advantages, query.mask, CLIP
    )
    return dict(zip(params, torch.autograd.grad(loss, list(params.values())), strict=True))


def make_task(generator) -> PolicyGradientTask:
    support, query = fixed_episodes(generator), fixed_episodes(generator)
    return PolicyGradientTask(
        support=[support],
        support_advantages=[torch.randn(6, 4, generator=generator) * support.mask],
        query=query,
        query_advantages=torch.randn(6, 4, generator=generator) * query.mask,
        clip_range=CLIP,
    )


@pytest.mark.parametrize("first_order", [False, True])
def test_meta_gradient_with_one_inner_step_equals_the_closed_form_reference(first_order):
    generator = torch.Generator().manual_seed(0)
    tasks = [make_task(generator) for _ in range(3)]
    policy = linear_policy()
    algorithm = MAML(policy, None, ALPHA, 1, first_order=first_order)
    algorithm.meta_gradient(tasks)
    references = [reference_meta_gradient(policy, task, first_order) for task in tasks]
    for name, parameter in policy.named_parameters():
        expected = sum(reference[name] for reference in references) / len(tasks)
        torch.testing.assert_close(parameter.grad, expected, rtol=1e-5, atol=1e-6)


def test_first_order_drops_exactly_the_second_order_terms():
    """The difference between both meta-gradients is the term through ∇θ of the inner gradient; with
    it dropped, first-order MAML's meta-gradient is the outer gradient at the adapted parameters."""
    generator = torch.Generator().manual_seed(1)
    tasks = [make_task(generator)]
    second, first = linear_policy(), linear_policy()
    MAML(second, None, ALPHA, 1).meta_gradient(tasks)
    MAML(first, None, ALPHA, 1, first_order=True).meta_gradient(tasks)
    params = {name: p.detach() for name, p in first.named_parameters()}
    inner = closed_form_inner_gradient(params, tasks[0].support[0], tasks[0].support_advantages[0])
    adapted = {name: (params[name] - ALPHA * inner[name]).requires_grad_() for name in params}
    query = tasks[0].query
    distribution = functional_call(first, adapted, (query.observations,))
    loss = ppo_clip_loss(
        distribution.log_prob(query.actions), query.log_probs, tasks[0].query_advantages, query.mask, CLIP
    )
    outer = dict(zip(adapted, torch.autograd.grad(loss, list(adapted.values())), strict=True))
    for (name, p_first), p_second in zip(first.named_parameters(), second.parameters(), strict=True):
        torch.testing.assert_close(p_first.grad, outer[name], rtol=1e-5, atol=1e-6)
        assert not torch.allclose(p_first.grad, p_second.grad, atol=1e-4), name


def test_inner_surrogate_is_magic_box_at_the_sampling_policy():
    """At π = π_old the importance-weighted surrogate has learn2learn's magic_box value, gradient and
    second derivative (so MAML's meta-gradient gets DiCE's score-function term)."""
    generator = torch.Generator().manual_seed(4)
    theta = torch.randn(3, generator=generator, requires_grad=True)
    features = torch.randn(5, 1, 3, generator=generator)
    advantages, mask = torch.randn(5, 1, generator=generator), torch.ones(5, 1)
    log_probs = torch.nn.functional.logsigmoid(features @ theta)
    ours = lvc_policy_loss(log_probs, log_probs.detach(), advantages, mask)
    theirs = -(l2l.magic_box(log_probs) * advantages).mean()
    assert ours.item() == pytest.approx(theirs.item())
    (grad_ours,) = torch.autograd.grad(ours, theta, create_graph=True)
    (grad_theirs,) = torch.autograd.grad(theirs, theta, create_graph=True)
    torch.testing.assert_close(grad_ours, grad_theirs)
    for i in range(3):
        (row_ours,) = torch.autograd.grad(grad_ours[i], theta, retain_graph=True)
        (row_theirs,) = torch.autograd.grad(grad_theirs[i], theta, retain_graph=True)
        torch.testing.assert_close(row_ours, row_theirs)
    # away from the sampling policy the ratio importance-weights the steps; magic_box would weigh them 1
    moved = lvc_policy_loss(log_probs, log_probs.detach() - 0.5, advantages, mask)
    torch.testing.assert_close(moved, ours * math.exp(0.5))


def test_returns_ignore_rewards_on_padded_steps():
    rewards, mask = torch.tensor([[1.0], [1.0], [5.0]]), torch.tensor([[1.0], [1.0], [0.0]])
    torch.testing.assert_close(discounted_returns(rewards, mask, 1.0)[:, 0], torch.tensor([2.0, 1.0, 0.0]))


def test_discounted_returns_and_gae_by_hand():
    rewards = torch.tensor([[1.0, 2.0], [0.5, -1.0], [2.0, 0.0]])
    mask = torch.tensor([[1.0, 1.0], [1.0, 1.0], [1.0, 0.0]])
    gamma, gae_lambda = 0.9, 0.8
    returns = discounted_returns(rewards * mask, mask, gamma)
    torch.testing.assert_close(returns[:, 0], torch.tensor([1 + 0.9 * 0.5 + 0.81 * 2, 0.5 + 0.9 * 2, 2.0]))
    torch.testing.assert_close(returns[:, 1], torch.tensor([2 - 0.9, -1.0, 0.0]))
    values = torch.tensor([[0.3, -0.2], [0.1, 0.4], [0.7, 0.0]])
    advantages = generalized_advantages(rewards * mask, values, mask, gamma, gae_lambda)
    delta = [1 + 0.9 * 0.1 - 0.3, 0.5 + 0.9 * 0.7 - 0.1, 2 - 0.7]
    expected0 = [delta[0] + 0.72 * (delta[1] + 0.72 * delta[2]), delta[1] + 0.72 * delta[2], delta[2]]
    torch.testing.assert_close(advantages[:, 0], torch.tensor(expected0))
    delta1 = [2 + 0.9 * 0.4 + 0.2, -1 - 0.4]  # the episode ends after its second step
    torch.testing.assert_close(advantages[:, 1], torch.tensor([delta1[0] + 0.72 * delta1[1], delta1[1], 0.0]))
    # λ = 1 is the Monte-Carlo return minus the baseline
    torch.testing.assert_close(
        generalized_advantages(rewards * mask, values, mask, gamma, 1.0), (returns - values) * mask
    )


def test_linear_baseline_recovers_returns_that_are_linear_in_its_features():
    generator = torch.Generator().manual_seed(2)
    episodes = fixed_episodes(generator)
    features = linear_baseline_features(episodes.observations, episodes.mask)
    weights = torch.randn(features.shape[-1], generator=generator)
    returns = (features @ weights) * episodes.mask
    fitted = fit_linear_baseline(episodes.observations, episodes.mask, returns, reg_coeff=1e-10)
    torch.testing.assert_close(fitted, returns, atol=1e-3, rtol=1e-3)
    normalised = normalize(returns, episodes.mask)
    real = normalised[episodes.mask.bool()]
    assert abs(real.mean().item()) < 1e-5 and abs(real.std(unbiased=False).item() - 1) < 1e-4


def test_ppo_clip_loss_by_hand():
    log_probs = torch.log(torch.tensor([[1.5], [0.5], [1.1]]))
    advantages = torch.tensor([[1.0], [-2.0], [3.0]])
    mask = torch.ones(3, 1)
    loss = ppo_clip_loss(log_probs, torch.zeros(3, 1), advantages, mask, clip_range=0.2)
    # ratios 1.5, 0.5, 1.1: min(1.5·1, 1.2·1) = 1.2; min(0.5·−2, 0.8·−2) = −1.6; 1.1·3 = 3.3
    assert loss.item() == pytest.approx(-(1.2 - 1.6 + 3.3) / 3)


def test_sampler_episodes_are_seeded_and_masked():
    sampler = EpisodeSampler(lambda: make_task_env("lit_meta/CartPoleTask-v0"), 6)
    policy = build_policy(sampler.observation_space, sampler.action_space, [8])
    task = {"length": 0.6, "masspole": 0.2, "gravity": 9.0}
    torch.manual_seed(0)
    first = sampler.sample(policy, task, seed=11)
    torch.manual_seed(0)
    second = sampler.sample(policy, task, seed=11)
    for name in ("observations", "actions", "rewards", "log_probs", "mask"):
        assert torch.equal(getattr(first, name), getattr(second, name)), name
    lengths = first.mask.sum(0)
    assert torch.equal(first.returns, lengths)  # CartPole pays 1 per step
    assert (first.terminated.sum(0) == 1).all()  # each episode fell exactly once...
    steps = torch.arange(first.mask.shape[0]).unsqueeze(1)
    assert torch.equal(first.mask, (steps < lengths).float())  # ...and the mask covers its steps only
    assert lengths.unique().numel() > 1  # episodes of different lengths share one padded batch
    log_probs = policy(first.observations).log_prob(first.actions)
    torch.testing.assert_close(log_probs * first.mask, first.log_probs * first.mask)


def test_sampler_clips_box_actions_and_stops_at_the_goal():
    """Navigation: the environment applies actions clipped to ±0.1 while the log-probabilities are those
    of the unclipped samples; an episode that reaches its goal ends there and later steps are masked."""
    sampler = EpisodeSampler(lambda: make_task_env("lit_meta/Navigation2D-v0"), 8)

    def heading_policy(std: float) -> GaussianMLPPolicy:
        policy = GaussianMLPPolicy(2, 2, hidden_sizes=[], init_std=std)
        with torch.no_grad():
            policy.mean[1].weight.zero_()
            policy.mean[1].bias.fill_(0.1)
        return policy

    torch.manual_seed(0)
    wide = heading_policy(3.0)
    episodes = sampler.sample(wide, {"goal_x": 0.45, "goal_y": -0.45}, seed=0)
    assert (episodes.actions.abs() > 0.1).any()
    moves = (episodes.observations[1:] - episodes.observations[:-1])[episodes.mask[1:].bool()]
    assert moves.abs().max() <= 0.1 + 1e-6 and moves.abs().max() > 0.099  # clipped, not rejected
    masked = lambda values: values * episodes.mask  # noqa: E731
    torch.testing.assert_close(
        masked(wide(episodes.observations).log_prob(episodes.actions)), masked(episodes.log_probs)
    )

    # (0.2, 0.2) is two steps of (0.1, 0.1) away: every episode ends at its second step
    straight = sampler.sample(heading_policy(1e-4), {"goal_x": 0.2, "goal_y": 0.2}, seed=0)
    assert straight.mask.shape[0] == 2 and straight.mask.sum(0).tolist() == [2.0] * 8
    assert straight.terminated[1].tolist() == [1.0] * 8 and straight.terminated[0].sum() == 0


def test_collect_task_adapts_between_support_and_query():
    sampler = EpisodeSampler(lambda: make_task_env("lit_meta/PendulumTask-v0"), 4)
    torch.manual_seed(0)
    policy = build_policy(sampler.observation_space, sampler.action_space, [16])
    algorithm = MAML(policy, None, 0.5, 2)
    task = collect_task(algorithm.wrapper, sampler, {"mass": 1.0}, 5, 2, AdvantageEstimator(0.99, 1.0))
    assert len(task.support) == 2 and len(task.support_advantages) == 2
    before = policy(task.query.observations).log_prob(task.query.actions)
    assert not torch.allclose(before, task.query.log_probs)  # the query was sampled by an adapted policy
    # replaying the two inner steps from θ reproduces the policy that sampled the query episodes
    adapted = algorithm.wrapper.clone()
    for step in range(2):
        adapted.adapt(task.support_loss(adapted, step), first_order=True)
    torch.testing.assert_close(
        adapted(task.query.observations).log_prob(task.query.actions), task.query.log_probs
    )


@pytest.mark.parametrize(
    ("observation_space", "action_space", "message"),
    [
        (gym.spaces.Box(0, 1, (2, 2)), gym.spaces.Discrete(2), "needs flat Box observations"),
        (gym.spaces.Discrete(3), gym.spaces.Discrete(2), "needs flat Box observations"),
        (gym.spaces.Box(0, 1, (2,)), gym.spaces.MultiDiscrete([2, 2]), "acts in a flat Box or a Discrete"),
    ],
)
def test_policy_refuses_spaces_it_cannot_handle(observation_space, action_space, message):
    with pytest.raises(ConfigError, match=message):
        build_policy(observation_space, action_space)
