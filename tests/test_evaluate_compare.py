"""``evaluate.py --compare``: several meta-RL checkpoints of one task family scored on the very same
held-out tasks and episode seeds, their curves side by side in one report and one plot; checkpoints that
cannot be compared are refused in one sentence."""

from pathlib import Path

import pytest
import torch

from lit_meta.evaluate import evaluate
from lit_meta.evaluate import main as evaluate_main

from .conftest import only_error_line, tiny_run, train

SETTINGS = {"tasks": 2, "steps": 1, "episodes": 2}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, str]:
    """Tiny runs: PEARL and MAML-RL on 2D navigation (MAML-RL with another data seed), RL² on bandits,
    MAML on sines."""
    folder = tmp_path_factory.mktemp("compared")
    runs = {
        "pearl": ("nav2d_pearl", 2, ()),
        "maml_rl": ("nav2d_maml_rl", 2, ("--data.init_args.seed", "5")),
        "rl2": ("bandits_rl2", 2, ()),
        "sine": ("sine_maml", 2, ()),
    }
    for key, (name, steps, extra) in runs.items():
        train(tiny_run(name, folder / key, steps, *extra))
    return {key: str(folder / key / "checkpoints" / "last.ckpt") for key in runs}


def test_compared_checkpoints_meet_the_same_tasks_and_episodes(checkpoints, tmp_path):
    pearl, maml_rl = checkpoints["pearl"], checkpoints["maml_rl"]
    report = evaluate(pearl, compare=[maml_rl], out=str(tmp_path / "both"), **SETTINGS)
    alone = evaluate(pearl, out=str(tmp_path / "pearl"), **SETTINGS)
    # MAML-RL alone, on PEARL's data seed (0) rather than its own (5): the held-out tasks and seeds of PEARL
    maml_alone = evaluate(maml_rl, seed=0, out=str(tmp_path / "maml"), **SETTINGS)
    maml_own_seed = evaluate(maml_rl, out=str(tmp_path / "maml-own"), **SETTINGS)

    assert report["per_task_final_return"] == alone["per_task_final_return"]
    compared = report["compared"][maml_rl]
    assert compared["learner"] == "MAML-RL" and compared["x_label"] == "policy-gradient adaptation steps"
    assert compared["per_task_final_return"] == maml_alone["per_task_final_return"]
    assert compared["per_task_final_return"] != maml_own_seed["per_task_final_return"]
    assert compared["return"] == maml_alone["return"]
    # each section states the environment steps its own checkpoint consumed in meta-training
    for path, section in ((pearl, report), (maml_rl, compared)):
        assert section["environment_steps"] == torch.load(path, weights_only=True)["environment_steps"] > 0
    assert report["environment_steps"] != compared["environment_steps"]
    plot = report["files"]["comparison_return_plot"]
    assert plot.endswith("-compared1-return.png") and Path(plot).read_bytes()[:4] == b"\x89PNG"
    assert report["files"]["json"].endswith("-compared1.json")


def test_the_command_line_prints_every_checkpoint(checkpoints, tmp_path, capsys):
    args = ["--ckpt", checkpoints["pearl"], "--compare", f"[{checkpoints['maml_rl']}]", "--tasks", "2"]
    assert evaluate_main([*args, "--steps", "1", "--episodes", "2", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    curves = ("PEARL:", "PEARL · SAC from scratch:", "MAML-RL · meta-learned init:", "MAML-RL · random init:")
    for name in (*curves, "compared checkpoint:", "comparison_return_plot"):
        assert name in printed, name


@pytest.mark.parametrize(
    ("main", "other", "message"),
    [
        ("pearl", "rl2", "compared checkpoints must share one"),
        ("pearl", "sine", "holds a FewShotModule, not a meta-RL model"),
        ("sine", "pearl", "--compare applies to meta-RL models"),
    ],
)
def test_checkpoints_that_cannot_be_compared_are_refused(checkpoints, main, other, message, tmp_path, capsys):
    out = tmp_path / "out"
    args = ["--ckpt", checkpoints[main], "--compare", f"[{checkpoints[other]}]", "--out", str(out)]
    assert evaluate_main([*args, "--tasks", "2"]) == 2
    assert message in only_error_line(capsys)
    assert not any(out.iterdir())
