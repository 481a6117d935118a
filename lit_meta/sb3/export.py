"""The meta-initialisation in Stable-Baselines3's file format, and a loader that runs no code from it.

SB3's ``PPO.load`` / ``SAC.load`` unpickle the archive's ``data`` entry with cloudpickle, so a crafted
``meta_policy.zip`` runs whatever it was made to run. :func:`export_policy` writes SB3's own archive (so
``PPO.load`` still opens it, for files one trusts) plus a ``lit_meta_policy.json`` entry that describes
the policy as plain data: the algorithm's name, the observation and action spaces, the policy class's
alias and its keyword arguments. :func:`load_policy` rebuilds the policy from that description alone and
reads its weights with ``torch.load(weights_only=True)``; the ``data`` entry is never read.
"""

import io
import json
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.policies import BasePolicy

from lit_meta.errors import ConfigError, first_line, require
from lit_meta.files import atomic_write
from lit_meta.sb3.algorithms import SB3_ALGORITHMS, from_plain, to_plain

DESCRIPTION_ENTRY = "lit_meta_policy.json"
DESCRIPTION_FORMAT = 1
WEIGHTS_ENTRY = "policy.pth"


def export_policy(model: BaseAlgorithm, path: str | Path) -> Path:
    """Write ``model`` as SB3 does (``model.save``), atomically, with the plain-data description
    :func:`load_policy` needs. Models whose policy settings are not plain data are written without it
    (``load_policy`` then needs them given)."""
    path = Path(path)
    archive = io.BytesIO()
    model.save(archive)
    description = _describe(model)
    if description is not None:
        with zipfile.ZipFile(archive, mode="a") as bundle:
            bundle.writestr(DESCRIPTION_ENTRY, json.dumps(description))
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, lambda file: file.write(archive.getvalue()))


def load_policy(
    path: str | Path,
    algorithm: str | None = None,
    env=None,
    policy_kwargs: dict | None = None,
    device: str = "cpu",
) -> BasePolicy:
    """The SB3 policy saved in ``path`` (e.g. ``runs/<name>/sb3/meta_policy.zip``), rebuilt from plain
    data and loaded with ``weights_only=True``: nothing in the file is unpickled into code. Use it as
    ``policy.predict(observation, deterministic=True)``, or copy its ``state_dict()`` into a new SB3
    learner to train on.

    An archive that lit-meta did not write (or wrote before it recorded the description) needs
    ``algorithm`` (an SB3 algorithm's name), ``env`` (for its spaces) and, unless SB3's defaults were
    used, ``policy_kwargs``.
    """
    path = Path(path)
    require(path.is_file(), f"policy archive {path} does not exist")
    try:
        with zipfile.ZipFile(path) as bundle:
            damaged = bundle.testzip()
            names = set(bundle.namelist())
            description = json.loads(bundle.read(DESCRIPTION_ENTRY)) if DESCRIPTION_ENTRY in names else None
            require(WEIGHTS_ENTRY in names, f"{path} holds no policy weights ({WEIGHTS_ENTRY})")
            weights = bundle.read(WEIGHTS_ENTRY)
    except (zipfile.BadZipFile, ValueError, zlib.error, EOFError, OSError) as error:
        raise ConfigError(
            f"{path} is not a readable Stable-Baselines3 archive ({first_line(error)})"
        ) from None
    require(damaged is None, f"{path} is damaged: its entry {damaged} does not match its checksum")
    if description is None:
        require(
            algorithm is not None and env is not None,
            f"{path} has no lit-meta description of its policy; pass algorithm= and env= to load it",
        )
        description = {
            "algorithm": algorithm,
            "policy": "MlpPolicy",
            "observation_space": _space_to_plain(env.observation_space),
            "action_space": _space_to_plain(env.action_space),
            "policy_kwargs": {},
        }
    stored_kwargs = description.get("policy_kwargs")
    if policy_kwargs is None:
        require(
            stored_kwargs is not None,
            f"{path} could not record its policy_kwargs as plain data; pass them to load_policy",
        )
        policy_kwargs = from_plain(stored_kwargs)
    algorithm_class = SB3_ALGORITHMS.get(description.get("algorithm"))
    require(
        algorithm_class is not None,
        f"{path} names the algorithm {description.get('algorithm')!r}, "
        f"not one of {', '.join(SB3_ALGORITHMS)}",
    )
    policy_class = algorithm_class.policy_aliases.get(description.get("policy"))
    require(policy_class is not None, f"{path} names an unknown policy {description.get('policy')!r}")
    try:
        policy = policy_class(
            _space_from_plain(description["observation_space"]),
            _space_from_plain(description["action_space"]),
            lambda _: 0.0,  # the learning-rate schedule of an optimizer that is never stepped here
            **policy_kwargs,
        )
    except (TypeError, ValueError, KeyError, AssertionError) as error:
        raise ConfigError(f"{path} describes a policy that cannot be built ({first_line(error)})") from None
    try:
        state = torch.load(io.BytesIO(weights), map_location=device, weights_only=True)
        policy.load_state_dict(state)
    except Exception as error:
        raise ConfigError(f"{path} holds weights that do not fit its policy ({first_line(error)})") from None
    policy.set_training_mode(False)
    return policy.to(device)


