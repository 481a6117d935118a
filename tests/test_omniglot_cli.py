"""Omniglot end to end on the small subset: every shipped config, exact resume, learning, bad input."""

import json
import math
import re
from pathlib import Path

import pytest

from lit_meta.cli import main as train_main
from lit_meta.evaluate import evaluate

from .conftest import (
    OMNIGLOT_ROOT,
    QUIET,
    ROOT,
    assert_resume_is_exact,
    only_error_line,
    requires_omniglot,
    run_script,
)
from .reference_runs import OMNIGLOT, assert_parameters_as_recorded, tiny_run_args

pytestmark = requires_omniglot
CONFIGS = sorted((ROOT / "configs").glob("omniglot_*.yaml"))


def data_args(cache: Path) -> list[str]:
    return ["--data.init_args.root", str(OMNIGLOT_ROOT), "--data.init_args.cache_dir", str(cache)]


def tiny(cache: Path) -> list[str]:
    return [*QUIET, *data_args(cache), *OMNIGLOT]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda path: path.stem)
def test_every_omniglot_config_trains_and_evaluates(config, tmp_path, omniglot_cache):
    run_dir = tmp_path / config.stem
    trained = run_script("train.py", *tiny_run_args(config.stem, run_dir, omniglot_cache=omniglot_cache))
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert_parameters_as_recorded(config.stem, run_dir / "checkpoints" / "last.ckpt")
    steps = [] if "protonet" in config.stem else ["--steps", "2"]  # Prototypical Networks have no steps
    evaluated = run_script(
        "evaluate.py", "--ckpt", str(run_dir / "checkpoints" / "last.ckpt"), "--tasks", "3", *steps
    )
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    report = json.loads(next((run_dir / "evaluation").glob("*.json")).read_text())
    ways = report["ways"]
    assert ways == int(config.stem.split("_")[-1].split("w")[0])
    assert report["transductive"] is True and report["data"]["subset"] == "small"
    assert [r["step"] for r in report["query_accuracy"]] == ([0] if steps == [] else [0, 1, 2])
    assert all(0 <= r["mean"] <= 1 and math.isfinite(r["ci"]) for r in report["query_accuracy"])
    assert Path(report["files"]["accuracy_plot"]).read_bytes()[:4] == b"\x89PNG"


def small_maml_run(run_dir: Path, cache: Path, steps: int, *extra: str) -> list[str]:
    return [
        "fit", "--config", str(ROOT / "configs/omniglot_maml_5w1s.yaml"), "--run_dir", str(run_dir),
        *tiny(cache),
        "--trainer.max_steps", str(steps),
        "--trainer.val_check_interval", "3",
        "--data.init_args.epoch_length", "4",
        "--data.init_args.queries", "2",
        "--model.init_args.hidden_sizes", "[8, 8, 8, 8]",
        *extra,
    ]  # fmt: skip


def test_resume_is_exact_with_the_omniglot_stream(tmp_path, omniglot_cache):
    assert_resume_is_exact(lambda run: small_maml_run(run, omniglot_cache, 10), tmp_path, 5, stop_by="steps")


def test_short_maml_training_beats_chance_on_held_out_alphabets(tmp_path, omniglot_cache):
    """60 meta-iterations of MAML (second order, a conv4 of 32 filters, 5-way 1-shot), scored on 100
    tasks of the meta-test alphabets (Japanese katakana, Sanskrit) that meta-training never sees."""
    run_dir = tmp_path / "run"
    args = [
        "fit", "--config", str(ROOT / "configs/omniglot_maml_5w1s.yaml"), "--run_dir", str(run_dir),
        *QUIET, *data_args(omniglot_cache),
        "--trainer.max_steps", "60",
        "--trainer.limit_val_batches", "0",
        "--data.init_args.meta_batch_size", "8",
        "--data.init_args.queries", "5",
        "--model.init_args.hidden_sizes", "[32, 32, 32, 32]",
        "--model.init_args.optimizer.init_args.lr", "0.003",
    ]  # fmt: skip
    assert train_main(args) == 0
    report = evaluate(str(run_dir / "checkpoints" / "last.ckpt"), tasks=100, steps=3)
    before, after = report["query_accuracy"][0]["mean"], report["final"]["query_accuracy"]
    assert after["mean"] - after["ci"] > 0.2 + 0.2, report["final"]  # chance is 20%
    assert after["mean"] > before + 0.2


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--model.init_args.out_features", "4"], "the learner has 4 outputs .* but the tasks are 5-way"),
        (["--data.init_args.ways", "1"], "ways must be at least 2"),
        (["--data.init_args.shots", "0"], "shots must be positive"),
        (["--data.init_args.shots", "10", "--data.init_args.queries", "15"], "is more than the 20 images"),
    ],
)
def test_bad_omniglot_settings_end_in_one_sentence(extra, message, tmp_path, omniglot_cache, capsys):
    run_dir = tmp_path / "run"
    args = ["fit", "--config", str(ROOT / "configs/omniglot_maml_5w1s.yaml"), "--run_dir", str(run_dir),
            *tiny(omniglot_cache), *extra]  # fmt: skip
    assert train_main(args) == 2
    error = only_error_line(capsys)
    assert error.startswith("error: ")
    assert re.search(message, error), error
    assert not run_dir.exists()


def test_missing_data_names_where_to_put_it(tmp_path):
    result = run_script(
        "train.py", "fit", "--config", str(ROOT / "configs/omniglot_maml_5w1s.yaml"),
        "--run_dir", str(tmp_path / "run"), "--data.init_args.root", str(tmp_path),
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith(f"error: no Omniglot data in {tmp_path}: put ")
