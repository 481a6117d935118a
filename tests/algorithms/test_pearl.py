"""PEARL's pieces against references computed another way: the product of Gaussian factors against its
closed form and against summed log-densities, the KL term against torch.distributions, and the
gradients the paper routes (the critic loss and β·KL into the encoder; nothing from the actor, the
temperature or the critics' targets)."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lit_meta.algorithms.pearl import (
    DEVIATION_SCALE,
    PEARL_GROUPS,
    ContextEncoder,
    PEARLAgent,
    context_deviations,
    context_features,
    kl_to_standard_normal,
    product_of_full_gaussians,
    product_of_gaussians,
)
from lit_meta.envs import make_task_env
from lit_meta.envs.rollouts import EpisodeSampler
from lit_meta.errors import ConfigError

OBS, ACT, LATENT = 3, 2, 4


def make_agent(**kwargs) -> PEARLAgent:
    torch.manual_seed(0)
    return PEARLAgent(OBS, ACT, -1.0, 1.0, LATENT, (16, 16), (16,), **kwargs)


def random_batch(tasks: int, size: int, seed: int = 1) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return {
        "obs": torch.randn(tasks, size, OBS, generator=generator),
        "action": torch.rand(tasks, size, ACT, generator=generator) * 2 - 1,
        "reward": torch.randn(tasks, size, generator=generator),
        "next_obs": torch.randn(tasks, size, OBS, generator=generator),
        "terminated": (torch.rand(tasks, size, generator=generator) < 0.1).float(),
    }


def test_two_factors_multiply_to_the_closed_form():
    means = torch.tensor([[0.3, -1.0], [2.0, 0.5]], dtype=torch.float64)
    variances = torch.tensor([[0.5, 2.0], [1.5, 0.25]], dtype=torch.float64)
    mean, variance = product_of_gaussians(means, variances)
    (m1, m2), (v1, v2) = means, variances
    torch.testing.assert_close(variance, v1 * v2 / (v1 + v2))
    torch.testing.assert_close(mean, (m1 * v2 + m2 * v1) / (v1 + v2))


def test_the_product_is_the_normalised_sum_of_log_densities():
    """Σ_n log N(z; μ_n, σ_n²) − log N(z; μ, σ²) does not depend on z."""
    generator = torch.Generator().manual_seed(0)
    means = torch.randn(7, 3, generator=generator, dtype=torch.float64)
    variances = torch.rand(7, 3, generator=generator, dtype=torch.float64) + 0.1
    mean, variance = product_of_gaussians(means, variances)
    differences = []
    for z in torch.randn(5, 3, generator=generator, dtype=torch.float64):
        factors = torch.distributions.Normal(means, variances.sqrt()).log_prob(z).sum(0)
        product = torch.distributions.Normal(mean, variance.sqrt()).log_prob(z)
        differences.append(factors - product)
    differences = torch.stack(differences)
    torch.testing.assert_close(differences, differences[:1].expand_as(differences))


def test_the_product_ignores_order_and_masked_factors():
    generator = torch.Generator().manual_seed(3)
    means, variances = (
        torch.randn(2, 6, 3, generator=generator),
        torch.rand(2, 6, 3, generator=generator) + 0.1,
    )
    permutation = torch.randperm(6, generator=generator)
    for got, expected in zip(
        product_of_gaussians(means[:, permutation], variances[:, permutation]),
        product_of_gaussians(means, variances),
        strict=True,
    ):
        torch.testing.assert_close(got, expected)
    mask = torch.tensor([[1, 1, 0, 1, 0, 0], [1, 1, 1, 1, 1, 0]], dtype=torch.float32)
    masked = product_of_gaussians(means, variances, mask)
    for task, kept in enumerate(mask.bool()):
        alone = product_of_gaussians(means[task, kept], variances[task, kept])
        torch.testing.assert_close(masked[0][task], alone[0])
        torch.testing.assert_close(masked[1][task], alone[1])


def test_the_kl_term_matches_torch_distributions():
    generator = torch.Generator().manual_seed(0)
    mean, variance = torch.randn(5, 4, generator=generator), torch.rand(5, 4, generator=generator) + 0.05
    expected = torch.distributions.kl_divergence(
        torch.distributions.Normal(mean, variance.sqrt()), torch.distributions.Normal(0.0, 1.0)
    ).sum(-1)
    torch.testing.assert_close(kl_to_standard_normal(mean, variance), expected)
    assert kl_to_standard_normal(torch.zeros(4), torch.ones(4)).item() == 0.0


# --- context deviations (context_deviations=True) ----------------------------------------------------------


def test_each_transition_gets_its_deviation_from_its_own_contexts_mean_over_unmasked_steps():
    features = torch.tensor([[[1.0, 2.0], [3.0, 6.0], [100.0, -100.0]], [[0.0, 1.0], [2.0, 1.0], [4.0, 4.0]]])
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
    got = context_deviations(features, mask)
    means = [torch.tensor([2.0, 4.0]), torch.tensor([2.0, 2.0])]  # context 0 leaves out its padded step
    for context in range(2):
        for step in range(3):
            row = features[context, step]
            expected = torch.cat([row, DEVIATION_SCALE * (row - means[context])])
            torch.testing.assert_close(got[context, step], expected)
    unmasked = context_deviations(features[1:])
    torch.testing.assert_close(unmasked, got[1:])


@pytest.mark.parametrize("covariance", ["diagonal", "full"])
def test_an_encoder_reading_deviations_ignores_order_and_padding(covariance):
    """Still a permutation-invariant product: shuffling a context, or padding it with masked steps of any
    value, leaves its posterior as it was; and the deviations reach the posterior (shifting one transition
    moves every factor's input, so the posterior differs from the encoder's without deviations)."""
    torch.manual_seed(0)
    encoder = ContextEncoder(5, 3, (16,), covariance, deviations=True)
    generator = torch.Generator().manual_seed(1)
    features = torch.randn(2, 6, 5, generator=generator)
    expected = encoder(features)
    shuffled = encoder(features[:, torch.randperm(6, generator=generator)])
    padded = torch.cat([features, 50 * torch.randn(2, 3, 5, generator=generator)], 1)
    mask = torch.cat([torch.ones(2, 6), torch.zeros(2, 3)], 1)
    for got in (shuffled, encoder(padded, mask)):
        torch.testing.assert_close(got[0], expected[0], rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(got[1], expected[1], rtol=1e-4, atol=1e-5)
    assert encoder.network[1].in_features == 10
    moved = features.clone()
    moved[:, 0] += 1.0
    # the first transition's own factor changes, and so does every other's (through the mean)
    per_step = encoder.network(context_deviations(features).flatten(0, 1)).view(2, 6, -1)
    per_step_moved = encoder.network(context_deviations(moved).flatten(0, 1)).view(2, 6, -1)
    assert not torch.allclose(per_step[:, 1:], per_step_moved[:, 1:])


# --- full precision matrices (posterior_covariance="full") -------------------------------------------------


def test_diagonal_precision_factors_multiply_as_the_papers_diagonal_factors():
    generator = torch.Generator().manual_seed(1)
    means, variances = (
        torch.randn(2, 6, 3, generator=generator),
        torch.rand(2, 6, 3, generator=generator) + 0.1,
    )
    mask = torch.tensor([[1, 1, 0, 1, 0, 0], [1, 1, 1, 1, 1, 0]], dtype=torch.float32)
    mean, covariance = product_of_full_gaussians(means, torch.diag_embed(variances.rsqrt()), mask)
    expected_mean, expected_variance = product_of_gaussians(means, variances, mask)
    torch.testing.assert_close(mean, expected_mean)
    torch.testing.assert_close(covariance.float(), torch.diag_embed(expected_variance))


def test_two_oblique_constraints_meet_where_the_closed_form_says():
    """Each factor is sharp along one direction that is not an axis (a line in z-space), which no diagonal
    factor can express; the product is the Gaussian of precision Λ₁ + Λ₂ and mean (Λ₁ + Λ₂)⁻¹(Λ₁μ₁ + Λ₂μ₂),
    here almost exactly where the two lines cross."""
    directions = np.array([[1.0, 1.0], [1.0, -2.0]]) / np.sqrt([[2.0], [5.0]])
    means = np.array([[0.5, 0.5], [2.0, -1.0]])  # line 1: x + y = 1; line 2: x − 2y = 4
    factors = []
    for direction in directions:  # precision 1e4·uuᵀ + 1e-2·I, as a lower-triangular factor
        factors.append(np.linalg.cholesky(1e4 * np.outer(direction, direction) + 1e-2 * np.eye(2)))
    mean, covariance = product_of_full_gaussians(torch.tensor(means), torch.tensor(np.stack(factors)).tril())
    precisions = [f @ f.T for f in factors]
    expected_covariance = np.linalg.inv(sum(precisions))
    expected_mean = expected_covariance @ sum(p @ m for p, m in zip(precisions, means, strict=True))
    np.testing.assert_allclose(mean.numpy(), expected_mean, rtol=1e-9)
    np.testing.assert_allclose(covariance.numpy(), expected_covariance, rtol=1e-9)
    np.testing.assert_allclose(mean.numpy(), [2.0, -1.0], atol=1e-3)  # x + y = 1 and x − 2y = 4


def test_the_full_kl_term_matches_torch_distributions():
    generator = torch.Generator().manual_seed(0)
    root = torch.randn(5, 4, 4, generator=generator, dtype=torch.float64)
    covariance = root @ root.transpose(-1, -2) + 0.1 * torch.eye(4, dtype=torch.float64)
    mean = torch.randn(5, 4, generator=generator, dtype=torch.float64)
    standard = torch.distributions.MultivariateNormal(
        torch.zeros(4, dtype=torch.float64), torch.eye(4).double()
    )
    expected = torch.distributions.kl_divergence(
        torch.distributions.MultivariateNormal(mean, covariance), standard
    )
    torch.testing.assert_close(kl_to_standard_normal(mean, covariance), expected)
    diagonal = torch.rand(5, 4, generator=generator, dtype=torch.float64) + 0.1
    torch.testing.assert_close(
        kl_to_standard_normal(mean, torch.diag_embed(diagonal)), kl_to_standard_normal(mean, diagonal)
    )


def test_sampled_latents_follow_a_full_covariance():
    covariance = torch.tensor([[1.0, 0.8], [0.8, 2.0]])
    torch.manual_seed(0)
    z = PEARLAgent.sample_latent(*PEARLAgent.repeat_posterior(torch.tensor([1.0, -2.0]), covariance, 40000))
    np.testing.assert_allclose(z.mean(0).numpy(), [1.0, -2.0], atol=0.03)
    np.testing.assert_allclose(np.cov(z.numpy().T), covariance.numpy(), rtol=0.05)


def test_a_full_encoder_with_nothing_below_the_diagonal_is_the_diagonal_encoder():
    """The full factor's diagonal is the diagonal factor's 1/σ: with its extra outputs at zero, the full
    encoder's posterior is the paper's."""
    torch.manual_seed(0)
    diagonal, full = ContextEncoder(7, 3, (16,)), ContextEncoder(7, 3, (16,), "full")
    with torch.no_grad():
        for (_, got), (_, source) in zip(full.named_parameters(), diagonal.named_parameters(), strict=True):
            got.zero_()
            got[: len(source)] = source  # the last layer's first 2L outputs; the 3 below-diagonal ones stay 0
    features = torch.randn(2, 9, 7)
    mean, covariance = full(features)
    expected_mean, expected_variance = diagonal(features)
    torch.testing.assert_close(mean, expected_mean)
    torch.testing.assert_close(covariance.float(), torch.diag_embed(expected_variance))
    assert full.network(features.reshape(-1, 7)).shape[-1] == 2 * 3 + 3


def test_a_full_agent_trains_every_output_of_its_encoder_and_the_entries_below_the_diagonal_count():
    agent = make_agent(posterior_covariance="full")
    context, batch = random_batch(3, 10, seed=2), random_batch(3, 8, seed=3)
    losses, stats = agent.losses(context, batch)
    gradients = torch.autograd.grad(losses["encoder"], list(agent.encoder.parameters()))
    assert all(torch.isfinite(g).all() for g in gradients)
    below_diagonal = gradients[-1][
        2 * LATENT :
    ]  # the last layer's bias: the precision's off-diagonal entries
    assert below_diagonal.shape == (LATENT * (LATENT - 1) // 2,) and below_diagonal.abs().min() > 0
    assert stats["kl"] > 0 and stats["posterior_std"] > 0
    with torch.no_grad():
        agent.encoder.network[-1].bias[2 * LATENT :] = 0.5
    _, covariance = agent.posterior({key: value[0] for key, value in context.items()})
    assert (covariance - torch.diag_embed(covariance.diagonal())).abs().max() > 1e-4  # not diagonal


def test_a_posterior_sharp_along_an_oblique_direction_samples_and_scores_in_single_precision():
    """A hundred factors of precision 1e6 along (1, 1, 0, 0, 0)/√2: the covariance is too ill-conditioned
    for a single-precision Cholesky, so it is kept in double; z and the KL come out finite, in single."""
    direction = torch.tensor([1.0, 1.0, 0.0, 0.0, 0.0], dtype=torch.float64) / math.sqrt(2)
    factor = torch.linalg.cholesky(1e6 * torch.outer(direction, direction) + 1e-2 * torch.eye(5).double())
    means = torch.randn(100, 5)
    mean, covariance = product_of_full_gaussians(means, factor.float().expand(100, 5, 5))
    torch.manual_seed(0)
    z = PEARLAgent.sample_latent(*PEARLAgent.repeat_posterior(mean, covariance, 8))
    kl = kl_to_standard_normal(mean, covariance)
    assert z.dtype == kl.dtype == torch.float32 and torch.isfinite(z).all() and torch.isfinite(kl)
    spread = ((z - mean).double() @ direction).abs().max()
    assert spread < 1e-3  # sharp along the direction: σ = 1/√(100·1e6) = 1e-4


def test_an_unknown_covariance_is_refused():
    with pytest.raises(ConfigError, match="posterior_covariance must be one of"):
        make_agent(posterior_covariance="banded")


def reference_encoder_loss(
    agent: PEARLAgent, context, batch, seed: int, objective: str = "critic"
) -> torch.Tensor:
    """The encoder's loss written out: z reparameterised, Σ_k mean(Q_k(s, a, z) − y)² with the target y
    computed without gradients from z (``critic``), or the decoder's mean (r̂(s, a, s′, z) − scale·r)²
    (``reward``), or both, plus β·Σ_tasks KL."""
    torch.manual_seed(seed)
    features = context_features(context)
    raw = agent.encoder.network(features.reshape(-1, features.shape[-1])).reshape(*features.shape[:-1], -1)
    factor_means, factor_raw = raw.chunk(2, -1)
    factor_variances = F.softplus(factor_raw)
    precision = (1 / factor_variances).sum(1)
    variance = 1 / precision
    mean = variance * (factor_means / factor_variances).sum(1)
    z = mean + variance.sqrt() * torch.randn_like(mean)
    tasks, size = batch["obs"].shape[:2]
    zs = z[:, None].expand(tasks, size, LATENT).reshape(-1, LATENT)
    flat = {key: value.reshape(tasks * size, *value.shape[2:]) for key, value in batch.items()}
    sac = agent.sac
    with torch.no_grad():
        next_inputs = torch.cat([flat["next_obs"], zs], -1)
        next_action, next_log_prob = sac._sample(next_inputs)
        next_q = torch.min(
            sac.q1_target(torch.cat([next_inputs, next_action], -1)),
            sac.q2_target(torch.cat([next_inputs, next_action], -1)),
        ).squeeze(-1)
        alpha = sac.log_alpha["shared"].exp()
        target = flat["reward"] * agent.reward_scale + sac.gamma * (1 - flat["terminated"]) * (
            next_q - alpha * next_log_prob
        )
    inputs = torch.cat([flat["obs"], zs, flat["action"]], -1)
    critic = F.mse_loss(sac.q1(inputs).squeeze(-1), target) + F.mse_loss(sac.q2(inputs).squeeze(-1), target)
    kl = 0.5 * (variance + mean**2 - 1 - variance.log()).sum()
    if agent.reward_decoder is None:
        return critic + agent.kl_weight * kl
    decoded = agent.reward_decoder(torch.cat([flat["obs"], flat["action"], flat["next_obs"], zs], -1))
    reward = ((decoded.squeeze(-1) - flat["reward"] * agent.reward_scale) ** 2).mean()
    terms = {"critic": critic, "reward": reward, "critic_and_reward": critic + reward}
    return terms[objective] + agent.kl_weight * kl


def test_the_encoder_learns_from_the_critic_loss_and_the_kl_term_only():
    agent = make_agent(kl_weight=0.3, reward_scale=2.0)
    context, batch = random_batch(3, 5, seed=1), random_batch(3, 8, seed=2)
    encoder = list(agent.encoder.parameters())
    torch.manual_seed(7)
    losses, stats = agent.losses(context, batch)
    got = torch.autograd.grad(losses["encoder"], encoder, retain_graph=True)
    expected = torch.autograd.grad(reference_encoder_loss(agent, context, batch, seed=7), encoder)
    for a, b in zip(got, expected, strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
    for name in ("actor", "alpha"):  # z is detached for the policy and the temperature
        grads = torch.autograd.grad(losses[name], encoder, allow_unused=True, retain_graph=True)
        assert all(grad is None for grad in grads), name
    assert math.isclose(
        stats["kl"].item() * 3 * 0.3 + stats["critic_loss"].item(), stats["encoder_loss"].item(), rel_tol=1e-5
    )


@pytest.mark.parametrize("objective", ["reward", "critic_and_reward"])
def test_a_reward_decoder_trains_the_encoder_as_written_out(objective):
    agent = make_agent(kl_weight=0.3, reward_scale=2.0, encoder_objective=objective)
    context, batch = random_batch(3, 5, seed=1), random_batch(3, 8, seed=2)
    encoder = agent.parameter_groups()["encoder"]
    decoder = list(agent.reward_decoder.parameters())
    assert all(any(p is q for q in encoder) for p in decoder)  # the encoder's optimizer steps the decoder
    torch.manual_seed(7)
    losses, stats = agent.losses(context, batch)
    got = torch.autograd.grad(losses["encoder"], encoder, retain_graph=True)
    expected = torch.autograd.grad(
        reference_encoder_loss(agent, context, batch, seed=7, objective=objective), encoder
    )
    for a, b in zip(got, expected, strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
    critic_reaches_encoder = torch.autograd.grad(
        losses["critic"], list(agent.encoder.parameters()), allow_unused=True, retain_graph=True
    )
    # with the reward objective alone the critics see z detached; with both, the critic trains it too
    assert all(g is None for g in critic_reaches_encoder) == (objective == "reward")
    critic_part = stats["critic_loss"].item() if objective == "critic_and_reward" else 0.0
    assert math.isclose(
        stats["kl"].item() * 3 * 0.3 + critic_part + stats["reward_decoder_loss"].item(),
        stats["encoder_loss"].item(),
        rel_tol=1e-5,
    )


def test_the_papers_critic_objective_has_no_decoder():
    agent = make_agent()
    assert agent.reward_decoder is None
    _, stats = agent.losses(random_batch(2, 4), random_batch(2, 8, seed=5))
    assert "reward_decoder_loss" not in stats


def test_through_the_reward_decoder_alone_the_posterior_learns_which_task_it_reads():
    """Two tasks that differ only in their rewards (+1 and −1 everywhere): trained on the decoder's
    loss, the posterior of each task's context lands where the decoder predicts that task's rewards."""
    agent = make_agent(kl_weight=0.01, encoder_objective="reward")
    optimizers = {
        name: torch.optim.Adam(params, lr=3e-3) for name, params in agent.parameter_groups().items()
    }
    signs = torch.tensor([1.0, -1.0])[:, None]

    def task_batch(seed):
        batch = random_batch(2, 16, seed=seed)
        return {**batch, "reward": signs.expand(2, 16).clone()}

    for step in range(300):
        agent.update(task_batch(2 * step), task_batch(2 * step + 1), optimizers)
    probe = task_batch(10_000)
    with torch.no_grad():
        mean, _ = agent.posterior(probe)
        inputs = torch.cat([probe["obs"], probe["action"], probe["next_obs"]], -1)
        decoded = agent.reward_decoder(
            torch.cat([inputs, mean[:, None].expand(2, 16, LATENT)], -1).flatten(0, 1)
        )
    torch.testing.assert_close(decoded.view(2, 16).mean(1), torch.tensor([1.0, -1.0]), atol=0.15, rtol=0)
    assert torch.linalg.vector_norm(mean[0] - mean[1]) > 0.5


def test_an_unknown_encoder_objective_is_refused():
    with pytest.raises(ConfigError, match="encoder_objective must be one of"):
        make_agent(encoder_objective="value")


def test_an_update_moves_every_group_and_the_targets_follow_by_polyak():
    agent = make_agent()
    groups = agent.parameter_groups()
    assert set(groups) == set(PEARL_GROUPS)
    optimizers = {name: torch.optim.Adam(params, lr=1e-2) for name, params in groups.items()}
    before = {name: [p.detach().clone() for p in params] for name, params in groups.items()}
    target_before = [p.clone() for p in agent.sac.q1_target.parameters()]
    agent.update(random_batch(2, 4), random_batch(2, 8, seed=5), optimizers)
    for name, params in groups.items():
        assert any(not torch.equal(a, b) for a, b in zip(before[name], params, strict=True)), name
    for old, new, online in zip(
        target_before, agent.sac.q1_target.parameters(), agent.sac.q1.parameters(), strict=True
    ):
        torch.testing.assert_close(new, old.lerp(online.detach(), agent.sac.tau))


def test_latent_policy_runs_in_the_episode_sampler_and_records_next_observations():
    agent = PEARLAgent(2, 2, -0.1, 0.1, LATENT, (8,), (8,))
    sampler = EpisodeSampler(lambda: make_task_env("lit_meta/Navigation2D-v0"), 3)
    latent = agent.sample_latent(*agent.prior(3))
    episodes = sampler.sample(agent.policy(latent), {"goal_x": 0.2, "goal_y": -0.3}, seed=0)
    rows = episodes.transitions()
    assert len(rows["obs"]) == int(episodes.mask.sum())
    # navigation: the next observation is the position after the (clipped) move
    torch.testing.assert_close(rows["next_obs"], rows["obs"] + rows["action"].clamp(-0.1, 0.1))
    reward = -torch.linalg.vector_norm(rows["next_obs"] - torch.tensor([0.2, -0.3]), dim=-1)
    torch.testing.assert_close(rows["reward"], reward, atol=1e-5, rtol=0)
    deterministic = sampler.sample(
        agent.policy(latent, deterministic=True), {"goal_x": 0.2, "goal_y": -0.3}, 0
    )
    again = sampler.sample(agent.policy(latent, deterministic=True), {"goal_x": 0.2, "goal_y": -0.3}, 0)
    torch.testing.assert_close(deterministic.actions, again.actions)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"kl_weight": -1.0}, "kl_weight must not be negative"), ({"reward_scale": 0.0}, "reward_scale")],
)
def test_bad_values_are_refused(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        make_agent(**kwargs)


def test_sampled_latents_follow_the_posterior():
    mean, variance = (
        torch.tensor([[1.0, -2.0]]).expand(20000, 2),
        torch.tensor([[0.25, 4.0]]).expand(20000, 2),
    )
    torch.manual_seed(0)
    z = PEARLAgent.sample_latent(mean, variance)
    np.testing.assert_allclose(z.mean(0).numpy(), [1.0, -2.0], atol=0.05)
    np.testing.assert_allclose(z.var(0).numpy(), [0.25, 4.0], rtol=0.05)


def test_the_temperature_aims_at_one_nat_below_zero_per_dimension_on_rescaled_actions():
    """On navigation's ±0.1 moves, SAC's −|A| target is out of reach (a uniform policy over the box has
    entropy log 0.04 ≈ −3.2 < −2) and the temperature would grow without end; PEARL aims at −|A| on
    actions rescaled to [−1, 1]: the same policy's log-probability on ±0.1 bounds is its log-probability
    on ±1 bounds minus Σ log 0.1, and so is the target."""
    from lit_meta.algorithms.sac import SoftActorCritic, bounded_target_entropy

    narrow = PEARLAgent(2, 2, -0.1, 0.1, 3, [8], [8])
    assert narrow.sac.target_entropy == pytest.approx(-2 + 2 * math.log(0.1))
    assert math.log(0.2**2) < -2 and narrow.sac.target_entropy < math.log(0.2**2)  # reachable now
    torch.manual_seed(0)
    unit = SoftActorCritic(4, 2, -1.0, 1.0, [8])
    scaled = SoftActorCritic(4, 2, -0.1, 0.1, [8])
    scaled.policy.load_state_dict(unit.policy.state_dict())  # the same policy network; other bounds
    obs, noise = torch.randn(16, 4), torch.randn(16, 2)
    gap = scaled._sample(obs, noise)[1] - unit._sample(obs, noise)[1]
    expected = bounded_target_entropy(-0.1, 0.1, 2) - bounded_target_entropy(-1.0, 1.0, 2)
    torch.testing.assert_close(-gap, torch.full((16,), expected), rtol=0, atol=1e-5)
    assert bounded_target_entropy([-1.0, -2.0], [1.0, 2.0], 2) == pytest.approx(-2.0 + math.log(2.0))
    assert bounded_target_entropy(-1.0, 1.0, 3) == -3.0  # SAC's own default where bounds are ±1


def test_the_target_entropy_per_dimension_is_measured_on_rescaled_actions():
    """``target_entropy`` nats per dimension on actions rescaled to [−1, 1]: on ±0.1 moves the target on
    the environment's own actions is lower by log 0.1 per dimension, whatever the per-dimension value."""
    from lit_meta.algorithms.sac import bounded_target_entropy

    for per_dimension in (-1.0, 0.0, 0.5):
        agent = PEARLAgent(2, 2, -0.1, 0.1, 3, [8], [8], target_entropy=per_dimension)
        assert agent.sac.target_entropy == pytest.approx(2 * (per_dimension + math.log(0.1)))
    assert bounded_target_entropy([-1.0, -2.0], [1.0, 2.0], 2, 0.25) == pytest.approx(0.5 + math.log(2.0))
