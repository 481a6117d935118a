"""ReptileMetaRL: the meta-update by hand for PPO and SAC, ignored prefixes, the optimizer form, the
learner hand-over, and saving."""

import copy
from functools import partial

import gymnasium as gym
import pytest
import torch
from stable_baselines3 import PPO, SAC
from stable_baselines3.common.utils import LinearSchedule

from lit_meta.envs import sample_task_env
from lit_meta.errors import ConfigError
from lit_meta.sb3 import BaseMetaAlgorithm, ReptileMetaRL, TaskGenerator, load_meta_weights

CARTPOLE = partial(sample_task_env, "lit_meta/CartPoleTask-v0")
PENDULUM = partial(sample_task_env, "lit_meta/PendulumTask-v0")
PPO_KWARGS = {"n_steps": 32, "batch_size": 16, "n_epochs": 1, "policy_kwargs": {"net_arch": [8]}}
SAC_KWARGS = {"learning_starts": 10, "batch_size": 8, "policy_kwargs": {"net_arch": [8]}}


def reptile(rl_algorithm, task_callable, kwargs, **options):
    generator = TaskGenerator(task_callable=task_callable, seed=0)
    defaults = {"meta_batch_size": 3, "inner_timesteps": 32, "seed": 1}
    return ReptileMetaRL(generator, rl_algorithm, copy.deepcopy(kwargs), **{**defaults, **options})


def trained_learners(algorithm, count=3):
    tasks = algorithm.sample_tasks(0)[:count]
    return [algorithm.adapt(env, seed=10 + i) for i, (env, _, _) in enumerate(tasks)]


def by_hand(meta_state, learners, step_size, names):
    """θ + ε · mean_i(θ_i − θ) for each named parameter, written out."""
    expected = {}
    for name in names:
        theta = meta_state[name]
        mean = sum(learner.policy.state_dict()[name] for learner in learners) / len(learners)
        expected[name] = theta + step_size * (mean - theta)
    return expected


@pytest.mark.parametrize(
    ("rl_algorithm", "task_callable", "kwargs"),
    [(PPO, CARTPOLE, PPO_KWARGS), (SAC, PENDULUM, SAC_KWARGS)],
    ids=["PPO", "SAC"],
)
def test_meta_update_is_the_reptile_interpolation_by_hand(rl_algorithm, task_callable, kwargs):
    algorithm = reptile(rl_algorithm, task_callable, kwargs, meta_step_size=0.3)
    learners = trained_learners(algorithm)
    before = copy.deepcopy(algorithm.policy.state_dict())
    names = algorithm.meta_parameter_names
    expected = by_hand(before, learners, 0.3, names)
    algorithm.meta_update(learners)
    after = algorithm.policy.state_dict()
    for name in names:
        torch.testing.assert_close(after[name], expected[name], rtol=1e-6, atol=1e-7)
    assert any(not torch.equal(before[name], after[name]) for name in names)
    if rl_algorithm is SAC:  # targets are not meta-learned: they are copied from the critics
        assert not any(name.startswith("critic_target") for name in names)
        for name, value in algorithm.policy.critic.state_dict().items():
            assert torch.equal(after[f"critic_target.{name}"], value)


@pytest.mark.parametrize(
    ("rl_algorithm", "task_callable", "kwargs", "ignored"),
    [
        (PPO, CARTPOLE, PPO_KWARGS, ("value_net", "mlp_extractor.value_net")),  # the value head
        (PPO, PENDULUM, PPO_KWARGS, ("log_std",)),  # a Gaussian policy's exploration noise
        (SAC, PENDULUM, SAC_KWARGS, ("critic.",)),  # SAC's critics (their targets follow them)
    ],
    ids=["PPO-value-head", "PPO-log_std", "SAC-critic"],
)
def test_ignored_prefixes_are_left_alone(rl_algorithm, task_callable, kwargs, ignored):
    algorithm = reptile(rl_algorithm, task_callable, kwargs, meta_step_size=0.5, ignore_prefixes=ignored)
    learners = trained_learners(algorithm, 2)
    for learner in learners:  # make sure the ignored parameters did move inside the tasks
        with torch.no_grad():
            for name, value in learner.policy.named_parameters():
                if name.startswith(ignored):
                    value.add_(1.0)
    before = copy.deepcopy(algorithm.policy.state_dict())
    algorithm.meta_update(learners)
    after = algorithm.policy.state_dict()
    for name in before:
        frozen = name.startswith((*ignored, "critic_target."))
        assert torch.equal(before[name], after[name]) == frozen, name


