"""The few-shot LightningModule: it learns, it evaluates with gradients, it refuses bad settings."""

import copy
import io
import math
import random

import numpy as np
import pytest
import pytorch_lightning as pl
import torch

from lit_meta.datamodules import SineDataModule
from lit_meta.errors import ConfigError
from lit_meta.modules import FewShotModule
from lit_meta.seeding import capture_rng_states, restore_rng_states


def fit(module, datamodule, steps, **trainer_kwargs):
    trainer = pl.Trainer(
        max_steps=steps,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
        accelerator="cpu",
        **trainer_kwargs,
    )
    trainer.fit(module, datamodule)
    return trainer


@pytest.mark.parametrize(
    ("algorithm", "kwargs", "optimizer", "steps"),
    [
        ("reptile", {"inner_steps": 5, "inner_batch_size": 10}, lambda p: torch.optim.SGD(p, lr=0.5), 400),
        ("maml", {"inner_steps": 1}, lambda p: torch.optim.Adam(p, lr=3e-3), 150),
    ],
)
def test_short_training_lowers_post_adaptation_loss_on_held_out_tasks(algorithm, kwargs, optimizer, steps):
    pl.seed_everything(0)
    module = FewShotModule(
        algorithm=algorithm,
        hidden_sizes=[40, 40],
        inner_lr=0.02,
        eval_steps=10,
        optimizer=optimizer,
        **kwargs,
    )
    datamodule = SineDataModule(
        train_shots=20 if algorithm == "reptile" else 10, meta_batch_size=5, epoch_length=steps
    )
    test_tasks = list(datamodule.eval_tasks("test", 100, 50))
    untrained = module.adaptation_curves(test_tasks).final_loss.mean().item()
    fit(module, datamodule, steps)
    trained = module.adaptation_curves(test_tasks).final_loss.mean().item()
    assert trained < 0.6 * untrained, (untrained, trained)


def test_validation_adapts_with_gradients_even_under_inference_mode():
    pl.seed_everything(0)
    module = FewShotModule(algorithm="maml", inner_steps=1, eval_steps=3)
    trainer = pl.Trainer(
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        inference_mode=True,
        accelerator="cpu",
    )
    metrics = trainer.validate(module, SineDataModule(val_tasks=10, eval_batch_size=5), verbose=False)[0]
    assert metrics["val/query_loss"] < metrics["val/query_loss_before"]


def test_training_logs_query_loss_through_lightning():
    pl.seed_everything(0)
    module = FewShotModule(algorithm="fomaml", inner_steps=1)
    trainer = fit(module, SineDataModule(meta_batch_size=2, epoch_length=10), steps=10, log_every_n_steps=5)
    assert "train/query_loss" in trainer.callback_metrics
    assert trainer.global_step == 10


