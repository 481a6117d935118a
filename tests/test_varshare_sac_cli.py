"""Multi-task VarShare SAC from the command line: the config trains, resumes exactly and evaluates on an
unseen task; bad input ends in one sentence."""

import json
import math
from pathlib import Path

import pytest
import torch

from lit_meta.cli import main as train_main

from .conftest import QUIET, ROOT, run_script

CONFIG = str(ROOT / "configs" / "pendulum_varshare_sac.yaml")


def tiny_run(run_dir: Path, steps: int, *extra: str) -> list[str]:
    return [
        "fit", "--config", CONFIG, "--run_dir", str(run_dir), *QUIET,
        "--trainer.max_steps", str(steps),
        "--trainer.val_check_interval", "2",
        "--data.init_args.train_tasks", "4",
        "--model.init_args.hidden_sizes", "[16]",
        "--model.init_args.batch_size", "32",
        "--model.init_args.learning_starts", "170",  # 30 updates per episode: a step of each task
        "--model.init_args.eval_steps", "1",
        *extra,
    ]  # fmt: skip


def test_the_config_trains_and_evaluates_on_an_unseen_task(tmp_path):
    run_dir = tmp_path / "run"
    trained = run_script("train.py", *tiny_run(run_dir, 4))
    assert trained.returncode == 0, trained.stderr[-3000:]
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["global_step"] == 4  # a step is an episode
    with open(next((run_dir / "csv").glob("version_*/metrics.csv"))) as file:
        header = file.readline()
    for metric in ("train/return/task_0", "train/return/task_3", "val/return", "val/return/task_3"):
        assert metric in header, metric
    evaluated = run_script(
        "evaluate.py", "--ckpt", str(run_dir / "checkpoints" / "last.ckpt"), "--tasks", "1", "--steps", "1"
    )
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
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
    straight, interrupted = tmp_path / "straight", tmp_path / "interrupted"
    epochs = lambda n: ["--trainer.max_epochs", str(n), "--trainer.limit_train_batches", "2", *extra]  # noqa: E731
    assert train_main([*tiny_run(straight, 4), *epochs(2)]) == 0
    assert train_main([*tiny_run(interrupted, 4), *epochs(1)]) == 0
    assert train_main([*tiny_run(interrupted, 4), *epochs(2), "--ckpt_path", "last"]) == 0
    expected = torch.load(straight / "checkpoints" / "last.ckpt", weights_only=True)
    resumed = torch.load(interrupted / "checkpoints" / "last.ckpt", weights_only=True)
    assert expected["global_step"] == resumed["global_step"] == 4
    for key, value in expected["state_dict"].items():
        assert torch.equal(value, resumed["state_dict"][key]), key


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (["--model.init_args.meta_update_alpha", "1.5"], "meta_update_alpha must be in (0, 1]"),
        (["--model.init_args.target_sync", "soft"], "unknown target sync 'soft'"),
        (["--data.init_args.train_tasks", "null"], "set data.train_tasks"),
        (["--trainer.devices", "2", "--trainer.strategy", "ddp_spawn"], "trains in a single process"),
    ],
)
def test_bad_input_ends_in_one_sentence(override, message, tmp_path, capsys):
    assert train_main([*tiny_run(tmp_path / "run", 1), *override]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], errors


def test_short_multi_task_run_improves_the_average_return():
    """Thirty episodes (15 per Pendulum variant): the deterministic return averaged over the training
    tasks rises far above its start (a random policy scores about −1,200; swinging up, −200)."""
    import numpy as np
    import pytorch_lightning as pl

    from lit_meta.datamodules import RLTaskDataModule
    from lit_meta.datamodules.streams import stream_seed
    from lit_meta.modules import VarShareSACModule

    pl.seed_everything(0)
    data = RLTaskDataModule(env="lit_meta/PendulumTask-v0", train_tasks=2, meta_batch_size=1, seed=0)
    module = VarShareSACModule(hidden_sizes=[64, 64], learning_starts=400, seed=0)
    module.check_data(data)

    def average_return() -> float:
        return float(np.mean([
            module.evaluate_return(module.agent, env, task_id, stream_seed(0, f"check-{task_id}"), 2)
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
