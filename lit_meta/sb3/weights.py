"""Moving the meta-parameters in and out of SB3 policies."""

from collections.abc import Sequence

import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from torch import Tensor, nn

from lit_meta.errors import ConfigError

TARGET_NETWORK_PREFIXES = ("critic_target.", "actor_target.", "q_net_target.")
"""Target networks of SAC / TD3 / DDPG / DQN policies. They are not meta-parameters: after each
meta-update they are copied from their online networks, so every task starts as a fresh SB3 learner
does, with targets equal to the online networks."""


def load_meta_weights(learner: BaseAlgorithm, meta_policy: nn.Module) -> None:
    """Copy the meta-policy's weights into ``learner``'s policy and clear the state of every torch
    optimizer the learner holds (Adam moments, step counts), so its inner loop starts from scratch.

    SAC's entropy coefficient and the replay buffer live outside the policy and are left as they are:
    the meta-algorithms hand each task a freshly built learner, whose are new.
    """
    learner.policy.load_state_dict(meta_policy.state_dict())
    for optimizer in optimizers_of(learner):
        optimizer.state.clear()


def optimizers_of(learner: BaseAlgorithm) -> list[torch.optim.Optimizer]:
    """The torch optimizers of an SB3 model (``policy.optimizer``, ``actor.optimizer``,
    ``critic.optimizer``, SAC's ``ent_coef_optimizer``)."""
    found = [
        module.optimizer
        for module in learner.policy.modules()
        if isinstance(getattr(module, "optimizer", None), torch.optim.Optimizer)
    ]
    entropy = getattr(learner, "ent_coef_optimizer", None)
    return [*found, entropy] if isinstance(entropy, torch.optim.Optimizer) else found


def meta_parameter_names(policy: nn.Module, ignore_prefixes: Sequence[str] = ()) -> list[str]:
    """Names of the policy's parameters that a meta-update changes: all but target networks and
    those starting with one of ``ignore_prefixes``. An ignored prefix that matches nothing is refused."""
    names = [name for name, _ in policy.named_parameters()]
    for prefix in ignore_prefixes:
        if not any(name.startswith(prefix) for name in names):
            roots = sorted({name.split(".")[0] for name in names})
            raise ConfigError(
                f"ignored prefix '{prefix}' matches no parameter of the {type(policy).__name__}; "
                f"its parameters start with {', '.join(roots)}"
            )
    skipped = (*TARGET_NETWORK_PREFIXES, *ignore_prefixes)
    return [name for name in names if not name.startswith(skipped)]


def parameters_by_name(policy: nn.Module, names: Sequence[str]) -> list[Tensor]:
    parameters = dict(policy.named_parameters())
    return [parameters[name] for name in names]


def sync_target_networks(policy: nn.Module) -> None:
    """Copy each online network of the policy into its target network (SAC, TD3, DDPG, DQN)."""
    for target_name in ("critic_target", "actor_target", "q_net_target"):
        target = getattr(policy, target_name, None)
        online = getattr(policy, target_name.removesuffix("_target"), None)
        if target is not None and online is not None:
            target.load_state_dict(online.state_dict())
