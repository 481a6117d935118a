"""Where a PEARL checkpoint on 2D navigation loses return: in the posterior or in the policy?

On ``--tasks`` held-out goals (the checkpoint's test split), with deterministic actions as ``evaluate.py``
plays them and ``--trials`` trials per goal:

- ``prior``: episode 1, z from the prior;
- ``posterior_1`` / ``posterior_2``: episode 2 / 3, z from the posterior of the episodes before;
- ``best_of_prior``: the best of ``--candidates`` episodes, each with its own z from the prior: what the
  policy earns when some z tells it the goal (an upper bound on what a good posterior could give it);
- ``stochastic_context``: episode 2 after an episode 1 played with sampled actions (wider context);
- ``linear_r2``: how much of the goal's coordinates a linear map of the posterior mean after episode 1
  explains (leave-one-goal-out R²);
- ``probe_error``: how much of the goal the posterior after one episode carries at all: a small network
  reading the posterior mean is trained to predict the goal on 3/4 of ``--probe_goals`` goals, and its
  mean distance from the goal on the other 1/4 is reported, for an episode 1 played with mean actions
  (``deterministic``, what ``evaluate.py`` plays by default) and with sampled actions (``sampled``, the
  policy whose episodes fill the context buffers in training); ``centre`` is the error of guessing the
  centre of the square. ``sampled_endpoint``: the same probe reading where the sampled episode ended
  (its last position, which the transitions show without any reward) instead of the goal: a posterior
  that carries the episode's own path better than the goal has learned to tell contexts apart, not to
  read the reward (``endpoint_mean_guess``: the error of guessing the training endpoints' mean);
  ``sampled_action_noise``: the standard deviation of the sampled episodes' actions minus the mean action
  at the same position and z (about the residuals' own mean, which the tanh squash may shift from 0;
  per action dimension, in the environment's units), the jitter that shows
  the goal's direction;
- ``--probe_only`` runs the probe alone.

    python train.py fit --config configs/nav2d_pearl.yaml --run_dir runs/nav2d_pearl --trainer.max_steps 25
    OMP_NUM_THREADS=1 .venv/bin/python bench/pearl_diagnosis.py --ckpt runs/nav2d_pearl/checkpoints/last.ckpt

Results go to bench/results/pearl_diagnosis<tag>.json.
"""

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from lit_meta.checkpoints import load_checkpoint
from lit_meta.evaluation.stats import mean_confidence_interval
from lit_meta.modules.pearl import append_to_context
from lit_meta.nn.mlp import MLP
from lit_meta.noise import silence_library_noise
from lit_meta.registry import rebuild

RESULTS = Path(__file__).resolve().parent / "results"


def leave_one_goal_out_r2(latents: np.ndarray, goals: np.ndarray, trials: int) -> list[float]:
    """R² per goal coordinate of a linear map (with bias) from posterior means to goals, each goal's
    trials predicted by the map fitted on the other goals."""
    inputs, predicted = np.c_[latents, np.ones(len(latents))], np.zeros_like(goals)
    groups = np.arange(len(latents)) // trials
    for goal in np.unique(groups):
        held = groups == goal
        weights, *_ = np.linalg.lstsq(inputs[~held], goals[~held], rcond=None)
        predicted[held] = inputs[held] @ weights
    residual = ((predicted - goals) ** 2).sum(0)
    return (1 - residual / ((goals - goals.mean(0)) ** 2).sum(0)).tolist()


@torch.no_grad()
def diagnose(module, tasks: list[dict], trials: int, candidates: int) -> dict:
    agent, returns, latents = module.agent.eval(), {}, []
    record = lambda key, value: returns.setdefault(key, []).append(value)  # noqa: E731
    for index, task in enumerate(tasks):
        seed = 10_000 * index
        sampler = module.sampler(trials)
        prior = agent.sample_latent(*agent.prior(trials))
        first = sampler.sample(agent.policy(prior, True), task, seed)
        record("prior", first.returns.mean().item())
        context = append_to_context(None, first)
        mean, variance = agent.posterior(context, context["mask"])
        latents.append(mean.numpy())
        for episode in (1, 2):
            played = sampler.sample(
                agent.policy(agent.sample_latent(mean, variance), True), task, seed + episode
            )
            record(f"posterior_{episode}", played.returns.mean().item())
            context = append_to_context(context, played)
            mean, variance = agent.posterior(context, context["mask"])
        many = agent.sample_latent(*agent.prior(candidates))
        best = module.sampler(candidates).sample(agent.policy(many, True), task, seed + 3)
        record("best_of_prior", best.returns.max().item())
        wide = sampler.sample(agent.policy(agent.sample_latent(*agent.prior(trials)), False), task, seed + 4)
        wide_context = append_to_context(None, wide)
        mean, variance = agent.posterior(wide_context, wide_context["mask"])
        played = sampler.sample(agent.policy(agent.sample_latent(mean, variance), True), task, seed + 5)
        record("stochastic_context", played.returns.mean().item())
    result = {}
    for key, values in returns.items():
        mean, half_width = mean_confidence_interval(torch.tensor(values))
        result[key] = {"mean": mean, "ci": half_width}
    goals = np.repeat([[task["goal_x"], task["goal_y"]] for task in tasks], trials, axis=0)
    result["linear_r2"] = leave_one_goal_out_r2(np.concatenate(latents), goals, trials)
    return result


