"""Multi-task SAC over VarShare networks against SAC's equations written by hand (Haarnoja et al., 2018):
Polyak averaging, the critic target, the tanh-Gaussian log-probability (against torch.distributions),
the temperature's gradient, per-task temperatures, the Reptile meta-update and bad input."""

import math

import numpy as np
import pytest
import torch
from torch.distributions import AffineTransform, Normal, TanhTransform, TransformedDistribution

from lit_meta.algorithms.mt_sac import MultiTaskSAC
from lit_meta.errors import ConfigError

OBS, ACT = 3, 2
LOW, HIGH = [-2.0, 0.0], [2.0, 3.0]  # scales 2 and 1.5: the affine log-determinant is not 0


def make_agent(tasks=(0, 1), **kwargs) -> MultiTaskSAC:
    torch.manual_seed(0)
    kwargs = {"hidden_sizes": (8,), **kwargs}
    agent = MultiTaskSAC(OBS, ACT, LOW, HIGH, task_ids=tasks, **kwargs)
    agent.set_task(tasks[0])
    return agent


def randomise_(agent: MultiTaskSAC, seed: int = 1) -> MultiTaskSAC:
    """Random θ and μ everywhere, the targets different from their critics (as after training)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for network in agent.networks().values():
            for param in network.parameters():
                param.copy_(0.5 * torch.randn(param.shape, generator=generator))
    return agent


def make_batch(n: int = 5, seed: int = 2) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return {
        "obs": torch.randn(n, OBS, generator=generator),
        "action": torch.rand(n, ACT, generator=generator) * torch.tensor([4.0, 3.0])
        - torch.tensor([2.0, 0.0]),
        "reward": torch.randn(n, generator=generator),
        "next_obs": torch.randn(n, OBS, generator=generator),
        "terminated": torch.tensor([0.0, 1.0, 0.0, 0.0, 1.0])[:n],
    }


def optimizers(agent: MultiTaskSAC, cls=torch.optim.Adam, lr: float = 1e-2, **kwargs) -> dict:
    return {name: cls(params, lr=lr, **kwargs) for name, params in agent.parameter_groups().items()}


def reference_log_prob(agent: MultiTaskSAC, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
    mean, log_std = agent.policy(obs).chunk(2, dim=-1)
    base = Normal(mean, log_std.clamp(-20, 2).exp())
    transforms = [TanhTransform(), AffineTransform(agent.action_bias, agent.action_scale)]
    return TransformedDistribution(base, transforms).log_prob(action).sum(-1)


def snapshot(agent: MultiTaskSAC) -> dict[str, torch.Tensor]:
    return {name: value.detach().clone() for name, value in agent.state_dict().items()}


def test_tanh_gaussian_log_prob_matches_torch_distributions():
    agent = randomise_(make_agent()).double()  # float64 so that the reference's atanh(action) is exact
    obs = torch.randn(64, OBS, dtype=torch.float64)
    noise = torch.randn(64, ACT, dtype=torch.float64) * 1.5
    action, log_prob = agent._sample(obs, noise)
    mean, log_std = agent.policy(obs).chunk(2, dim=-1)
    expected_action = (
        torch.tanh(mean + log_std.clamp(-20, 2).exp() * noise) * agent.action_scale + agent.action_bias
    )
    torch.testing.assert_close(action, expected_action)
    torch.testing.assert_close(log_prob, reference_log_prob(agent, obs, action), atol=1e-6, rtol=1e-6)
    assert log_prob.min() < -5 and log_prob.max() > 0  # saturated and central samples both checked
    low, high = torch.tensor(LOW), torch.tensor(HIGH)
    assert bool(((action >= low) & (action <= high)).all())


def test_log_std_is_clamped_and_act_stays_in_bounds():
    agent = make_agent()
    with torch.no_grad():
        last = agent.policy.varshare_layers()[-1]
        last.theta.zero_()
        last.theta[ACT:, -1] = 50.0  # log σ bias far above the clamp
    obs = torch.randn(4, OBS)
    _, log_prob = agent._sample(obs, torch.zeros(4, ACT))
    # mean 0, σ = e², noise 0: Gaussian log-density at its mean minus the tanh/affine correction at 0
    expected = (-2.0 - 0.5 * math.log(2 * math.pi)) * ACT - agent.action_scale.log().sum()
    torch.testing.assert_close(log_prob, torch.full((4,), expected.item()))
    actions = agent.act(np.random.default_rng(0).normal(size=(100, OBS)))
    assert actions.shape == (100, ACT) and (actions >= LOW).all() and (actions <= HIGH).all()
    single = agent.act(np.zeros(OBS), deterministic=True)
    np.testing.assert_allclose(single, agent.action_bias.numpy(), atol=1e-6)  # tanh(0) rescaled


def test_critic_target_and_critic_loss_by_hand(monkeypatch):
    agent = randomise_(make_agent(gamma=0.9, init_temperature=0.3)).double()  # exact atanh in the reference
    batch = {key: value.double() for key, value in make_batch().items()}
    next_noise = torch.randn(5, ACT, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    original = agent._sample
    monkeypatch.setattr(
        agent, "_sample", lambda obs, noise=None: original(obs, next_noise if noise is None else noise)
    )
    with torch.no_grad():
        mean, log_std = agent.policy(batch["next_obs"]).chunk(2, dim=-1)
        pre_tanh = mean + log_std.clamp(-20, 2).exp() * next_noise
        next_action = torch.tanh(pre_tanh) * agent.action_scale + agent.action_bias
        next_log_prob = reference_log_prob(agent, batch["next_obs"], next_action)
        inputs = torch.cat([batch["next_obs"], next_action], dim=-1)
        q1_t, q2_t = agent.q1_target(inputs).squeeze(-1), agent.q2_target(inputs).squeeze(-1)
        assert not torch.allclose(q1_t, q2_t) and not torch.allclose(q1_t, agent.q1(inputs).squeeze(-1))
        soft = torch.min(q1_t, q2_t) - 0.3 * next_log_prob
        expected = batch["reward"] + 0.9 * (1 - batch["terminated"]) * soft
    y = agent.critic_target(batch)
    torch.testing.assert_close(y, expected, atol=1e-8, rtol=1e-8)
    torch.testing.assert_close(y[[1, 4]], batch["reward"][[1, 4]])  # terminated: no bootstrap
    critic_loss, *_ = agent.losses(batch)
    online = torch.cat([batch["obs"], batch["action"]], dim=-1)
    by_hand = sum(((net(online).squeeze(-1) - expected) ** 2).mean() for net in (agent.q1, agent.q2))
    torch.testing.assert_close(critic_loss, by_hand, atol=1e-6, rtol=1e-6)


def test_actor_and_alpha_losses_by_hand_and_the_mu_penalty(monkeypatch):
    agent = randomise_(make_agent(init_temperature=0.5, mu_penalty=0.1))
    batch = make_batch()
    noise = torch.randn(5, ACT, generator=torch.Generator().manual_seed(4))
    original = agent._sample
    monkeypatch.setattr(agent, "_sample", lambda obs, noise_=None: original(obs, noise))
    critic_loss, actor_loss, alpha_loss, stats = agent.losses(batch)
    with torch.no_grad():
        action, log_prob = original(batch["obs"], noise)
        inputs = torch.cat([batch["obs"], action], dim=-1)
        q = torch.min(agent.q1(inputs), agent.q2(inputs)).squeeze(-1)
        policy_mu = sum(layer.mus["0"].pow(2).sum() for layer in agent.policy.varshare_layers())
        critic_mu = sum(
            layer.mus["0"].pow(2).sum() for net in (agent.q1, agent.q2) for layer in net.varshare_layers()
        )
    torch.testing.assert_close(
        actor_loss, (0.5 * log_prob - q).mean() + 0.1 * policy_mu, atol=1e-5, rtol=1e-5
    )
    torch.testing.assert_close(alpha_loss, -(math.log(0.5) * (log_prob - ACT)).mean(), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(stats["critic_loss"], critic_loss.detach())
    no_penalty = make_agent(init_temperature=0.5)
    no_penalty.load_state_dict(agent.state_dict())
    monkeypatch.setattr(no_penalty, "_sample", lambda obs, noise_=None: original(obs, noise))
    plain_critic, plain_actor, *_ = no_penalty.losses(batch)
    torch.testing.assert_close(critic_loss - plain_critic, 0.1 * critic_mu, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(actor_loss - plain_actor, 0.1 * policy_mu, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(("target_entropy", "direction"), [(50.0, 1), (-50.0, -1)])
def test_temperature_rises_when_entropy_is_below_target_and_falls_above(target_entropy, direction):
    agent = randomise_(make_agent(target_entropy=target_entropy))
    before = agent.log_alpha["0"].item()
    batch = make_batch()
    _, _, alpha_loss, stats = agent.losses(batch)
    log_prob_mean = -stats["entropy"]
    (grad,) = torch.autograd.grad(alpha_loss, [agent.log_alpha["0"]])
    torch.testing.assert_close(grad, -(log_prob_mean + target_entropy))  # d/dlogα of −logα·(log π + H̄)
    agent.update(batch, optimizers(agent, torch.optim.SGD, lr=0.01))
    assert np.sign(agent.log_alpha["0"].item() - before) == direction


def test_polyak_update_by_hand_for_every_target_parameter():
    agent = randomise_(make_agent(tau=0.2))
    online = {f"q{k}": dict(getattr(agent, f"q{k}").named_parameters()) for k in (1, 2)}
    before = {
        f"q{k}": {n: p.clone() for n, p in getattr(agent, f"q{k}_target").named_parameters()} for k in (1, 2)
    }
    agent.polyak_update_()
    for k in ("q1", "q2"):
        target = dict(getattr(agent, f"{k}_target").named_parameters())
        assert target.keys() == online[k].keys() and any(".mus.1" in name for name in target)
        for name, param in target.items():
            torch.testing.assert_close(param, 0.8 * before[k][name] + 0.2 * online[k][name])
            assert not param.requires_grad


def test_update_steps_every_group_then_averages_the_targets():
    agent = randomise_(make_agent(tau=0.1))
    batch = make_batch()
    old = snapshot(agent)
    stats = agent.update(
        batch, optimizers(agent, torch.optim.AdamW, weight_decay=0.5)
    )  # decay: only if a grad
    new = snapshot(agent)
    assert set(stats) >= {"critic_loss", "actor_loss", "alpha_loss", "alpha", "entropy"}
    for prefix in ("policy.", "q1.", "q2."):  # θ and the active task's μ moved; task 1's μ did not
        assert not torch.equal(new[prefix + "0.theta"], old[prefix + "0.theta"])
        assert not torch.equal(new[prefix + "0.mus.0"], old[prefix + "0.mus.0"])
        assert torch.equal(new[prefix + "0.mus.1"], old[prefix + "0.mus.1"])
    for name in old:
        if name.startswith(("q1_target.", "q2_target.")):
            online = name.replace("_target", "")
            torch.testing.assert_close(new[name], 0.9 * old[name] + 0.1 * new[online])


def test_per_task_temperatures_are_independent_and_a_shared_one_is_single():
    agent = randomise_(make_agent(tasks=(0, 1), init_temperature=0.7))
    opts = optimizers(agent)
    for _ in range(3):
        agent.update(make_batch(), opts)
    assert agent.log_alpha["0"].item() != pytest.approx(math.log(0.7))
    assert agent.log_alpha["1"].item() == pytest.approx(math.log(0.7))
    agent.set_task(1)
    assert agent.log_temperature() is agent.log_alpha["1"]
    shared = make_agent(tasks=(0, 1), per_task_temperature=False)
    assert list(shared.log_alpha) == ["shared"]
    shared.set_task(9)
    assert list(shared.log_alpha) == ["shared"] and shared.log_temperature(0) is shared.log_temperature(9)


def test_a_new_task_starts_at_theta_everywhere_with_the_initial_temperature():
    agent = randomise_(make_agent(init_temperature=0.25))
    agent.set_task("new")
    for name, network in agent.networks().items():
        for layer in network.varshare_layers():
            assert torch.equal(layer.mus["new"], torch.zeros_like(layer.theta))
            torch.testing.assert_close(layer.effective_weights("new"), layer.theta)
            assert layer.active_task == "new"
            assert layer.mus["new"].requires_grad == (not name.endswith("_target"))
    assert agent.log_alpha["new"].item() == pytest.approx(math.log(0.25))


def outputs(agent: MultiTaskSAC, inputs: torch.Tensor) -> dict[str, torch.Tensor]:
    with torch.no_grad():
        return {
            "policy": agent.policy(inputs[:, :OBS]),
            **{name: getattr(agent, name)(inputs) for name in ("q1", "q2", "q1_target", "q2_target")},
        }


def test_meta_update_copy_keeps_the_task_and_copies_the_critics_into_the_targets():
    agent = randomise_(make_agent(tasks=(0, 1, 2)))
    agent.set_task(1)
    inputs = torch.randn(6, OBS + ACT)
    before = outputs(agent, inputs)
    theta = agent.policy.varshare_layers()[0].theta.clone()
    mu = agent.policy.varshare_layers()[0].mus["1"].clone()
    agent.meta_update(1, alpha=0.2, target_sync="copy")
    after = outputs(agent, inputs)
    for name in ("policy", "q1", "q2"):
        torch.testing.assert_close(after[name], before[name], atol=1e-5, rtol=0)
    torch.testing.assert_close(agent.policy.varshare_layers()[0].theta, theta + 0.2 * mu)
    for k in ("q1", "q2"):
        online, target = getattr(agent, k).state_dict(), getattr(agent, f"{k}_target").state_dict()
        assert online.keys() == target.keys()
        assert all(torch.equal(online[name], target[name]) for name in online)
        assert not any(p.requires_grad for p in getattr(agent, f"{k}_target").parameters())


def test_meta_update_shift_keeps_the_targets_outputs_for_the_task():
    agent = randomise_(make_agent(tasks=(0, 1)))
    inputs = torch.randn(6, OBS + ACT)
    before = outputs(agent, inputs)
    agent.meta_update(0, alpha=0.5, target_sync="shift")
    after = outputs(agent, inputs)
    for name in before:
        torch.testing.assert_close(after[name], before[name], atol=1e-5, rtol=0)
    assert not torch.allclose(after["q1_target"], after["q1"])  # not copied: Polyak averages kept
    agent.set_task(1)  # another task's target moves with its critic's θ shift
    moved = outputs(agent, inputs)
    agent.meta_update(0, alpha=1.0, target_sync="shift")
    assert not torch.allclose(outputs(agent, inputs)["q1_target"], moved["q1_target"])


def test_bad_input_is_refused_with_one_sentence():
    with pytest.raises(ConfigError, match="action_low must be below action_high"):
        MultiTaskSAC(OBS, ACT, [0.0, 1.0], [1.0, 1.0], task_ids=[0], hidden_sizes=(4,))
    with pytest.raises(ConfigError, match="action_low"):
        MultiTaskSAC(OBS, ACT, [0.0, 0.0, 0.0], 1.0, task_ids=[0], hidden_sizes=(4,))
    with pytest.raises(ConfigError, match="task_ids"):
        MultiTaskSAC(OBS, ACT, -1.0, 1.0, task_ids=[], hidden_sizes=(4,))
    agent = randomise_(make_agent())
    before = snapshot(agent)
    with pytest.raises(ConfigError, match="unknown target sync 'soft'"):
        agent.meta_update(0, target_sync="soft")
    for alpha in (0.0, -0.1, 1.5):
        with pytest.raises(ConfigError, match=r"alpha must be in \(0, 1\]"):
            agent.meta_update(0, alpha=alpha)
    with pytest.raises(ConfigError, match="never seen"):
        agent.meta_update(42)
    after = snapshot(agent)
    assert all(torch.equal(before[name], after[name]) for name in before)  # nothing moved
    with pytest.raises(ConfigError, match="lacks"):
        agent.losses({"obs": torch.zeros(1, OBS)})
    with pytest.raises(ConfigError, match="set_task"):
        MultiTaskSAC(OBS, ACT, -1.0, 1.0, task_ids=[0], hidden_sizes=(4,)).act(np.zeros(OBS))
