"""Reptile over SB3 learners from the command line: every SB3 config trains, exports, resumes exactly
and evaluates; bad input ends in one sentence."""

import json
import math
from pathlib import Path

import pytest
import torch
from stable_baselines3 import PPO, SAC

from .conftest import assert_resume_is_exact, refused, run_script, tiny_run, train_tiny_config

CONFIGS = {"cartpole_sb3_reptile": PPO, "pendulum_sb3_reptile": SAC}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_every_sb3_config_trains_exports_and_evaluates(name, tmp_path):
    run_dir = tmp_path / name
    checkpoint = train_tiny_config(name, run_dir)
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
    assert report["x_values"][0] == 0 and report["x_values"][1] < report["x_values"][2]
    assert all(math.isfinite(r["mean"]) for curve in report["return"].values() for r in curve)
    assert Path(report["files"]["return_plot"]).read_bytes()[:4] == b"\x89PNG"
    assert "meta-learned init:" in evaluated.stdout and "fresh init:" in evaluated.stdout


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_resume_is_exact(name, tmp_path):
    """Stopped after 2 of 4 meta-iterations and resumed, a run ends where an uninterrupted one does, with
    ε annealed over the same 4 (both runs have max_steps 4; the first stops at the end of epoch 1)."""
    extra = ["--data.init_args.revisit_prob", "0.5"]  # the generator's own state matters too
    _, interrupted = assert_resume_is_exact(lambda run: tiny_run(name, run, 4, *extra), tmp_path)
    resumed = torch.load(interrupted / "checkpoints" / "last.ckpt", weights_only=True)
    stream = resumed["loops"]["fit_loop"]["state_dict"]["combined_loader"][0]
    assert stream["batches_drawn"] == 4
    assert len(stream["task_generator"]["history"]) < 8  # some draws were revisits


def test_a_training_step_is_the_reptile_step_with_annealed_epsilon(tmp_path):
    """One meta-iteration through Lightning (its SGD optimizer, ε from the schedule at step 0 of 4)
    equals ReptileMetaRL's direct step on the same tasks with the same learner seeds."""
    import copy

    import pytorch_lightning as pl

    from lit_meta.datamodules import RLTaskDataModule
    from lit_meta.modules import SB3ReptileModule
    from lit_meta.sb3 import ReptileMetaRL

    kwargs = {"n_steps": 32, "batch_size": 16, "n_epochs": 1, "policy_kwargs": {"net_arch": [8]}}
    data = RLTaskDataModule(meta_batch_size=2, val_tasks=1, seed=3)
    module = SB3ReptileModule(rl_algo_kwargs=copy.deepcopy(kwargs), inner_timesteps=32, meta_step_size=0.8,
                              meta_step_size_final=0.0, seed=5)  # fmt: skip
    module.check_data(data)
    direct = ReptileMetaRL(
        RLTaskDataModule(meta_batch_size=2, seed=3).task_generator, "PPO", copy.deepcopy(kwargs),
        meta_step_size=0.8, meta_batch_size=2, inner_timesteps=32, seed=5,
        template_env=data.template_env(),
    )  # fmt: skip
    for name, value in module.meta_policy.state_dict().items():
        assert torch.equal(direct.policy.state_dict()[name], value)  # the same seeded initialisation
    tasks = next(iter(RLTaskDataModule(meta_batch_size=2, seed=3).train_dataloader())).tasks
    direct.train_step(tasks, meta_step=0)
    trainer = pl.Trainer(max_steps=4, limit_train_batches=1, max_epochs=1, limit_val_batches=0,
                         default_root_dir=tmp_path,  # the SB3 export goes there, not into the checkout
                         logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, accelerator="cpu")  # fmt: skip
    trainer.fit(module, data)
    assert trainer.global_step == 1
    assert (tmp_path / "sb3" / "meta_policy.zip").is_file()
    for name, value in direct.policy.state_dict().items():
        torch.testing.assert_close(module.meta_policy.state_dict()[name], value, rtol=1e-6, atol=1e-7)


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
        (["--model.init_args.rl_algo_kwargs", "{device: cuda}"], "runs its SB3 learners on the CPU"),
        (
            ["--data.init_args.revisit_policy", "weighted"],
            "weighted revisit policy needs a fixed set of train_tasks",
        ),
    ],
)
def test_bad_input_ends_in_one_sentence(override, message, tmp_path, capsys):
    assert message in refused([*tiny_run("cartpole_sb3_reptile", tmp_path / "run", 1), *override], capsys)
