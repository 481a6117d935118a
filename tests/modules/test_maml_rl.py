"""The MAML-RL LightningModule in-process: what every RL module refuses, reproducible adaptation curves
whatever the batching of held-out tasks, and checkpoints written before ``clip`` became ``clip_range``."""

import numpy as np
import pytest
import torch

from lit_meta.algorithms import MAML
from lit_meta.checkpoints import load_checkpoint, upgrade_checkpoint
from lit_meta.datamodules import RLTaskDataModule, SineDataModule
from lit_meta.errors import ConfigError
from lit_meta.modules import MAMLRLModule, RL2Module, SB3ReptileModule, VarShareSACModule
from lit_meta.registry import rebuild
from tests.modules.rl_curves import check_adaptation_curves
from tests.reference_runs import LEGACY_CHECKPOINTS

NAV2D = "lit_meta/Navigation2D-v0"


@pytest.mark.parametrize("module_class", [MAMLRLModule, RL2Module, SB3ReptileModule, VarShareSACModule])
def test_every_rl_module_refuses_a_datamodule_without_rl_tasks_in_one_sentence(module_class):
    module = module_class(seed=0, **({"inner_timesteps": 32} if module_class is SB3ReptileModule else {}))
    with pytest.raises(ConfigError) as error:
        module.check_data(SineDataModule())
    assert str(error.value) == f"{module_class.__name__} needs an RLTaskDataModule, got SineDataModule"


def bound_module(**kwargs) -> tuple[MAMLRLModule, RLTaskDataModule]:
    data = RLTaskDataModule(env=NAV2D, meta_batch_size=2, seed=0)
    module = MAMLRLModule(hidden_sizes=[8], seed=1, **kwargs)
    module.check_data(data)
    return module, data


def test_adaptation_curves_are_reproducible_and_independent_of_how_tasks_are_batched():
    tasks = RLTaskDataModule(env=NAV2D, seed=0).eval_tasks("test", 3)
    curves = check_adaptation_curves(
        lambda: bound_module()[0], tasks, 1, 3, ["meta-learned init", "random init"], width=2
    )
    # task i of a split has the seed it always had, derived from the data seed: another index, other episodes
    module, _ = bound_module()
    entropy = [0, *b"evaluation-test-2"]
    assert module.evaluation_seed("test", 2) == int(np.random.SeedSequence(entropy).generate_state(1)[0])
    moved = module.adaptation_curves(tasks[:1], 1, 3, "test", ("random init",), first_index=1)
    assert not torch.equal(moved["random init"][0], curves["random init"][0])


def test_the_learner_is_built_through_lit_metas_maml_and_the_random_init_follows_the_data_seed():
    module, data = bound_module()
    assert isinstance(module.algorithm, MAML) and module.policy is module.algorithm.learner
    tasks = data.eval_tasks("val", 2)
    first = module.adaptation_curves(tasks, 1, 2, "val", ("random init",))["random init"]
    data.hparams.seed = 5  # evaluate.py --seed: another random init, other episodes
    assert not torch.equal(
        first, module.adaptation_curves(tasks, 1, 2, "val", ("random init",))["random init"]
    )
    with pytest.raises(ConfigError, match="has no curve 'fresh init'"):
        module.adaptation_curves(tasks, 1, 2, "val", ("fresh init",))


def test_a_checkpoint_with_the_former_name_clip_loads_as_clip_range_and_evaluates():
    checkpoint = load_checkpoint(LEGACY_CHECKPOINTS / "nav2d_maml_rl.ckpt")
    assert (
        "clip" not in checkpoint["hyper_parameters"] and checkpoint["hyper_parameters"]["clip_range"] == 0.2
    )
    module, data = rebuild(checkpoint, source="the fixture")
    assert module.hparams.clip_range == 0.2
    for key, value in checkpoint["state_dict"].items():
        assert torch.equal(module.state_dict()[key], value), key
    curves = module.adaptation_curves(data.eval_tasks("test", 1), 1, 2, "test")
    assert all(torch.isfinite(curve).all() for curve in curves.values())
    legacy = {"lit_meta": {"module": "MAMLRLModule", "format": 1}, "hyper_parameters": {"clip": 0.3}}
    assert upgrade_checkpoint(legacy)["hyper_parameters"] == {"clip_range": 0.3}
