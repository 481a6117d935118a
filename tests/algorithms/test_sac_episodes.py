"""The multi-task SAC episode loop against the same loop written out by hand: random warm-up, one SAC
update per step, the Reptile meta-update's schedule, deterministic evaluation, and adapting to a new task
without touching the agent it starts from."""

import copy

import gymnasium as gym
import numpy as np
import pytest
import torch

from lit_meta.algorithms.mt_sac import MultiTaskSAC
from lit_meta.algorithms.replay import TaskReplayBuffers
from lit_meta.algorithms.sac_episodes import (
    UNSEEN_TASK,
    MetaUpdates,
    adapt_to_new_task,
    evaluate_return,
    run_episode,
)
from lit_meta.envs import make_task_env

HORIZON, BATCH, WARMUP = 25, 8, 10


def short_pendulum(task=None) -> gym.Env:
    return gym.wrappers.TimeLimit(make_task_env("lit_meta/PendulumTask-v0", task=task).unwrapped, HORIZON)


def make_agent(task_ids=(0, 1)) -> MultiTaskSAC:
    torch.manual_seed(0)
    return MultiTaskSAC(3, 1, -2.0, 2.0, list(task_ids), hidden_sizes=(8,))


def adam(agent: MultiTaskSAC) -> dict:
    return {name: torch.optim.Adam(params, lr=1e-2) for name, params in agent.parameter_groups().items()}


def by_hand(agent, replay, env, task_id, seed, optimizers, schedule: MetaUpdates, updates: int) -> float:
    """The episode as the VarShare specification's serial loop reads, written out."""
    agent.set_task(task_id)
    rng = np.random.default_rng([seed, 1])
    observation, _ = env.reset(seed=seed)
    total, updated = 0.0, False
    for _ in range(HORIZON):
        if replay.size(task_id) < WARMUP:
            action = rng.uniform(-2.0, 2.0, size=1).astype(np.float32)
        else:
            action = agent.act(observation)
        next_observation, reward, terminated, _, _ = env.step(action)
        replay.add(task_id, observation, action, reward, next_observation, terminated)
        total, observation = total + float(reward), next_observation
        if replay.size(task_id) >= max(BATCH, WARMUP):
            agent.update(replay.sample(task_id, BATCH, rng), optimizers)
            updates, updated = updates + 1, True
            if schedule.every is not None and updates % schedule.every == 0:
                agent.meta_update(task_id, schedule.step_size, schedule.target_sync)
    if schedule.every is None and updated:
        agent.meta_update(task_id, schedule.step_size, schedule.target_sync)
    return total


@pytest.mark.parametrize("schedule", [MetaUpdates(0.5), MetaUpdates(0.5, every=4, target_sync="shift")])
def test_a_training_episode_is_the_hand_written_loop(schedule):
    agents = [make_agent(), make_agent()]
    replays = [TaskReplayBuffers(3, 1, 100), TaskReplayBuffers(3, 1, 100)]
    optimizers = [adam(agent) for agent in agents]
    env = short_pendulum()
    torch.manual_seed(1)
    outcome = run_episode(
        agents[0], replays[0], env, 1, 7, optimizers[0], BATCH, WARMUP, meta_updates=schedule, updates=3
    )
    torch.manual_seed(1)
    expected = by_hand(agents[1], replays[1], env, 1, 7, optimizers[1], schedule, updates=3)
    assert outcome.episode_return == expected
    assert outcome.updates == 3 + HORIZON - WARMUP + 1 and "critic_loss" in outcome.stats
    for key, value in agents[1].state_dict().items():
        assert torch.equal(agents[0].state_dict()[key], value), key
    assert not torch.equal(
        agents[0].q1.varshare_layers()[0].theta, make_agent().q1.varshare_layers()[0].theta
    )


def test_a_meta_update_happens_only_with_a_step_size():
    def trained(schedule: MetaUpdates | None) -> dict:
        agent = make_agent()
        torch.manual_seed(1)
        run_episode(agent, TaskReplayBuffers(3, 1, 100), short_pendulum(), 0, 3, adam(agent), BATCH, WARMUP,
                    meta_updates=schedule)  # fmt: skip
        return agent.state_dict()

    without, no_step, with_step = trained(None), trained(MetaUpdates(None)), trained(MetaUpdates(0.5))
    assert all(torch.equal(value, no_step[key]) for key, value in without.items())
    assert not torch.equal(without["policy.0.theta"], with_step["policy.0.theta"])


def test_evaluation_is_deterministic_episodes_reset_with_consecutive_seeds():
    agent, env = make_agent(), short_pendulum()
    returns = []
    for index in range(2):
        observation, _ = env.reset(seed=11 + index)
        agent.set_task(0)
        total, done = 0.0, False
        while not done:
            observation, reward, terminated, truncated, _ = env.step(
                agent.act(observation, deterministic=True)
            )
            total, done = total + float(reward), terminated or truncated
        returns.append(total)
    assert evaluate_return(agent, env, 0, 11, 2) == float(np.mean(returns))


def test_adapting_to_a_new_task_leaves_the_agent_alone_and_repeats_exactly():
    agent = make_agent()
    with torch.no_grad():
        agent.log_alpha["0"].fill_(-1.0)
        agent.log_alpha["1"].fill_(-3.0)
    before = copy.deepcopy(agent.state_dict())

    def adapt() -> list[float]:
        torch.manual_seed(5)
        replay = TaskReplayBuffers(3, 1, 1000)
        factory = lambda params: torch.optim.Adam(params, lr=1e-2)  # noqa: E731
        return adapt_to_new_task(agent, short_pendulum(), replay, factory, 5, 3, 2, BATCH)

    row = adapt()
    assert len(row) == 4 and row == adapt()
    assert len(set(row[1:])) > 1  # it learns: the return changes from episode to episode
    assert agent.state_dict().keys() == before.keys() and UNSEEN_TASK not in agent.log_alpha
    for key, value in before.items():
        assert torch.equal(agent.state_dict()[key], value), key