def probe_split(count: int) -> int:
    """How many of ``count`` probe cases the probe trains on (the first 3/4); it is scored on the rest."""
    return 3 * count // 4


def probe_error(latents: torch.Tensor, goals: torch.Tensor, updates: int = 3000) -> float:
    """Mean distance from the goal of a two-layer network's estimate from ``latents``, trained on the first
    :func:`probe_split` goals and scored on the rest."""
    torch.manual_seed(0)
    split = probe_split(len(goals))
    scale = latents[:split].std(0) + 1e-6
    inputs = (latents - latents[:split].mean(0)) / scale
    network = MLP(inputs.shape[1], 2, [64, 64])
    optimizer = torch.optim.Adam(network.parameters(), lr=1e-3, weight_decay=1e-4)
    for _ in range(updates):
        loss = (network(inputs[:split]) - goals[:split]).pow(2).sum(-1).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        return float((network(inputs[split:]) - goals[split:]).norm(dim=-1).mean())


def goal_probe(module, tasks: list[dict]) -> dict:
    """``probe_error`` (module docstring) after an episode 1 with mean and with sampled actions."""
    agent, sampler, result = module.agent.eval(), module.sampler(1), {}
    goals = torch.tensor([[task["goal_x"], task["goal_y"]] for task in tasks], dtype=torch.float32)
    for actions in ("deterministic", "sampled"):
        latents, endpoints, noise = [], [], []
        with torch.no_grad():
            for index, task in enumerate(tasks):
                prior = agent.sample_latent(*agent.prior(1))
                episode = sampler.sample(agent.policy(prior, actions == "deterministic"), task, 7 * index)
                context = append_to_context(None, episode)
                latents.append(agent.posterior(context, context["mask"])[0].float()[0])
                steps = int(context["mask"][0].sum())
                endpoints.append(context["next_obs"][0, steps - 1])
                observations = context["obs"][0, :steps].float()
                mean_actions = agent.sac.action_tensor(
                    torch.cat([observations, prior.expand(steps, -1)], -1), True
                )
                noise.append(context["action"][0, :steps] - mean_actions)
        result[actions] = probe_error(torch.stack(latents), goals)
        if actions == "sampled":
            result["sampled_action_noise"] = float(torch.cat(noise).std(0).mean())
            endpoints = torch.stack(endpoints).float()
            result["sampled_endpoint"] = probe_error(torch.stack(latents), endpoints)
            split = probe_split(len(endpoints))
            guess = endpoints[:split].mean(0)
            result["endpoint_mean_guess"] = float((endpoints[split:] - guess).norm(dim=-1).mean())
    result["centre"] = float(goals[probe_split(len(goals)) :].norm(dim=-1).mean())
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ckpt", required=True)
    parser.add_argument("--tasks", type=int, default=40)
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--candidates", type=int, default=64)
    parser.add_argument("--probe_goals", type=int, default=600)
    parser.add_argument("--tag", default="")
    parser.add_argument("--probe_only", action="store_true", help="only the goal and endpoint probes")
    args = parser.parse_args()
    silence_library_noise()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    checkpoint = load_checkpoint(args.ckpt)
    iterations = checkpoint["global_step"]
    module, data = rebuild(checkpoint, source=f"checkpoint {args.ckpt}")
    tasks = data.eval_tasks("test", args.tasks)
    result = {} if args.probe_only else diagnose(module, tasks, args.trials, args.candidates)
    result["probe_error"] = goal_probe(module, data.eval_tasks("test", args.probe_goals))
    result = {"checkpoint": args.ckpt, "iterations": iterations, "tasks": args.tasks, **result}
    for key, value in result.items():
        estimate = isinstance(value, dict) and "ci" in value
        shown = f"{value['mean']:.1f} ± {value['ci']:.1f}" if estimate else value
        print(f"{key}: {shown}")
    (RESULTS / f"pearl_diagnosis{args.tag}.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