def test_reptile_scores_the_query_sets_only_on_logging_steps(monkeypatch):
    pl.seed_everything(0)
    module = FewShotModule(algorithm="reptile", inner_steps=2)
    requests = []
    meta_gradient = module.algorithm.meta_gradient

    def recording(tasks, score=True):
        requests.append(score)
        return meta_gradient(tasks, score=score)

    monkeypatch.setattr(module.algorithm, "meta_gradient", recording)
    trainer = fit(module, SineDataModule(meta_batch_size=2, epoch_length=10), steps=10, log_every_n_steps=5)
    assert requests == [False] * 4 + [True] + [False] * 4 + [True]  # the steps that end at 5 and 10
    assert math.isfinite(trainer.callback_metrics["train/query_loss"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"algorithm": "prototypes"}, "unknown algorithm 'prototypes'"),
        ({"algorithm": "protonet"}, "its loss must be cross_entropy"),
        ({"algorithm": "protonet", "loss": "cross_entropy", "eval_steps": 3}, "leave eval_steps unset"),
        ({"algorithm": "maml", "distance": "cosine"}, "distance applies to protonet only"),
        ({"inner_lr": 0.0}, "inner_lr must be positive"),
        ({"inner_steps": -2}, "inner_steps must be positive"),
        ({"eval_steps": 0}, "eval_steps must be positive"),
        ({"loss": "hinge"}, "unknown loss 'hinge'"),
        ({"network": "resnet"}, "unknown network 'resnet'"),
        ({"loss": "cross_entropy", "out_features": 1}, "at least 2 ways"),
        ({"optimizer": lambda p: torch.optim.SGD(p, lr=-1.0)}, "Invalid learning rate"),
        ({"optimizer": lambda p: torch.optim.SGD(p, lr=0.0)}, "meta learning rate must be positive"),
        ({"algorithm": "maml", "compile_inner_loop": True}, "compile_inner_loop applies to reptile only"),
        ({"vectorize_tasks": "gpu"}, "vectorize_tasks must be true, false or auto, got 'gpu'"),
    ],
)
def test_bad_settings_are_refused_in_one_sentence(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        FewShotModule(**kwargs)


def test_rng_states_survive_a_weights_only_round_trip():
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    buffer = io.BytesIO()
    torch.save({"rng_states": capture_rng_states()}, buffer)
    expected = (random.random(), np.random.rand(), torch.rand(1))
    random.seed(9), np.random.seed(9), torch.manual_seed(9)
    buffer.seek(0)
    restore_rng_states(torch.load(buffer, weights_only=True)["rng_states"])
    assert (random.random(), np.random.rand()) == expected[:2]
    assert torch.equal(torch.rand(1), expected[2])


def test_adaptation_changes_neither_the_meta_parameters_nor_the_training_generator():
    module = FewShotModule(algorithm="reptile", inner_steps=3, inner_batch_size=4)
    before = copy.deepcopy(module.state_dict())
    module.adaptation_curves(list(SineDataModule(val_tasks=5).val_dataloader()), steps=5)
    after = module.state_dict()
    assert before.keys() == after.keys()
    for key in before:
        if key.endswith("_extra_state"):
            assert torch.equal(before[key]["generator"], after[key]["generator"])
        else:
            assert torch.equal(before[key], after[key]), key


def test_gradient_clipping_bounds_the_meta_update():
    pl.seed_everything(0)
    kwargs = {"algorithm": "maml", "inner_steps": 1, "optimizer": lambda p: torch.optim.SGD(p, lr=1.0)}
    clipped = FewShotModule(gradient_clip_val=0.01, **kwargs)
    before = torch.cat([p.detach().flatten().clone() for p in clipped.parameters()])
    fit(clipped, SineDataModule(meta_batch_size=4, epoch_length=1), steps=1)
    after = torch.cat([p.detach().flatten() for p in clipped.parameters()])
    # with SGD at rate 1 the update is the (clipped) meta-gradient itself
    assert (after - before).norm().item() == pytest.approx(0.01, rel=1e-4)


def test_the_outer_learning_rate_follows_its_schedule():
    """ε annealed linearly to 0 over the run, as in the Reptile paper."""
    pl.seed_everything(0)
    module = FewShotModule(
        algorithm="reptile",
        optimizer=lambda p: torch.optim.SGD(p, lr=0.1),
        lr_scheduler=lambda o: torch.optim.lr_scheduler.LinearLR(o, 1.0, 0.0, total_iters=4),
    )
    seen = []
    module.on_train_batch_start = lambda *args: seen.append(module.optimizers().param_groups[0]["lr"])
    fit(module, SineDataModule(meta_batch_size=1, epoch_length=4), steps=4)
    assert seen == pytest.approx([0.1, 0.075, 0.05, 0.025])
    assert module.optimizers().param_groups[0]["lr"] == pytest.approx(0.0)


def test_checkpoints_carry_and_restore_the_global_generators():
    module = FewShotModule()
    checkpoint = {"hyper_parameters": dict(module.hparams)}
    torch.manual_seed(5)
    module.on_save_checkpoint(checkpoint)
    expected = torch.rand(3)
    torch.manual_seed(6)
    module.on_load_checkpoint(checkpoint)
    assert torch.equal(torch.rand(3), expected)
    assert checkpoint["lit_meta"]["module"] == "FewShotModule"


@pytest.mark.parametrize(("setting", "on_cpu"), [(False, False), (True, True), ("auto", False)])
def test_vectorize_tasks_auto_keeps_the_loop_on_the_cpu(setting, on_cpu):
    module = FewShotModule(algorithm="maml", vectorize_tasks=setting)
    module.on_fit_start()
    assert module.algorithm.vectorize is on_cpu


def test_compile_inner_loop_with_vectorize_tasks_compiles_the_vectorised_step_of_any_algorithm():
    module = FewShotModule(algorithm="maml", compile_inner_loop=True, vectorize_tasks=True)
    assert module.algorithm.vectorize and module.algorithm.compile_vectorized
