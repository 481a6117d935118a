"""ANIL and Prototypical Networks inside the few-shot module: they learn on real Omniglot, report the
metrics that apply to them, and train "higher way" than they test where the algorithm allows it."""

import pytest
import pytorch_lightning as pl
import torch

from lit_meta.datamodules import OmniglotDataModule
from lit_meta.errors import ConfigError
from lit_meta.modules import FewShotModule

from ..conftest import OMNIGLOT_ROOT, requires_omniglot
from .test_few_shot import fit

pytestmark = requires_omniglot
SMALL_CONV = {"network": "conv4", "in_features": 1, "hidden_sizes": [16, 16, 16, 16], "loss": "cross_entropy"}


def omniglot(cache, **kwargs) -> OmniglotDataModule:
    settings = {"ways": 5, "shots": 1, "queries": 3, "meta_batch_size": 4, "epoch_length": 1000} | kwargs
    return OmniglotDataModule(root=str(OMNIGLOT_ROOT), cache_dir=str(cache), **settings)


def held_out_accuracy(module, datamodule) -> float:
    tasks = list(datamodule.eval_tasks("test", 60, 20))
    return module.adaptation_curves(tasks).final_accuracy.mean().item()


@pytest.mark.parametrize(
    ("algorithm", "kwargs", "data", "steps"),
    [
        ("protonet", {}, {"train_ways": 20, "meta_batch_size": 1}, 40),
        ("anil", {"out_features": 5, "inner_lr": 0.5, "inner_steps": 1, "eval_steps": 3}, {}, 60),
    ],
)
def test_short_training_beats_the_untrained_network_on_held_out_alphabets(
    algorithm, kwargs, data, steps, omniglot_cache
):
    pl.seed_everything(0)
    module = FewShotModule(algorithm=algorithm, **SMALL_CONV, **kwargs)
    datamodule = omniglot(omniglot_cache, **data)
    module.check_data(datamodule)
    untrained = held_out_accuracy(module, datamodule)
    fit(module, datamodule, steps)
    trained = held_out_accuracy(module, datamodule)
    assert trained > untrained + 0.1 and trained > 0.5, (untrained, trained)


def test_protonet_adapts_without_steps_and_logs_no_before_metrics(omniglot_cache):
    module = FewShotModule(algorithm="protonet", **SMALL_CONV)
    assert module.eval_steps == 0 and module.hparams.out_features == 1  # unused: no classification layer
    assert not any(isinstance(layer, torch.nn.Linear) for layer in module.algorithm.learner.modules())
    assert set(module.metrics["val_metrics"]) == {"val/query_loss", "val/query_accuracy"}
    datamodule = omniglot(omniglot_cache, ways=3)
    curves = module.adaptation_curves(list(datamodule.eval_tasks("val", 4, 2)))
    assert curves.loss.shape == (4, 1) and curves.outputs[1].shape == (4, 9, 3)  # 3-way at test, no head


def test_anil_logs_accuracy_before_and_after_adaptation(omniglot_cache):
    module = FewShotModule(algorithm="anil", out_features=5, eval_steps=2, **SMALL_CONV)
    assert {"val/query_accuracy_before", "val/query_loss_before"} <= set(module.metrics["val_metrics"])
    curves = module.adaptation_curves(list(omniglot(omniglot_cache).eval_tasks("val", 4, 2)))
    assert curves.loss.shape == (4, 3)


def test_higher_way_training_is_for_prototypical_networks_only(omniglot_cache):
    datamodule = omniglot(omniglot_cache, train_ways=20)
    FewShotModule(algorithm="protonet", **SMALL_CONV).check_data(datamodule)
    batch = next(iter(datamodule.train_dataloader()))
    assert batch.support_y.max() == 19 and batch.query_x.shape[1] == 20 * 3
    with pytest.raises(ConfigError, match=r"data.train_ways \(20\) differs from data.ways \(5\)"):
        FewShotModule(algorithm="maml", out_features=5, **SMALL_CONV).check_data(datamodule)
