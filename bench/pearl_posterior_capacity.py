"""How well can PEARL's product of Gaussian factors locate a 2D-navigation goal from one episode of context?

Supervised, with no RL in the way: PEARL's :class:`~lit_meta.algorithms.pearl.ContextEncoder` reads the
(s, a, r, s′) transitions of one episode of ``lit_meta/Navigation2D-v0``, trained two ways:

- ``fixed``: z is the goal's embedding (g_x, g_y, g_x² + g_y²), the encoder maximises its likelihood under
  the posterior. A distance-only reward makes each transition a circle around s′, a line in that embedding
  (|g|² − 2 s′·g = r² − |s′|²), which a full precision matrix can express and a diagonal one cannot.
- ``learned``: z is PEARL's 5-dimensional latent, free as in PEARL, and a small network reading the
  posterior mean is trained with the encoder to predict the goal (squared error): how much of the goal a
  posterior can carry to a policy that reads z, as PEARL's does.
- ``decoded``: the same z trained as PEARL's ``encoder_objective: reward`` trains it, with no goal in the
  loss: a reward decoder r̂(s, a, s′, z) predicts the (×100, the config's reward scale) rewards of another
  episode of the same goal (of the same episode when every goal is new), plus β·KL with β = 0.1; the goal
  is then read from the frozen posterior means by a read-out fitted afterwards on the training episodes.
  How much of the goal an objective that only knows the tasks' rewards puts into z.

The episodes are those of a policy that does not know the goal: it heads for a point of its own, uniform
in the goal square, at full speed with Gaussian noise (σ = 0.03), as PEARL's episode with z from the prior
does.

    OMP_NUM_THREADS=1 .venv/bin/python bench/pearl_posterior_capacity.py

Prints, for each way and kind of factor, the mean distance between the estimated goal and the goal on
2,000 new episodes; the result goes to bench/results/pearl_posterior_capacity<tag>.json. With
``--train_goals G`` the training episodes' goals come from G fixed goals, as PEARL's fixed training tasks
(the test episodes' goals are always new): how well an encoder trained on G tasks reads a goal it has not
seen.

    OMP_NUM_THREADS=1 .venv/bin/python bench/pearl_posterior_capacity.py --ways learned \
        --covariances diagonal --train_goals 40 --tag=-goals40

``--train_episodes`` sets how many distinct episodes the encoder learns from, and ``--batch`` / ``--lr`` /
``--updates`` how it is trained (PEARL's: 16 tasks per update at 3e-4), so that PEARL's own budget of
context episodes can be tried without the RL around it:

    OMP_NUM_THREADS=1 .venv/bin/python bench/pearl_posterior_capacity.py --ways learned \
        --covariances diagonal --train_goals 40 --train_episodes 240 --tag=-goals40-ep240

``--deviations`` gives the encoder PEARL's ``context_deviations`` (each transition's deviation from its
context's mean, :class:`~lit_meta.algorithms.pearl.ContextEncoder`). ``--episodes_from CKPT`` plays every
episode with a PEARL checkpoint's own policy, z from the prior and sampled actions, instead of the scripted
one: the episodes that fill that run's context buffers.
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from lit_meta.algorithms.pearl import (
    COVARIANCES,
    ContextEncoder,
    PEARLAgent,
    context_features,
    is_full_covariance,
    kl_to_standard_normal,
)
from lit_meta.checkpoints import load_checkpoint
from lit_meta.envs import make_task_env
from lit_meta.modules.pearl import append_to_context
from lit_meta.nn.mlp import MLP
from lit_meta.noise import silence_library_noise
from lit_meta.registry import rebuild

RESULTS = Path(__file__).resolve().parent / "results"
NAV2D_PEARL_YAML = RESULTS.parents[1] / "configs" / "nav2d_pearl.yaml"
NAV2D_PEARL = yaml.safe_load(NAV2D_PEARL_YAML.read_text())["model"]["init_args"]
ENV = "lit_meta/Navigation2D-v0"
NOISE = 0.03
LATENT = NAV2D_PEARL["latent_size"]
"""PEARL's latent size (the paper's, read from configs/nav2d_pearl.yaml)."""


def episodes(
    count: int, rng: np.random.Generator, goal_set: np.ndarray | None = None, noise: float = NOISE
) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` episodes' transitions ``[count, 100, 7]`` (s, a, r, s′) and their goals ``[count, 2]``:
    each goal new, or drawn from ``goal_set`` ``[G, 2]`` (a fixed set of training tasks, as PEARL's)."""
    env = make_task_env(ENV)
    contexts, goals = [], []
    for _ in range(count):
        goal = rng.uniform(-0.5, 0.5, 2) if goal_set is None else goal_set[rng.integers(len(goal_set))]
        heading = rng.uniform(-0.5, 0.5, 2)
        env.unwrapped.set_task({"goal_x": goal[0], "goal_y": goal[1]})
        observation, _ = env.reset()
        rows, done = [], False
        while not done:
            action = np.clip(
                np.clip(heading - observation, -0.1, 0.1) + noise * rng.standard_normal(2), -0.1, 0.1
            )
            next_observation, reward, terminated, truncated, _ = env.step(action.astype(np.float32))
            rows.append([*observation, *action, reward, *next_observation])
            observation, done = next_observation, terminated or truncated
        rows += [rows[-1]] * (100 - len(rows))  # an episode that reached the goal: its last step repeated
        contexts.append(rows)
        goals.append(goal)
    return torch.tensor(np.array(contexts), dtype=torch.float32), torch.tensor(
        np.array(goals), dtype=torch.float32
    )


