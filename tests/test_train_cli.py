"""The training command line, end to end: every shipped config, exact resume, and bad input."""

import csv
import json
import math
from pathlib import Path

import pytest
import torch

from lit_meta.cli import main as train_main

from .conftest import QUIET, ROOT, run_script

CONFIGS = sorted((ROOT / "configs").glob("sine_*.yaml"))
TINY = [
    *QUIET,
    "--trainer.max_steps", "4",
    "--trainer.val_check_interval", "2",
    "--trainer.log_every_n_steps", "2",
    "--data.init_args.val_tasks", "4",
    "--data.init_args.test_tasks", "4",
    "--data.init_args.eval_batch_size", "2",
    "--data.init_args.meta_batch_size", "2",
]  # fmt: skip


def tiny_sine_run(run_dir: Path, algorithm: str, max_steps: int, *extra: str) -> list[str]:
    return [
        "fit",
        "--config", str(ROOT / f"configs/sine_{algorithm}.yaml"),
        "--run_dir", str(run_dir),
        *TINY,
        "--trainer.max_steps", str(max_steps),
        "--trainer.val_check_interval", "3",
        "--data.init_args.epoch_length", "5",
        "--model.init_args.lr_scheduler", "null",
        *extra,
    ]  # fmt: skip


@pytest.mark.parametrize("config", CONFIGS, ids=lambda path: path.stem)
def test_every_config_trains_and_evaluates(config, tmp_path):
    run_dir = tmp_path / config.stem
    trained = run_script("train.py", "fit", "--config", str(config), "--run_dir", str(run_dir), *TINY)
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert (run_dir / "checkpoints" / "best.ckpt").is_file()
    assert (run_dir / "config.yaml").is_file()
    assert list((run_dir / "tensorboard").glob("events.out.tfevents.*"))
    with open(run_dir / "csv" / "version_0" / "metrics.csv") as file:
        rows = list(csv.DictReader(file))
    assert len([row for row in rows if row["val/query_loss"]]) == 2  # validations after steps 2 and 4
    assert len([row for row in rows if row["train/query_loss"]]) == 2  # logged every 2 steps

    evaluated = run_script(
        "evaluate.py", "--ckpt", str(run_dir / "checkpoints" / "last.ckpt"), "--tasks", "6", "--steps", "3"
    )
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    report_path = next((run_dir / "evaluation").glob("*.json"))
    assert f"json: {report_path}" in evaluated.stdout
    report = json.loads(report_path.read_text())
    assert report["tasks"] == 6 and [r["step"] for r in report["query_loss"]] == [0, 1, 2, 3]
    assert all(math.isfinite(r["mean"]) and math.isfinite(r["ci"]) for r in report["query_loss"])
    for name in ("loss_plot", "figure1_plot"):
        assert Path(report["files"][name]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_validate_test_and_print_config_subcommands(tmp_path):
    run_dir = tmp_path / "run"
    assert train_main(tiny_sine_run(run_dir, "fomaml", 3)) == 0
    for subcommand in ("validate", "test"):
        args = [
            subcommand,
            "--config",
            str(ROOT / "configs/sine_fomaml.yaml"),
            "--run_dir",
            str(run_dir),
            *QUIET,
        ]
        assert train_main([*args, "--ckpt_path", "best"]) == 0
    printed = run_script(
        "train.py", "fit", "--config", str(ROOT / "configs/sine_maml.yaml"), "--print_config"
    )
    assert (
        printed.returncode == 0 and "algorithm: maml" in printed.stdout and "inner_lr: 0.01" in printed.stdout
    )


def final_state(run_dir: Path) -> dict:
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["global_step"] > 0
    return checkpoint


def assert_identical_runs(straight: Path, interrupted: Path, steps: int) -> None:
    """The last checkpoints of an uninterrupted and a resumed run hold the same weights, optimizer state
    and task-stream position, bit for bit."""
    expected, resumed = final_state(straight), final_state(interrupted)
    assert resumed["global_step"] == expected["global_step"] == steps
    for key, value in expected["state_dict"].items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(value, resumed["state_dict"][key]), key
    assert expected["optimizer_states"][0]["state"].keys() == resumed["optimizer_states"][0]["state"].keys()
    for key, state in expected["optimizer_states"][0]["state"].items():
        for name, tensor in state.items():
            assert torch.equal(
                torch.as_tensor(tensor), torch.as_tensor(resumed["optimizer_states"][0]["state"][key][name])
            )
    # the task stream continued where it stopped instead of replaying or skipping tasks
    stream = lambda c: c["loops"]["fit_loop"]["state_dict"]["combined_loader"][0]  # noqa: E731
    assert stream(resumed)["batches_drawn"] == stream(expected)["batches_drawn"] == steps
    assert torch.equal(stream(resumed)["generator"], stream(expected)["generator"])


@pytest.mark.parametrize(
    ("algorithm", "extra"),
    [
        ("reptile", ("--model.init_args.compile_inner_loop", "false")),
        ("maml", ()),
    ],
)
def test_resume_is_exact(algorithm, extra, tmp_path):
    """Stopped after N steps and resumed to 2N, a run ends bit for bit where an uninterrupted one does."""
    straight, interrupted = tmp_path / "straight", tmp_path / "interrupted"
    assert train_main(tiny_sine_run(straight, algorithm, 12, *extra)) == 0
    assert train_main(tiny_sine_run(interrupted, algorithm, 6, *extra)) == 0
    halfway = final_state(interrupted)
    assert halfway["global_step"] == 6
    assert train_main([*tiny_sine_run(interrupted, algorithm, 12, *extra), "--ckpt_path", "last"]) == 0

    assert_identical_runs(straight, interrupted, steps=12)
    # nothing of the first half was overwritten: its config is kept next to the resumed one
    assert len(list(interrupted.glob("config*.yaml"))) == 2
    assert len(list((interrupted / "csv").glob("version_*"))) == 2
