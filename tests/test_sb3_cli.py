"""Reptile over SB3 learners from the command line: every SB3 config trains, exports, resumes exactly
and evaluates; bad input ends in one sentence."""

import json
import math
from pathlib import Path

import pytest
import torch
from stable_baselines3 import PPO, SAC

from lit_meta.cli import main as train_main

from .conftest import QUIET, ROOT, run_script

CONFIGS = {"cartpole_sb3_reptile": PPO, "pendulum_sb3_reptile": SAC}
TINY = {
    "cartpole_sb3_reptile": ["--model.init_args.inner_timesteps", "128", "--model.init_args.eval_step_timesteps", "128"],
    "pendulum_sb3_reptile": ["--model.init_args.inner_updates", "20", "--model.init_args.eval_step_timesteps", "150"],
}  # fmt: skip


def tiny_run(name: str, run_dir: Path, steps: int, *extra: str) -> list[str]:
    return [
        "fit", "--config", str(ROOT / "configs" / f"{name}.yaml"), "--run_dir", str(run_dir), *QUIET,
        "--trainer.max_steps", str(steps),
        "--trainer.val_check_interval", "2",
        "--data.init_args.meta_batch_size", "2",
        "--data.init_args.val_tasks", "1",
        "--model.init_args.eval_steps", "1",
        "--model.init_args.eval_episodes", "1",
        *TINY[name], *extra,
    ]  # fmt: skip


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_every_sb3_config_trains_exports_and_evaluates(name, tmp_path):
    run_dir = tmp_path / name
    trained = run_script("train.py", *tiny_run(name, run_dir, 2))
    assert trained.returncode == 0, trained.stderr[-3000:]
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["global_step"] == 2
    with open(next((run_dir / "csv").glob("version_*/metrics.csv"))) as file:
        header = file.readline()
    assert "val/return" in header and "train/meta_step_size" in header

    exported = CONFIGS[name].load(run_dir / "sb3" / "meta_policy.zip", device="cpu")  # SB3's own format
    for key, value in exported.policy.state_dict().items():
        assert torch.equal(value, checkpoint["state_dict"][f"meta_policy.{key}"]), key

    evaluated = run_script(
        "evaluate.py", "--ckpt", str(run_dir / "checkpoints" / "last.ckpt"),
        "--tasks", "2", "--steps", "2", "--episodes", "1",
    )  # fmt: skip
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    report = json.loads(next((run_dir / "evaluation").glob("*.json")).read_text())
    assert set(report["return"]) == {"meta-learned init", "fresh init"}
    assert [r["step"] for r in report["return"]["fresh init"]] == [0, 1, 2]
    assert report["updates"][0] == 0 and report["updates"][1] < report["updates"][2]
    assert all(math.isfinite(r["mean"]) for curve in report["return"].values() for r in curve)
    assert Path(report["files"]["return_plot"]).read_bytes()[:4] == b"\x89PNG"
    assert "meta-learned init:" in evaluated.stdout and "fresh init:" in evaluated.stdout


def test_resume_is_exact(tmp_path):
    """Stopped after 2 meta-iterations and resumed to 4, a run ends where an uninterrupted one does."""
    name = "cartpole_sb3_reptile"
    straight, interrupted = tmp_path / "straight", tmp_path / "interrupted"
    extra = (
        "--data.init_args.revisit_prob", "0.5",  # the generator's own state matters too
        "--model.init_args.meta_step_size", "0.5",  # constant: an annealed one depends on max_steps
        "--model.init_args.meta_step_size_final", "null",
    )  # fmt: skip
    assert train_main(tiny_run(name, straight, 4, *extra)) == 0
    assert train_main(tiny_run(name, interrupted, 2, *extra)) == 0
    assert train_main([*tiny_run(name, interrupted, 4, *extra), "--ckpt_path", "last"]) == 0
    expected = torch.load(straight / "checkpoints" / "last.ckpt", weights_only=True)
    resumed = torch.load(interrupted / "checkpoints" / "last.ckpt", weights_only=True)
    assert expected["global_step"] == resumed["global_step"] == 4
    for key, value in expected["state_dict"].items():
        assert torch.equal(value, resumed["state_dict"][key]), key
    stream = lambda c: c["loops"]["fit_loop"]["state_dict"]["combined_loader"][0]  # noqa: E731
    assert stream(resumed)["batches_drawn"] == 4
    assert stream(resumed)["task_generator"] == stream(expected)["task_generator"]
    assert len(stream(resumed)["task_generator"]["history"]) < 8  # some draws were revisits


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (["--model.init_args.rl_algorithm", "PPO2"], "unknown rl_algorithm 'PPO2'"),
        (["--model.init_args.ignore_prefixes", "[log_std]"], "ignored prefix 'log_std' matches no parameter"),
        (["--data.init_args.revisit_policy", "greedy"], "unknown revisit policy 'greedy'"),
        (["--data.init_args.env", "lit_meta/Nope-v0"], "unknown task environment 'lit_meta/Nope-v0'"),
        (["--data.init_args.ranges", "{length: [0.5, 0.1]}"], "must have low <= high"),
        (
            ["--model.init_args.inner_timesteps", "null", "--model.init_args.inner_updates", "7"],
            "7 inner updates cannot be reached",
        ),
        (["--model.init_args.inner_updates", "64"], "either model.inner_timesteps or model.inner_updates"),
        (["--trainer.devices", "2", "--trainer.strategy", "ddp_spawn"], "trains in a single process"),
    ],
)
def test_bad_input_ends_in_one_sentence(override, message, tmp_path, capsys):
    assert train_main([*tiny_run("cartpole_sb3_reptile", tmp_path / "run", 1), *override]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], errors