def test_optimizer_form_with_sgd_equals_the_direct_step():
    direct = reptile(PPO, CARTPOLE, PPO_KWARGS, meta_step_size=0.4)
    with_sgd = reptile(PPO, CARTPOLE, PPO_KWARGS, meta_step_size=0.4, meta_optimizer=torch.optim.SGD)
    with_sgd.policy.load_state_dict(direct.policy.state_dict())
    learners = trained_learners(direct)
    direct.meta_update(learners)
    with_sgd.meta_update(learners)
    for name, value in direct.policy.state_dict().items():
        torch.testing.assert_close(with_sgd.policy.state_dict()[name], value, rtol=1e-6, atol=1e-7)


def test_meta_step_size_anneals_over_learns_horizon():
    algorithm = reptile(PPO, CARTPOLE, PPO_KWARGS, meta_step_size=LinearSchedule(1.0, 0.0, 1.0))
    assert algorithm.current_meta_step_size() == 1.0  # no horizon yet: the start value
    algorithm.horizon, algorithm.meta_step = 8, 6
    assert algorithm.current_meta_step_size() == pytest.approx(0.25)


def test_learners_start_from_the_meta_parameters_with_fresh_optimizer_state():
    algorithm = reptile(PPO, CARTPOLE, PPO_KWARGS)
    learner = algorithm.adapt(gym.make("lit_meta/CartPoleTask-v0"), seed=3)  # trained: Adam has moments
    assert learner.policy.optimizer.state
    load_meta_weights(learner, algorithm.policy)
    assert not learner.policy.optimizer.state
    for name, value in algorithm.policy.state_dict().items():
        assert torch.equal(learner.policy.state_dict()[name], value)
    fresh = algorithm.adapt(gym.make("lit_meta/CartPoleTask-v0"), seed=3, timesteps=0, from_meta=False)
    assert not all(
        torch.equal(fresh.policy.state_dict()[n], v) for n, v in algorithm.policy.state_dict().items()
    )


def test_learn_predict_save_and_load_back(tmp_path):
    algorithm = reptile(
        PPO,
        CARTPOLE,
        PPO_KWARGS,
        meta_optimizer=torch.optim.Adam,
        meta_optimizer_kwargs={"betas": (0.0, 0.9)},
    )
    algorithm.learn(2, progress_bar=False)
    assert algorithm.meta_step == 2
    observation, _ = gym.make("lit_meta/CartPoleTask-v0").reset(seed=0)
    action, _ = algorithm.predict(observation, deterministic=True)
    assert algorithm.policy is algorithm.meta_model.policy and action in (0, 1)
    folder = algorithm.save_meta_algo(tmp_path / "meta")

    plain = PPO.load(folder / "meta_policy.zip", device="cpu")  # SB3's own format
    for name, value in algorithm.policy.state_dict().items():
        assert torch.equal(plain.policy.state_dict()[name], value)

    generator = TaskGenerator(task_callable=CARTPOLE, seed=0)
    loaded = ReptileMetaRL.load_meta_algo(folder, generator)  # every setting came back from the files
    assert loaded.meta_step == 2 and loaded.rl_algorithm is PPO
    assert loaded.rl_algo_kwargs == algorithm.rl_algo_kwargs
    assert isinstance(loaded.meta_optimizer, torch.optim.Adam)
    assert tuple(loaded.meta_optimizer.param_groups[0]["betas"]) == (0.0, 0.9)
    for name, value in algorithm.policy.state_dict().items():
        assert torch.equal(loaded.policy.state_dict()[name], value)
    saved, restored = (
        algorithm.meta_optimizer.state_dict()["state"],
        loaded.meta_optimizer.state_dict()["state"],
    )
    assert saved.keys() == restored.keys()
    assert all(torch.equal(saved[k]["exp_avg_sq"], restored[k]["exp_avg_sq"]) for k in saved)
    assert generator.state_dict()["history"] == algorithm.task_generator.state_dict()["history"]


def test_a_learn_from_saved_state_continues_like_an_uninterrupted_one(tmp_path):
    """An annealed ε, Adam's moments and the generator's revisits all carry over a save and a load."""

    def run():
        generator = TaskGenerator(task_callable=CARTPOLE, revisit_prob=0.5, seed=0)
        return ReptileMetaRL(
            generator, PPO, copy.deepcopy(PPO_KWARGS), meta_step_size=LinearSchedule(0.8, 0.1, 1.0),
            meta_optimizer=torch.optim.Adam, meta_batch_size=2, inner_timesteps=32, seed=1,
        )  # fmt: skip

    straight = run().learn(4, progress_bar=False)
    first = run()
    first.horizon = 4  # stopped half-way through a learn(4)
    first.train_step()
    first.train_step()
    first.save_meta_algo(tmp_path / "half")
    resumed = ReptileMetaRL.load_meta_algo(tmp_path / "half", TaskGenerator(task_callable=CARTPOLE, seed=0))
    resumed.learn(2, progress_bar=False)
    assert resumed.task_generator.state_dict() == straight.task_generator.state_dict()
    for name, value in straight.policy.state_dict().items():
        assert torch.equal(resumed.policy.state_dict()[name], value), name