@torch.no_grad()
def policy_episodes(
    module, count: int, rng: np.random.Generator, goal_set: np.ndarray | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """As :func:`episodes`, but played by a PEARL checkpoint's own policy with z from the prior and sampled
    actions: the episodes that fill its context buffers in training (``--episodes_from``)."""
    agent, sampler = module.agent.eval(), module.sampler(1)
    contexts, goals = [], []
    for _ in range(count):
        goal = rng.uniform(-0.5, 0.5, 2) if goal_set is None else goal_set[rng.integers(len(goal_set))]
        task = {"goal_x": float(goal[0]), "goal_y": float(goal[1])}
        played = sampler.sample(
            agent.policy(agent.sample_latent(*agent.prior(1))), task, int(rng.integers(2**31))
        )
        steps = int(played.mask[:, 0].sum())
        rows = context_features(append_to_context(None, played))[0, :steps]
        contexts.append(torch.cat([rows, rows[-1:].expand(100 - steps, -1)]))
        goals.append(goal)
    return torch.stack(contexts).float(), torch.tensor(np.array(goals), dtype=torch.float32)


def embedding(goals: torch.Tensor) -> torch.Tensor:
    return torch.cat([goals, goals.pow(2).sum(-1, keepdim=True)], -1)


def log_likelihood(mean: torch.Tensor, variance: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    if is_full_covariance(mean, variance):
        return torch.distributions.MultivariateNormal(mean, covariance_matrix=variance).log_prob(target)
    return torch.distributions.Normal(mean, variance.sqrt()).log_prob(target).sum(-1)


REWARD_SCALE, KL_WEIGHT = NAV2D_PEARL["reward_scale"], NAV2D_PEARL["kl_weight"]
"""configs/nav2d_pearl.yaml's reward scale and β, read from it."""
DECODED_TRANSITIONS = 64
"""The decoded transitions per episode and update."""


def same_goal_partners(goals: torch.Tensor) -> list[torch.Tensor]:
    """For each episode, the indices of the episodes with the same goal (itself included)."""
    _, group = torch.unique(goals, dim=0, return_inverse=True)
    members = [torch.nonzero(group == g)[:, 0] for g in range(int(group.max()) + 1)]
    return [members[g] for g in group.tolist()]


def train_decoded(
    contexts: torch.Tensor,
    goals: torch.Tensor,
    updates: int,
    batch: int,
    lr: float,
    window: int | None = None,
    deviations: bool = False,
):
    """An encoder trained through a reward decoder alone (``decoded``), then a goal read-out of its frozen
    posterior means; returns the function from contexts to estimated goals. With ``window``, the contexts
    are read as PEARL reads its context buffers: ``window`` episodes at a time, the next ``window`` after
    ``updates`` × ``window`` / ``len(contexts)`` updates (the decoded episodes stay any of the goal's)."""
    torch.manual_seed(0)
    encoder = ContextEncoder(7, LATENT, (128, 128), "diagonal", deviations)
    decoder = MLP(6 + LATENT, 1, [128, 128])
    optimizer = torch.optim.Adam([*encoder.parameters(), *decoder.parameters()], lr=lr)
    partners = same_goal_partners(goals)
    block_updates = None if window is None else max(1, updates * window // len(contexts))
    for update in range(updates):
        if window is None:
            chosen = torch.randint(len(contexts), (batch,))
        else:
            start = (update // block_updates * window) % len(contexts)
            chosen = (start + torch.randint(window, (batch,))) % len(contexts)
        other = torch.stack([partners[i][torch.randint(len(partners[i]), ())] for i in chosen.tolist()])
        rows = contexts[other][:, torch.randperm(contexts.shape[1])[:DECODED_TRANSITIONS]]
        mean, variance = encoder(contexts[chosen])
        latent = PEARLAgent.sample_latent(mean, variance).float()
        latents = latent[:, None].expand(-1, rows.shape[1], -1)
        inputs = torch.cat([rows[..., :4], rows[..., 5:], latents], -1)
        predicted = decoder(inputs.reshape(-1, inputs.shape[-1]))[:, 0]
        loss = (predicted - REWARD_SCALE * rows[..., 4].reshape(-1)).pow(2).mean()
        loss = loss + KL_WEIGHT * kl_to_standard_normal(mean, variance).sum() / batch
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        means = torch.cat([encoder(part)[0].float() for part in contexts.split(1000)])
    readout = MLP(LATENT, 2, [128, 128])
    readout_optimizer = torch.optim.Adam(readout.parameters(), lr=1e-3)
    for _ in range(updates):
        chosen = torch.randint(len(contexts), (128,))
        loss = (readout(means[chosen]) - goals[chosen]).pow(2).sum(-1).mean()
        readout_optimizer.zero_grad()
        loss.backward()
        readout_optimizer.step()
    return lambda context: readout(encoder(context)[0].float())


def train(
    way: str,
    covariance: str,
    contexts: torch.Tensor,
    goals: torch.Tensor,
    updates: int,
    batch: int,
    lr: float,
    deviations: bool = False,
):
    """An encoder (and, for ``learned``, a goal read-out of its posterior mean) trained ``updates`` times;
    returns the function from contexts to estimated goals."""
    torch.manual_seed(0)
    encoder = ContextEncoder(7, 3 if way == "fixed" else LATENT, (128, 128), covariance, deviations)
    readout = MLP(LATENT, 2, [128, 128])
    parameters = [*encoder.parameters(), *(readout.parameters() if way == "learned" else ())]
    optimizer = torch.optim.Adam(parameters, lr=lr)
    if way == "fixed":
        estimate = lambda context: encoder(context)[0][:, :2].float()  # noqa: E731
    else:
        estimate = lambda context: readout(encoder(context)[0].float())  # noqa: E731
    for _ in range(updates):
        chosen = torch.randint(len(contexts), (batch,))
        if way == "fixed":
            loss = -log_likelihood(*encoder(contexts[chosen]), embedding(goals[chosen])).mean()
        else:
            loss = (estimate(contexts[chosen]) - goals[chosen]).pow(2).sum(-1).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return estimate


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--train_episodes", type=int, default=20000)
    parser.add_argument("--updates", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=128, help="episodes per update")
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam's learning rate")
    parser.add_argument(
        "--window", type=int, default=None,
        help="decoded: read the training episodes this many at a time, as PEARL's context buffers hold them",
    )  # fmt: skip
    parser.add_argument(
        "--train_goals", type=int, default=None,
        help="draw the training episodes' goals from this many fixed goals (default: each one new)",
    )  # fmt: skip
    parser.add_argument(
        "--ways", nargs="+", default=["fixed", "learned"], choices=["fixed", "learned", "decoded"]
    )
    parser.add_argument("--covariances", nargs="+", default=list(COVARIANCES), choices=COVARIANCES)
    parser.add_argument("--noise", type=float, default=NOISE, help="the action noise of every episode")
    parser.add_argument(
        "--deviations", action="store_true",
        help="the encoder also reads each transition's deviation from its context's mean",
    )  # fmt: skip
    parser.add_argument(
        "--episodes_from", default=None, metavar="CKPT",
        help="play every episode with this PEARL checkpoint's policy, z from the prior, sampled actions",
    )  # fmt: skip
    parser.add_argument("--tag", default="", help="suffix of the result file's name")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    started = time.perf_counter()
    goal_set = None if args.train_goals is None else rng.uniform(-0.5, 0.5, (args.train_goals, 2))
    if args.episodes_from is None:
        train_context, train_goals = episodes(args.train_episodes, rng, goal_set, args.noise)
        test_context, test_goals = episodes(2000, rng, noise=args.noise)
    else:
        silence_library_noise()
        module, _ = rebuild(load_checkpoint(args.episodes_from), source=f"checkpoint {args.episodes_from}")
        train_context, train_goals = policy_episodes(module, args.train_episodes, rng, goal_set)
        test_context, test_goals = policy_episodes(module, 2000, rng)
    print(f"{args.train_episodes + 2000} episodes in {time.perf_counter() - started:.0f} s", flush=True)
    centre_error = float(test_goals.norm(dim=-1).mean())
    result = {"train_episodes": args.train_episodes, "train_goals": args.train_goals,
              "updates": args.updates, "batch": args.batch, "lr": args.lr, "window": args.window,
              "noise": None if args.episodes_from else args.noise, "episodes_from": args.episodes_from,
              "deviations": args.deviations,
              "centre_guess_error": centre_error, "error": {}}  # fmt: skip
    for way in args.ways:
        for covariance in args.covariances if way != "decoded" else ["diagonal"]:
            training = (train_context, train_goals, args.updates, args.batch, args.lr)
            estimate = (
                train_decoded(*training, args.window, args.deviations)
                if way == "decoded"
                else train(way, covariance, *training, args.deviations)
            )
            with torch.no_grad():
                errors = (estimate(test_context) - test_goals).norm(dim=-1)
            result["error"].setdefault(way, {})[covariance] = {
                "mean": float(errors.mean()),
                "median": float(errors.median()),
            }
            mean, median = errors.mean(), errors.median()
            print(f"{way} z, {covariance} factors: goal error {mean:.3f} (median {median:.3f})", flush=True)
    print(f"guessing the centre of the square: {result['centre_guess_error']:.3f}")
    (RESULTS / f"pearl_posterior_capacity{args.tag}.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
