"""Where a PEARL checkpoint on 2D navigation loses return: in the posterior or in the policy?

On ``--tasks`` held-out goals (the checkpoint's test split), with deterministic actions as ``evaluate.py``
plays them and ``--trials`` trials per goal:

- ``prior``: episode 1, z from the prior;
- ``posterior_1`` / ``posterior_2``: episode 2 / 3, z from the posterior of the episodes before;
- ``best_of_prior``: the best of ``--candidates`` episodes, each with its own z from the prior: what the
  policy earns when some z tells it the goal (an upper bound on what a good posterior could give it);
- ``stochastic_context``: episode 2 after an episode 1 played with sampled actions (wider context);
- ``linear_r2``: how much of the goal's coordinates a linear map of the posterior mean after episode 1
  explains (leave-one-goal-out R²).

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
from lit_meta.modules.pearl import _append_trials
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
        context = _append_trials(None, first)
        mean, variance = agent.posterior(context, context["mask"])
        latents.append(mean.numpy())
        for episode in (1, 2):
            played = sampler.sample(
                agent.policy(agent.sample_latent(mean, variance), True), task, seed + episode
            )
            record(f"posterior_{episode}", played.returns.mean().item())
            context = _append_trials(context, played)
            mean, variance = agent.posterior(context, context["mask"])
        many = agent.sample_latent(*agent.prior(candidates))
        best = module.sampler(candidates).sample(agent.policy(many, True), task, seed + 3)
        record("best_of_prior", best.returns.max().item())
        wide = sampler.sample(agent.policy(agent.sample_latent(*agent.prior(trials)), False), task, seed + 4)
        wide_context = _append_trials(None, wide)
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


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ckpt", required=True)
    parser.add_argument("--tasks", type=int, default=40)
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--candidates", type=int, default=64)
    parser.add_argument("--tag", default="")
    args = parser.parse_args()
    silence_library_noise()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    checkpoint = load_checkpoint(args.ckpt)
    iterations = checkpoint["global_step"]
    module, data = rebuild(checkpoint, source=f"checkpoint {args.ckpt}")
    result = diagnose(module, data.eval_tasks("test", args.tasks), args.trials, args.candidates)
    result = {"checkpoint": args.ckpt, "iterations": iterations, "tasks": args.tasks, **result}
    for key, value in result.items():
        shown = f"{value['mean']:.1f} ± {value['ci']:.1f}" if isinstance(value, dict) else value
        print(f"{key}: {shown}")
    (RESULTS / f"pearl_diagnosis{args.tag}.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