class CartPoleOnly:
    """A user's own generator: only get_task and reset_history."""

    def __init__(self):
        self.calls = 0

    def get_task(self, meta_step, seed=None):
        self.calls += 1
        return gym.make("CartPole-v1"), {"meta_step": meta_step}, meta_step

    def reset_history(self):
        self.calls = 0


def test_a_users_own_generator_is_enough():
    generator = CartPoleOnly()
    algorithm = ReptileMetaRL(
        generator, PPO, copy.deepcopy(PPO_KWARGS), meta_batch_size=2, inner_timesteps=32
    )
    assert generator.calls == 0  # the template task was forgotten by reset_history
    algorithm.learn(1, progress_bar=False)
    assert generator.calls == 2


def test_new_first_order_methods_only_implement_meta_update():
    class LastTask(BaseMetaAlgorithm):
        def meta_update(self, task_models):
            self.policy.load_state_dict(task_models[-1].policy.state_dict())

    algorithm = LastTask(
        CartPoleOnly(), PPO, copy.deepcopy(PPO_KWARGS), meta_batch_size=1, inner_timesteps=32
    )
    before = copy.deepcopy(algorithm.policy.state_dict())
    algorithm.learn(1, progress_bar=False)
    assert any(not torch.equal(before[n], v) for n, v in algorithm.policy.state_dict().items())


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: reptile(torch.nn.Linear, CARTPOLE, {}), "must be a Stable-Baselines3 algorithm class"),
        (lambda: reptile("PPO2", CARTPOLE, {}), "unknown rl_algorithm 'PPO2'"),
        (
            lambda: reptile(PPO, CARTPOLE, PPO_KWARGS, ignore_prefixes=["log_std"]),
            "ignored prefix 'log_std' matches no parameter",
        ),
        (
            lambda: reptile(PPO, CARTPOLE, PPO_KWARGS, meta_step_size=1.5),
            r"meta_step_size must be in \(0, 1\]",
        ),
        (lambda: reptile(PPO, CARTPOLE, {"n_stepz": 3}), "PPO refused rl_algo_kwargs"),
        (lambda: ReptileMetaRL(object(), PPO), "must have a get_task"),
        (
            lambda: ReptileMetaRL(
                TaskGenerator(task_callable=lambda seed: (gym.make("CartPole-v1"), {})), PPO, {"seed": 3}
            ),
            "must not set 'seed'",
        ),
        (
            lambda: reptile(
                PPO, CARTPOLE, PPO_KWARGS, meta_optimizer=torch.optim.SGD([torch.zeros(1)], lr=1)
            ),
            "must be None or a torch optimizer class",
        ),
        (
            lambda: reptile(
                PPO, CARTPOLE, PPO_KWARGS, meta_optimizer=torch.optim.SGD, meta_optimizer_kwargs={"lr": 1}
            ),
            "learning rate is meta_step_size",
        ),
        (
            lambda: reptile(PPO, CARTPOLE, PPO_KWARGS, meta_optimizer_kwargs={"momentum": 0.9}),
            "meta_optimizer_kwargs need a meta_optimizer",
        ),
        (lambda: reptile(PPO, CARTPOLE, PPO_KWARGS, seed=-1), "seed must be a non-negative integer"),
    ],
)
def test_bad_input_is_refused_in_one_sentence(make, message):
    with pytest.raises(ConfigError, match=message):
        make()


def test_an_optimizer_over_other_parameters_is_refused_at_the_meta_update():
    algorithm = reptile(PPO, CARTPOLE, PPO_KWARGS)
    algorithm.meta_optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    with pytest.raises(ConfigError, match="must be built over meta_parameters"):
        algorithm.meta_update(trained_learners(algorithm, 1))


def test_a_generator_returning_the_wrong_tuple_is_refused():
    class Wrong(CartPoleOnly):
        def get_task(self, meta_step, seed=None):
            return gym.make("CartPole-v1"), {}

    with pytest.raises(ConfigError, match=r"must return \(env, info, origin_meta_step\)"):
        ReptileMetaRL(Wrong(), PPO, copy.deepcopy(PPO_KWARGS))
