"""Bad input ends with one sentence naming the problem and exit status 2, and nothing on disk is lost."""

import os
import random
from pathlib import Path

import pytest
import torch

from lit_meta.cli import main as train_main
from lit_meta.evaluate import main as evaluate_main

from .conftest import QUIET, ROOT, only_error_line, run_script
from .test_train_cli import tiny_sine_run


@pytest.fixture(scope="module")
def reptile_run(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("runs") / "reptile"
    assert (
        train_main(tiny_sine_run(run_dir, "reptile", 3, "--model.init_args.compile_inner_loop", "false")) == 0
    )
    return run_dir


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            ["--model.init_args.algorithm", "matching_networks"],
            "unknown algorithm 'matching_networks'; choose one of maml, fomaml",
        ),
        (["--model.init_args.inner_lr", "-0.5"], "inner_lr must be positive, got -0.5"),
        (["--model.init_args.inner_steps", "0"], "inner_steps must be positive, got 0"),
        (["--data.init_args.shots", "0"], "shots must be positive, got 0"),
        (["--model.init_args.optimizer.init_args.lr", "-1"], "Invalid learning rate: -1"),
        (["--model.init_args.optimizer.init_args.lr", "0"], "meta learning rate must be positive"),
        (["--model.init_args.loss", "cross_entropy"], "a classifier needs at least 2 ways"),
    ],
)
def test_bad_training_values(override, message, tmp_path, capsys):
    args = [
        "fit",
        "--config",
        str(ROOT / "configs/sine_maml.yaml"),
        "--run_dir",
        str(tmp_path / "run"),
        *QUIET,
    ]
    assert train_main([*args, *override]) == 2
    assert message in only_error_line(capsys)
    assert not (tmp_path / "run").exists()


def test_a_missing_config_file(capsys):
    assert train_main(["fit", "--config", "configs/no_such_experiment.yaml"]) == 2
    assert only_error_line(capsys).startswith("error: config: File does not exist:")


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        (
            ["--model.init_args.inner_lr", "fast"],
            "error: model.inner_lr: Expected a <class 'float'>. Got value: fast",
        ),
        (["--model.init_args.inner_stpes", "3"], "error: model: Option 'inner_stpes' is not accepted"),
        (
            ["--trainer.max_steps", "many"],
            "error: trainer.max_steps: Expected a <class 'int'>. Got value: many",
        ),
    ],
)
def test_values_of_the_wrong_type_are_named_in_one_line(override, expected, capsys):
    assert train_main(["fit", "--config", str(ROOT / "configs/sine_maml.yaml"), *override]) == 2
    assert only_error_line(capsys) == expected


def test_missing_and_corrupt_checkpoints_on_resume(tmp_path, capsys):
    args = ["fit", "--config", str(ROOT / "configs/sine_maml.yaml"), *QUIET]
    assert train_main([*args, "--run_dir", str(tmp_path / "new"), "--ckpt_path", "last"]) == 2
    assert "there is no last.ckpt to resume from in" in only_error_line(capsys)
    assert (
        train_main([*args, "--run_dir", str(tmp_path / "x"), "--ckpt_path", str(tmp_path / "gone.ckpt")]) == 2
    )
    assert "gone.ckpt does not exist" in only_error_line(capsys)
    corrupt = tmp_path / "corrupt.ckpt"
    for seed in range(5):  # random bytes break the unpickler in different places
        corrupt.write_bytes(random.Random(seed).randbytes(2048))
        assert train_main([*args, "--run_dir", str(tmp_path / "y"), "--ckpt_path", str(corrupt)]) == 2
        assert "corrupt.ckpt is corrupt" in only_error_line(capsys)


def test_resuming_a_checkpoint_of_another_algorithm_or_shape(reptile_run, tmp_path, capsys):
    last = str(reptile_run / "checkpoints" / "last.ckpt")
    maml = ["fit", "--config", str(ROOT / "configs/sine_maml.yaml"), "--run_dir", str(tmp_path / "a"), *QUIET]
    assert train_main([*maml, "--ckpt_path", last]) == 2
    assert (
        "was trained with algorithm='reptile', but this run is configured with algorithm='maml'"
        in only_error_line(capsys)
    )
    reptile = [
        "fit",
        "--config",
        str(ROOT / "configs/sine_reptile.yaml"),
        "--run_dir",
        str(tmp_path / "b"),
        *QUIET,
    ]
    assert train_main([*reptile, "--model.init_args.hidden_sizes", "[8]", "--ckpt_path", last]) == 2
    assert "was trained with hidden_sizes=[64, 64]" in only_error_line(capsys)


def test_a_fresh_run_never_overwrites_an_earlier_one(reptile_run, capsys):
    checkpoints = {path: path.read_bytes() for path in (reptile_run / "checkpoints").iterdir()}
    args = tiny_sine_run(reptile_run, "reptile", 3, "--model.init_args.compile_inner_loop", "false")
    assert train_main(args) == 2
    assert "already holds checkpoints of an earlier run; resume it with --ckpt_path last" in only_error_line(
        capsys
    )
    assert {path: path.read_bytes() for path in (reptile_run / "checkpoints").iterdir()} == checkpoints