def _describe(model: BaseAlgorithm) -> dict | None:
    """The plain-data description of ``model``'s policy, or ``None`` if some setting is not plain data."""
    name = type(model).__name__
    alias = next(
        (alias for alias, cls in model.policy_aliases.items() if cls is type(model.policy)),
        None,
    )
    if SB3_ALGORITHMS.get(name) is not type(model) or alias is None:
        return None
    # the optimizer of a loaded policy is never stepped here (A2C's default names RMSprop, not plain data)
    kwargs = {
        k: v for k, v in model.policy_kwargs.items() if k not in ("optimizer_class", "optimizer_kwargs")
    }
    if isinstance(model, OnPolicyAlgorithm):
        kwargs["use_sde"] = model.use_sde  # passed to the policy beside policy_kwargs
    try:
        return {
            "format": DESCRIPTION_FORMAT,
            "algorithm": name,
            "policy": alias,
            "observation_space": _space_to_plain(model.observation_space),
            "action_space": _space_to_plain(model.action_space),
            "policy_kwargs": to_plain(kwargs),
        }
    except (TypeError, ValueError):
        return None


def _space_to_plain(space: spaces.Space) -> dict[str, Any]:
    if isinstance(space, spaces.Box):
        return {
            "type": "Box",
            "low": space.low.tolist(),
            "high": space.high.tolist(),
            "dtype": str(space.dtype),
        }
    if isinstance(space, spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    if isinstance(space, spaces.MultiDiscrete):
        return {"type": "MultiDiscrete", "nvec": space.nvec.tolist()}
    if isinstance(space, spaces.MultiBinary):
        return {"type": "MultiBinary", "n": np.asarray(space.n).tolist()}
    raise ValueError(f"{type(space).__name__} spaces are not described as plain data")


def _space_from_plain(plain: dict[str, Any]) -> spaces.Space:
    kind = plain.get("type")
    if kind == "Box":
        dtype = np.dtype(plain["dtype"])
        return spaces.Box(
            np.array(plain["low"], dtype=dtype), np.array(plain["high"], dtype=dtype), dtype=dtype
        )
    if kind == "Discrete":
        return spaces.Discrete(plain["n"], start=plain.get("start", 0))
    if kind == "MultiDiscrete":
        return spaces.MultiDiscrete(plain["nvec"])
    if kind == "MultiBinary":
        return spaces.MultiBinary(plain["n"])
    raise ConfigError(f"unknown space type {kind!r} in a policy description")


__all__ = ["export_policy", "load_policy"]
