"""The mini-ImageNet, CIFAR-FS and FC100 configs end to end on tiny on-disk datasets in the layouts users
have (tests/image_fixtures.py): each trains to its recorded parameters, evaluates, and resumes."""

import json
import math

import pytest

from lit_meta.evaluate import main as evaluate_main

from .conftest import ROOT, assert_resume_is_exact, train
from .reference_runs import IMAGE_DATASETS, assert_parameters_as_recorded, tiny_run_args

CONFIGS = sorted(
    path.stem for path in (ROOT / "configs").glob("*.yaml") if path.stem.startswith(tuple(IMAGE_DATASETS))
)


@pytest.mark.parametrize("name", CONFIGS)
def test_every_image_config_trains_and_evaluates(name, tmp_path, image_data, capsys):
    run_dir = tmp_path / name
    train(tiny_run_args(name, run_dir, image_data=image_data))
    last = run_dir / "checkpoints" / "last.ckpt"
    assert_parameters_as_recorded(name, last)
    steps = [] if "protonet" in name else ["--steps", "2"]
    assert evaluate_main(["--ckpt", str(last), "--tasks", "3", *steps]) == 0
    report = json.loads(next((run_dir / "evaluation").glob("*.json")).read_text())
    assert report["ways"] == 5 and report["shots"] == int(name[-2])
    assert report["algorithm"] == name.split("_")[1]
    assert [r["step"] for r in report["query_accuracy"]] == ([0] if "protonet" in name else [0, 1, 2])
    assert all(0 <= r["mean"] <= 1 and math.isfinite(r["ci"]) for r in report["query_accuracy"])
    printed = capsys.readouterr().out
    assert ("with the support set's prototypes" in printed) == ("protonet" in name)


@pytest.mark.parametrize("name", ["miniimagenet_anil_5w1s", "miniimagenet_protonet_5w1s"])
def test_resume_is_exact(name, tmp_path, image_data):
    small = ["--model.init_args.hidden_sizes", "[8, 8, 8, 8]", "--data.init_args.epoch_length", "4"]
    assert_resume_is_exact(
        lambda run: tiny_run_args(name, run, "--trainer.max_steps", "6", *small, image_data=image_data),
        tmp_path,
        3,
        stop_by="steps",
    )