class _RunsCode:
    """A pickle payload that would run a shell command when unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_crafted_checkpoint_is_refused_without_running_its_code(reptile_run, tmp_path, capsys):
    checkpoint = torch.load(reptile_run / "checkpoints" / "last.ckpt", weights_only=True)
    checkpoint["payload"] = _RunsCode(tmp_path / "pwned")
    crafted = tmp_path / "crafted.ckpt"
    torch.save(checkpoint, crafted)

    assert evaluate_main(["--ckpt", str(crafted)]) == 2
    assert "was refused: it stores Python objects other than tensors and plain data" in only_error_line(
        capsys
    )
    resume = [
        "fit",
        "--config",
        str(ROOT / "configs/sine_reptile.yaml"),
        "--run_dir",
        str(tmp_path / "r"),
        *QUIET,
    ]
    assert train_main([*resume, "--ckpt_path", str(crafted)]) == 2
    assert "was refused" in only_error_line(capsys)
    assert not (tmp_path / "pwned").exists()
    # control: an unsafe load of the same file does run the payload, so the refusal above is what saved us
    torch.load(crafted, weights_only=False)
    assert (tmp_path / "pwned").exists()


def test_evaluation_of_unusable_checkpoints(reptile_run, tmp_path, capsys):
    assert evaluate_main(["--ckpt", str(tmp_path / "missing.ckpt")]) == 2
    assert "missing.ckpt does not exist" in only_error_line(capsys)

    checkpoint = torch.load(reptile_run / "checkpoints" / "last.ckpt", weights_only=True)
    foreign = dict(checkpoint, lit_meta={"module": "SomeoneElsesModule", "format": 1})
    torch.save(foreign, tmp_path / "foreign.ckpt")
    assert evaluate_main(["--ckpt", str(tmp_path / "foreign.ckpt")]) == 2
    assert "holds a SomeoneElsesModule, which this version of lit-meta cannot evaluate" in only_error_line(
        capsys
    )

    unstamped = {key: value for key, value in checkpoint.items() if key != "lit_meta"}
    torch.save(unstamped, tmp_path / "unstamped.ckpt")
    assert evaluate_main(["--ckpt", str(tmp_path / "unstamped.ckpt")]) == 2
    assert "was not written by lit-meta" in only_error_line(capsys)

    mismatched = dict(checkpoint, hyper_parameters={**checkpoint["hyper_parameters"], "hidden_sizes": [8]})
    torch.save(mismatched, tmp_path / "mismatched.ckpt")
    assert evaluate_main(["--ckpt", str(tmp_path / "mismatched.ckpt")]) == 2
    assert "has weights that do not fit its own hyperparameters" in only_error_line(capsys)

    last = str(reptile_run / "checkpoints" / "last.ckpt")
    assert evaluate_main(["--ckpt", last, "--tasks", "0"]) == 2
    assert "tasks must be positive" in only_error_line(capsys)
    assert evaluate_main(["--ckpt", last, "--model_options", "{no_such_option: 1}"]) == 2
    error = only_error_line(capsys)
    assert "a FewShotModule has no option no_such_option; the options it can evaluate with are" in error
    assert "eval_steps" in error and "hidden_sizes" not in error
    assert evaluate_main(["--ckpt", last, "--model_options", "{hidden_sizes: [8]}"]) == 2
    assert f"hidden_sizes fixes what the weights in checkpoint {last} were trained for" in only_error_line(
        capsys
    )
    assert evaluate_main(["--ckpt", last, "--model_options", "{eval_steps: two}"]) == 2
    assert "the FewShotModule option eval_steps cannot be 'two'" in only_error_line(capsys)
    assert evaluate_main(["--ckpt", last, "--model_options", "{eval_steps: 0}"]) == 2
    assert "eval_steps must be positive" in only_error_line(capsys)
    if not torch.cuda.is_available():
        assert evaluate_main(["--ckpt", last, "--device", "cuda"]) == 2
        assert "no CUDA device is available" in only_error_line(capsys)


def test_bad_input_from_the_shell_is_one_line_and_exit_status_2(tmp_path):
    result = run_script("evaluate.py", "--ckpt", str(tmp_path / "nothing.ckpt"))
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: checkpoint {tmp_path / 'nothing.ckpt'} does not exist"
    result = run_script(
        "train.py",
        "fit",
        "--config",
        str(ROOT / "configs/sine_reptile.yaml"),
        "--model.init_args.inner_steps",
        "-3",
    )
    assert result.returncode == 2
    # the only line: Lightning's "Seed set to 0" is silenced
    assert result.stderr.strip() == "error: inner_steps must be positive, got -3"
