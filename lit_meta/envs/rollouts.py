"""Episodes of a policy on one task, collected from vectorised gymnasium environments as tensors.

:class:`EpisodeSampler` keeps one ``gymnasium.vector.SyncVectorEnv`` of ``num_envs`` copies of a task
family for a whole run; :meth:`EpisodeSampler.sample` sets every copy to one task, resets them with
consecutive seeds and runs the policy until each has finished exactly one episode.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor, nn

from lit_meta.errors import require_positive


@dataclass
class Episodes:
    """``E`` episodes of one task, time-major and padded to the longest: tensors ``[T, E, ...]``.

    ``mask`` is 1 on the steps an episode really took; ``terminated`` is 1 on a step that ended its
    episode in a terminal state (reaching a goal), as opposed to running out of time.
    """

    observations: Tensor
    actions: Tensor
    rewards: Tensor
    log_probs: Tensor
    mask: Tensor
    terminated: Tensor
    next_observations: Tensor | None = None
    """The observation each step led to (its episode's last observation on the step that ended it);
    ``None`` for episodes made elsewhere without them."""
    successes: Tensor | None = None
    """``[E]``: 1 for an episode in which some step reported ``info["success"]`` (Meta-World's flag);
    ``None`` when the task family reports no success."""

    @property
    def returns(self) -> Tensor:
        """Undiscounted return of each episode, ``[E]``."""
        return (self.rewards * self.mask).sum(0)

    @property
    def num_episodes(self) -> int:
        return self.mask.shape[1]

    def transitions(self) -> dict[str, Tensor]:
        """Every step really taken, episode after episode, as replay rows: ``obs [N, O]``, ``action [N, A]``,
        ``reward [N]``, ``next_obs [N, O]``, ``terminated [N]`` (needs :attr:`next_observations`)."""
        taken = self.mask.T.bool()
        rows = {
            "obs": self.observations, "action": self.actions, "reward": self.rewards,
            "next_obs": self.next_observations, "terminated": self.terminated,
        }  # fmt: skip
        return {name: value.transpose(0, 1)[taken] for name, value in rows.items()}

    def map(self, function: Callable[[Tensor], Tensor]) -> "Episodes":
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return Episodes(
            **{name: None if value is None else function(value) for name, value in values.items()}
        )


class EpisodeSampler:
    """Runs a policy on ``num_envs`` copies of a task family in lock-step, one episode per copy.

    :param make_env: builds one environment of the family (any task; :meth:`sample` sets the task).
    :param num_envs: episodes per call of :meth:`sample`.
    """

    def __init__(self, make_env: Callable[[], gym.Env], num_envs: int) -> None:
        require_positive("episodes per sample", num_envs)
        self.envs = gym.vector.SyncVectorEnv(
            [make_env for _ in range(num_envs)], autoreset_mode=gym.vector.AutoresetMode.SAME_STEP
        )
        self.num_envs = num_envs
        self.action_space = self.envs.single_action_space
        self.observation_space = self.envs.single_observation_space

    @torch.no_grad()
    def sample(self, policy: nn.Module, task: Mapping[str, float], seed: int) -> Episodes:
        """``num_envs`` episodes of ``policy`` on ``task``; environment ``i`` is reset with ``seed + i``.

        Actions are drawn from the policy's distribution with torch's global generator; a ``Box``
        action is clipped to the action space before it is applied (the log-probability is that of
        the unclipped sample, which is what the policy gradient needs).
        """
        self.envs.call("set_task", task)
        observation, _ = self.envs.reset(seed=[seed + i for i in range(self.num_envs)])
        running = np.ones(self.num_envs, dtype=bool)
        steps: dict[str, list] = {
            name: [] for name in ("obs", "action", "reward", "log_prob", "mask", "term", "next_obs")
        }
        box = isinstance(self.action_space, gym.spaces.Box)
        successes = SuccessTracker(self.num_envs)
        while running.any():
            obs = torch.as_tensor(observation, dtype=torch.float32)
            distribution = policy(obs)
            action = distribution.sample()
            steps["obs"].append(obs)
            steps["action"].append(action)
            steps["log_prob"].append(distribution.log_prob(action))
            env_action = action.numpy()
            if box:
                env_action = np.clip(env_action, self.action_space.low, self.action_space.high)
            observation, reward, terminated, truncated, info = self.envs.step(env_action)
            steps["next_obs"].append(_next_observations(observation, info))
            steps["reward"].append(torch.as_tensor(reward, dtype=torch.float32) * torch.as_tensor(running))
            steps["mask"].append(torch.as_tensor(running, dtype=torch.float32))
            steps["term"].append(torch.as_tensor(terminated & running, dtype=torch.float32))
            successes.update(info, running)
            running &= ~(terminated | truncated)
        return Episodes(
            observations=torch.stack(steps["obs"]),
            actions=torch.stack(steps["action"]),
            rewards=torch.stack(steps["reward"]),
            log_probs=torch.stack(steps["log_prob"]),
            mask=torch.stack(steps["mask"]),
            terminated=torch.stack(steps["term"]),
            next_observations=torch.stack(steps["next_obs"]),
            successes=successes.result(),
        )

    def close(self) -> None:
        self.envs.close()


class SuccessTracker:
    """Whether each of ``num_envs`` running episodes has succeeded yet, from the ``success`` flag of the
    step infos of a vector environment (on an episode's last step, autoreset moves it to ``final_info``)."""

    def __init__(self, num_envs: int) -> None:
        self.succeeded = np.zeros(num_envs, dtype=bool)
        self.reported = False

    def update(self, info: dict, running: np.ndarray) -> None:
        """Record one step's ``info``; only the environments whose episode is ``running`` count."""
        for step_info in (info, info.get("final_info", {})):
            if "success" in step_info:
                self.reported = True
                flags = np.asarray(step_info["success"], dtype=float) > 0
                self.succeeded |= flags & step_info.get("_success", True) & running

    def result(self) -> Tensor | None:
        """``[num_envs]`` 0/1 per episode, or ``None`` if no step reported success."""
        return torch.as_tensor(self.succeeded, dtype=torch.float32) if self.reported else None


def _next_observations(observation: np.ndarray, info: dict) -> Tensor:
    """What each environment's step led to: the observation, or, for an environment that has just been
    reset (its episode ended on this step), the final observation the vector environment put aside."""
    next_observation = np.array(observation, dtype=np.float32)
    for index in np.flatnonzero(info.get("_final_obs", ())):
        next_observation[index] = info["final_obs"][index]
    return torch.as_tensor(next_observation)


__all__ = ["EpisodeSampler", "Episodes", "SuccessTracker"]
