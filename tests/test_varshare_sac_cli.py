"""Multi-task VarShare SAC from the command line: the config trains, resumes exactly and evaluates on an
unseen task; bad input ends in one sentence."""

import json
import math
from pathlib import Path

import pytest

from .conftest import assert_resume_is_exact, refused, run_script, tiny_run, train_tiny_config


def test_the_config_trains_and_evaluates_on_an_unseen_task(tmp_path):
    run_dir = tmp_path / "run"
    checkpoint = train_tiny_config("pendulum_varshare_sac", run_dir)
    assert checkpoint["global_step"] == 4  # a step is an episode
    with open(next((run_dir / "csv").glob("version_*/metrics.csv"))) as file:
        header = file.readline()
    for metric in ("train/return/task_0", "train/return/task_3", "val/return", "val/return/task_3"):
        assert metric in header, metric
    evaluated = run_script(
        "evaluate.py", "--ckpt", str(run_dir / "checkpoints" / "last.ckpt"), "--tasks", "1", "--steps", "1"
    )
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    assert "nan" not in evaluated.stdout and "a single task: no confidence interval" in evaluated.stdout
    report = json.loads(next((run_dir / "evaluation").glob("*.json")).read_text())
    assert set(report["return"]) == {"VarShare SAC + Reptile", "SAC from scratch"}
    assert report["x_values"] == [0, 1]
    for curve in report["return"].values():  # one SAC episode on the unseen task changes the policy
        assert curve[0]["mean"] != curve[1]["mean"]
    assert all(math.isfinite(r["mean"]) for curve in report["return"].values() for r in curve)
    assert Path(report["files"]["return_plot"]).read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("extra", [[], ["--model.init_args.target_sync", "shift"]])
def test_resume_is_exact(extra, tmp_path):
    """Stopped after 2 of 4 episodes and resumed (weights, optimizers, per-task replay buffers and
    random generators restored), a run ends where an uninterrupted one does."""
    assert_resume_is_exact(lambda run: tiny_run("pendulum_varshare_sac", run, 4, *extra), tmp_path)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (["--model.init_args.meta_step_size", "1.5"], "meta_step_size must be in (0, 1]"),
        (["--model.init_args.target_sync", "soft"], "unknown target sync 'soft'"),
        (["--data.init_args.train_tasks", "null"], "set data.train_tasks"),
        (["--trainer.devices", "2", "--trainer.strategy", "ddp_spawn"], "trains in a single process"),
    ],
)
def test_bad_input_ends_in_one_sentence(override, message, tmp_path, capsys):
    assert message in refused([*tiny_run("pendulum_varshare_sac", tmp_path / "run", 1), *override], capsys)


def test_short_multi_task_run_improves_the_average_return():
    """Thirty episodes (15 per Pendulum variant): the deterministic return averaged over the training
    tasks rises far above its start (a random policy scores about −1,200; swinging up, −200)."""
    import numpy as np
    import pytorch_lightning as pl

    from lit_meta.algorithms.sac_episodes import evaluate_return
    from lit_meta.datamodules import RLTaskDataModule
    from lit_meta.modules import VarShareSACModule
    from lit_meta.seeding import derive_seed as stream_seed

    pl.seed_everything(0)
    data = RLTaskDataModule(env="lit_meta/PendulumTask-v0", train_tasks=2, meta_batch_size=1, seed=0)
    module = VarShareSACModule(hidden_sizes=[64, 64], learning_starts=400, seed=0)
    module.check_data(data)

    def average_return() -> float:
        return float(np.mean([
            evaluate_return(module.agent, env, task_id, stream_seed(0, f"check-{task_id}"), 2)
            for task_id, env in enumerate(module.envs)
        ]))  # fmt: skip

    start = average_return()
    trainer = pl.Trainer(
        max_steps=30, limit_val_batches=0, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, accelerator="cpu",
    )  # fmt: skip
    trainer.fit(module, data)
    end = average_return()
    assert end > start + 500 and end > -700, (start, end)
