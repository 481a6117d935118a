"""The training command line, end to end: every shipped config, exact resume, and bad input."""

import csv
import json
import math
from pathlib import Path

import pytest

from lit_meta.cli import main as train_main

from .conftest import QUIET, ROOT, assert_resume_is_exact, run_script
from .reference_runs import SINE, assert_parameters_as_recorded, tiny_run_args

CONFIGS = sorted((ROOT / "configs").glob("sine_*.yaml"))
TINY = [*QUIET, *SINE]


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
    trained = run_script("train.py", *tiny_run_args(config.stem, run_dir))
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert_parameters_as_recorded(config.stem, run_dir / "checkpoints" / "last.ckpt")
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


@pytest.mark.parametrize(
    ("algorithm", "extra"),
    [
        ("reptile", ("--model.init_args.compile_inner_loop", "false")),
        ("maml", ()),
    ],
)
def test_resume_is_exact(algorithm, extra, tmp_path):
    """Stopped after N steps and resumed to 2N, a run ends bit for bit where an uninterrupted one does."""
    _, interrupted = assert_resume_is_exact(
        lambda run: tiny_sine_run(run, algorithm, 12, *extra), tmp_path, 6, stop_by="steps"
    )
    # nothing of the first half was overwritten: its config is kept next to the resumed one
    assert len(list(interrupted.glob("config*.yaml"))) == 2
    assert len(list((interrupted / "csv").glob("version_*"))) == 2
