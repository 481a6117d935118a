"""Checkpoints users have on disk keep working: the tiny runs' checkpoints written by an earlier commit
(tests/fixtures/checkpoints, one per module, and PEARL's from before its posterior_covariance; see
tests/reference_runs.py) load, resume and evaluate, with hyperparameters renamed or added since converted
on load."""

import shutil

import pytest
import torch

from lit_meta.checkpoints import (
    ADDED_HYPERPARAMETERS,
    CHECKPOINT_FORMAT,
    RENAMED_HYPERPARAMETERS,
    load_checkpoint,
    upgrade_checkpoint,
)
from lit_meta.cli import main as train_main
from lit_meta.evaluate import main as evaluate_main
from lit_meta.registry import rebuild

from .conftest import assert_same_state, only_error_line, train
from .reference_runs import LEGACY, LEGACY_CHECKPOINTS, tiny_run_args

EVALUATION = {
    "sine_maml": ["--tasks", "3", "--steps", "2"],
    "sine_reptile": ["--tasks", "3", "--steps", "2"],
    "nav2d_maml_rl": ["--tasks", "2", "--steps", "1", "--episodes", "2"],
    "bandits_rl2": ["--tasks", "2", "--episodes", "1"],
    "cartpole_sb3_reptile": ["--tasks", "1", "--steps", "1", "--episodes", "1"],
    "pendulum_varshare_sac": ["--tasks", "1", "--steps", "1"],
}


def assert_loads_resumes_and_evaluates(
    legacy, config: str, evaluation: list[str], tmp_path, *overrides: str
) -> dict:
    """``legacy`` rebuilds with its stored weights, resumes one more step of ``config``'s tiny run (with
    ``overrides``) in the current format, and evaluates; returns the resumed checkpoint."""
    stored = torch.load(legacy, weights_only=True)
    module, _ = rebuild(load_checkpoint(legacy), source=str(legacy))
    assert_same_state(stored["state_dict"], module.state_dict(), "state_dict")

    run_dir = tmp_path / config
    (run_dir / "checkpoints").mkdir(parents=True)
    shutil.copyfile(legacy, run_dir / "checkpoints" / "last.ckpt")
    steps = stored["global_step"]
    train(
        tiny_run_args(
            config, run_dir, *overrides, "--trainer.max_steps", str(steps + 1), "--ckpt_path", "last"
        )
    )
    resumed = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert resumed["global_step"] == steps + 1 and resumed["lit_meta"]["format"] == CHECKPOINT_FORMAT
    weights = lambda c: [v for v in c["state_dict"].values() if isinstance(v, torch.Tensor)]  # noqa: E731
    assert any(not torch.equal(a, b) for a, b in zip(weights(stored), weights(resumed), strict=True))

    assert evaluate_main(["--ckpt", str(legacy), "--out", str(tmp_path / "evaluation"), *evaluation]) == 0
    assert list((tmp_path / "evaluation").glob("*.json"))
    return resumed


@pytest.mark.parametrize("name", LEGACY)
def test_an_earlier_checkpoint_loads_resumes_and_evaluates(name, tmp_path):
    legacy = LEGACY_CHECKPOINTS / f"{name}.ckpt"
    assert (
        torch.load(legacy, weights_only=True)["lit_meta"]["format"] < CHECKPOINT_FORMAT
    )  # before the change
    assert_loads_resumes_and_evaluates(legacy, name, EVALUATION[name], tmp_path)


def test_a_pearl_checkpoint_from_before_full_covariances_loads_resumes_and_evaluates(tmp_path, capsys):
    """Written by commit ed10d5c, before ``posterior_covariance`` existed: it is the paper's diagonal. The
    config has since turned ``context_deviations`` on, so resuming the old run with it is refused in one
    sentence that says how to resume, and resumes so."""
    legacy = LEGACY_CHECKPOINTS / "nav2d_pearl_diagonal_only.ckpt"
    assert "posterior_covariance" not in torch.load(legacy, weights_only=True)["hyper_parameters"]
    refused_run = tmp_path / "refused" / "checkpoints"
    refused_run.mkdir(parents=True)
    shutil.copyfile(legacy, refused_run / "last.ckpt")
    assert train_main(tiny_run_args("nav2d_pearl", refused_run.parent, "--ckpt_path", "last")) == 2
    hint = "to resume it, pass --model.init_args.context_deviations false"
    assert hint in only_error_line(capsys)
    assert (refused_run / "last.ckpt").read_bytes() == legacy.read_bytes()  # nothing on disk is touched

    evaluation = ["--tasks", "2", "--steps", "2", "--episodes", "2"]
    resumed = assert_loads_resumes_and_evaluates(
        legacy, "nav2d_pearl", evaluation, tmp_path / "resumed", *hint.split(" ")[-2:]
    )
    assert resumed["hyper_parameters"]["posterior_covariance"] == "diagonal"
    assert resumed["hyper_parameters"]["encoder_objective"] == "critic"  # added later still: the paper's


def test_added_hyperparameters_are_given_their_earlier_value_once():
    for module, added in ADDED_HYPERPARAMETERS.items():
        for name, value in added.items():
            for stamp in ({"module": module, "format": 1}, {"module": module, "format": CHECKPOINT_FORMAT}):
                checkpoint = {"lit_meta": dict(stamp), "hyper_parameters": {"seed": 3}}
                upgraded = upgrade_checkpoint(upgrade_checkpoint(checkpoint))
                assert upgraded["hyper_parameters"] == {"seed": 3, **added}
                assert upgraded["hyper_parameters"][name] == value
                assert upgraded["lit_meta"]["format"] == CHECKPOINT_FORMAT
    stored = {"lit_meta": {"module": "PEARLModule", "format": CHECKPOINT_FORMAT},
              "hyper_parameters": {"posterior_covariance": "full"}}  # fmt: skip
    assert upgrade_checkpoint(stored)["hyper_parameters"]["posterior_covariance"] == "full"
    other = {"lit_meta": {"module": "MAMLRLModule", "format": CHECKPOINT_FORMAT}, "hyper_parameters": {}}
    assert upgrade_checkpoint(other)["hyper_parameters"] == {}


def test_renamed_hyperparameters_are_converted_once():
    for module, renamed in RENAMED_HYPERPARAMETERS.items():
        for old, new in renamed.items():
            checkpoint = {"lit_meta": {"module": module, "format": 1}, "hyper_parameters": {old: 7}}
            upgraded = upgrade_checkpoint(checkpoint)
            assert upgraded["hyper_parameters"] == {new: 7}
            assert upgraded["lit_meta"]["format"] == CHECKPOINT_FORMAT
    current = {
        "lit_meta": {"module": "MAMLRLModule", "format": CHECKPOINT_FORMAT},
        "hyper_parameters": {"clip": 1},
    }
    assert upgrade_checkpoint(current)["hyper_parameters"] == {"clip": 1}  # already current: untouched
