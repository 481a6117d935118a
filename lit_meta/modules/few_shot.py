"""Few-shot supervised meta-learning (regression or classification) as a LightningModule."""

from collections.abc import Iterable
from typing import Literal

import torch
from pytorch_lightning.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor, nn
from torchmetrics import MeanMetric, MetricCollection

from lit_meta.algorithms import HEADLESS, TASK_THREADED, MetaAlgorithm, build_algorithm
from lit_meta.errors import ConfigError, require, require_positive
from lit_meta.evaluation.adaptation import AdaptationCurves, adaptation_curves
from lit_meta.modules.base import MetaLearningModule, check_optimizer, scheduled_optimizer
from lit_meta.modules.distributed import average_gradients_across_processes_, require_data_parallel_strategy
from lit_meta.nn import build_network
from lit_meta.tasks import LOSS_FUNCTIONS, TaskBatch

SPLITS = ("train", "val", "test")
PROGRESS_BAR = ("train/query_loss", "train/query_accuracy", "val/query_loss", "val/query_accuracy")
PROGRESS_BAR += ("test/query_loss", "test/query_accuracy")


def _query_metrics(split: str, classifier: bool, before: bool) -> MetricCollection:
    """The query-set metrics of one split: mean loss over tasks after (and, held out, ``before``)
    adaptation, and for a ``classifier`` the accuracy over all query examples (the mean of their
    correctness; every task has as many queries, so it is also the mean of the per-task accuracies; the
    number of classes may differ between splits, as in Prototypical Networks' higher-way training)."""
    phases = ("", "_before") if split != "train" and before else ("",)
    metrics = {f"{split}/query_loss{phase}": MeanMetric() for phase in phases}
    if classifier:
        for phase in phases:
            metrics[f"{split}/query_accuracy{phase}"] = MeanMetric()
    return MetricCollection(metrics)


def _correct(output: Tensor, labels: Tensor) -> Tensor:
    """1.0 for each query example whose highest logit is its label, else 0.0."""
    return (output.argmax(-1) == labels).float()


class FewShotModule(MetaLearningModule):
    """Meta-trains a learner on batches of few-shot tasks with MAML, first-order MAML, Meta-SGD, Reptile,
    ANIL or Prototypical Networks.

    Each training step draws one meta-batch of tasks, asks the algorithm for the meta-gradient and lets
    the optimizer apply it (manual optimization: the meta-gradient is not one ``loss.backward()``).
    Validation and test adapt the learner to each held-out task's support set with gradients enabled
    and report the query loss (and accuracy for classification) before and after adaptation.

    Train with ``python train.py fit --config configs/sine_reptile.yaml``. With ``--trainer.strategy ddp``
    each process adapts its share of the meta-batch and the meta-gradients are averaged before the
    step (see :mod:`lit_meta.modules.distributed`; docs/distributed.md).

    :param algorithm: ``maml``, ``fomaml`` (first-order MAML), ``metasgd``, ``reptile``, ``anil``,
        ``foanil`` (first-order ANIL) or ``protonet`` (Prototypical Networks).
    :param network: the learner: ``mlp``, ``conv4`` (the MAML paper's 4-block convolutional network) or
        ``resnet12`` (MetaOptNet's residual network).
    :param in_features: input size of the learner (``conv4``, ``resnet12``: image channels; ``mlp``
        flattens images).
    :param out_features: output size (1 for sine regression, N for N-way classification); not used by
        ``protonet``, whose network ends at its embedding and classifies any number of classes.
    :param hidden_sizes: widths of the hidden layers (``conv4``, ``resnet12``: filters of each block).
    :param activation: ``relu`` or ``tanh`` (``mlp`` only).
    :param batch_norm: ``mlp`` only: batch normalisation after each hidden layer (``conv4`` always has it).
    :param image_size: ``conv4`` only: side of the square input images.
    :param drop_block: ``resnet12`` only: DropBlock probability (0 turns it off).
    :param distance: ``protonet`` only: ``euclidean`` (squared, the paper's default) or ``cosine``.
    :param transductive: at validation and test, predict the query set as one batch, so batch
        normalisation uses its statistics (the MAML paper's setting); ``False`` predicts each query
        example with the support set alone (the Reptile paper's non-transductive setting). Results of
        networks with batch normalisation depend on it.
    :param loss: ``mse`` (regression) or ``cross_entropy`` (classification).
    :param inner_lr: step size of the inner updates (Meta-SGD: their initial value; not used by
        ``protonet``).
    :param inner_steps: inner updates per task during meta-training (Reptile's k; not used by ``protonet``).
    :param inner_batch_size: Reptile only: examples per inner minibatch (default: the whole support set).
    :param inner_optimizer: Reptile only: ``sgd`` (default) or ``adam`` (β1 = 0, the Reptile paper's
        Omniglot setting), used both in meta-training and at test time.
    :param eval_steps: K, the adaptation steps measured at validation, test and by ``evaluate.py``
        (default: ``inner_steps``; ``protonet`` adapts without steps and leaves it unset).
    :param compile_inner_loop: fuse the meta-training inner loop with ``torch.compile``: Reptile's loop
        (several times faster on small learners), or with ``vectorize_tasks`` the vectorised step of any
        algorithm; the first meta-iteration pays the compilation.
    :param vectorize_tasks: compute each meta-batch's meta-gradient with every task at once
        (``torch.func.vmap``; the same result as the task-by-task loop to float rounding), ``false`` for
        the loop, ``auto`` for the vectorised form on a GPU and the loop on a CPU, where each is faster
        (docs/benchmarks.md).
    :param task_threads: MAML, first-order MAML, Meta-SGD and ANIL on a CPU: adapt this many tasks of the
        meta-batch at once, each on its own thread with torch's intra-op threads set to one (whole tasks
        use several cores better than one task's small convolutions split across them); the same result
        as one thread, summed in task order.
    :param gradient_clip_val: clip the meta-gradient to this global norm before the outer step.
    :param optimizer: the outer (meta) optimizer; plain SGD with ``lr`` ε makes Reptile's step exactly
        θ ← θ + ε·mean(θ̃ − θ).
    :param lr_scheduler: schedule of the outer learning rate, stepped once per meta-iteration
        (``torch.optim.lr_scheduler.LinearLR`` down to 0 anneals ε linearly, as in the Reptile paper).
    """

    ARCHITECTURE_HPARAMS = (
        "algorithm",
        "network",
        "in_features",
        "out_features",
        "hidden_sizes",
        "activation",
        "batch_norm",
        "image_size",
    )

    def __init__(
        self,
        algorithm: str = "reptile",
        network: str = "mlp",
        in_features: int = 1,
        out_features: int = 1,
        hidden_sizes: list[int] | None = None,
        activation: str = "relu",
        batch_norm: bool = False,
        image_size: int = 28,
        drop_block: float = 0.0,
        distance: str | None = None,
        transductive: bool = True,
        loss: str = "mse",
        inner_lr: float = 0.01,
        inner_steps: int = 1,
        inner_batch_size: int | None = None,
        inner_optimizer: str | None = None,
        eval_steps: int | None = None,
        compile_inner_loop: bool = False,
        vectorize_tasks: bool | Literal["auto"] = False,
        task_threads: int = 1,
        gradient_clip_val: float | None = None,
        optimizer: OptimizerCallable = torch.optim.Adam,
        lr_scheduler: LRSchedulerCallable | None = None,
    ) -> None:
        super().__init__()
        hidden_sizes = [40, 40] if hidden_sizes is None else list(hidden_sizes)
        self.save_hyperparameters(ignore=["optimizer", "lr_scheduler"])
        self.automatic_optimization = False
        if loss not in LOSS_FUNCTIONS:
            raise ConfigError(f"unknown loss '{loss}'; choose one of {', '.join(LOSS_FUNCTIONS)}")
        headless = algorithm in HEADLESS
        if headless:
            require(loss == "cross_entropy", f"{algorithm} classifies: its loss must be cross_entropy")
            require(eval_steps is None, f"{algorithm} adapts without steps: leave eval_steps unset")
        elif loss == "cross_entropy":
            require(
                out_features >= 2, f"a classifier needs at least 2 ways (out_features), got {out_features}"
            )
        if eval_steps is not None:
            require_positive("eval_steps", eval_steps)
        if gradient_clip_val is not None:
            require_positive("gradient_clip_val", gradient_clip_val)
        require(
            vectorize_tasks in (True, False, "auto"),
            f"vectorize_tasks must be true, false or auto, got {vectorize_tasks!r}",
        )
        require_positive("task_threads", task_threads)
        require(
            task_threads == 1 or algorithm in TASK_THREADED,
            f"task_threads applies to {', '.join(TASK_THREADED)}; {algorithm} runs its tasks on one thread",
        )
        outputs = None if headless else out_features  # an embedding network has no classification layer
        learner = build_network(
            network, in_features, outputs, hidden_sizes, activation, batch_norm, image_size, drop_block
        )
        self.algorithm: MetaAlgorithm = build_algorithm(
            algorithm,
            learner,
            LOSS_FUNCTIONS[loss],
            inner_lr,
            inner_steps,
            inner_batch_size,
            seed=torch.initial_seed(),
            compile_inner_loop=compile_inner_loop and vectorize_tasks is False,
            inner_optimizer=inner_optimizer,
            distance=distance,
        )
        self.algorithm.vectorize = vectorize_tasks is True
        self.algorithm.compile_vectorized = compile_inner_loop and vectorize_tasks is not False
        self.algorithm.task_threads = task_threads
        self.eval_steps = eval_steps or (inner_steps if self.algorithm.ADAPTS_BY_STEPS else 0)
        self.optimizer_factory = optimizer
        self.lr_scheduler_factory = lr_scheduler
        check_optimizer(optimizer, lr_scheduler)
        self._training_window: dict[str, list[Tensor]] = {}
        classifier, before = loss == "cross_entropy", self.algorithm.ADAPTS_BY_STEPS
        self.metrics = nn.ModuleDict(
            {f"{split}_metrics": _query_metrics(split, classifier, before) for split in SPLITS}
        )

    def check_data(self, datamodule) -> None:
        """Refuse a datamodule whose tasks this learner cannot fit (an N-way task needs N outputs;
        Prototypical Networks take any number of classes)."""
        ways = getattr(datamodule, "ways", None)
        if ways is None or self.hparams.algorithm in HEADLESS:
            return
        require(
            ways == self.hparams.out_features,
            f"the learner has {self.hparams.out_features} outputs (model.out_features) but the tasks are "
            f"{ways}-way (data.ways); set both to the same number",
        )
        train_ways = getattr(datamodule, "train_ways", None) or ways
        require(
            train_ways == ways,
            f"data.train_ways ({train_ways}) differs from data.ways ({ways}), which only "
            f"Prototypical Networks can train on; {self.hparams.algorithm} has one output per class",
        )

    def check_trainer(self, trainer) -> None:
        require_data_parallel_strategy(self, trainer)

    def on_fit_start(self) -> None:
        if self.hparams.get("vectorize_tasks") == "auto":
            self.algorithm.vectorize = self.device.type == "cuda"
        if self.algorithm.task_threads > 1:
            torch.set_num_threads(1)  # one core per task thread

    def forward(self, x: Tensor) -> Tensor:
        """The meta-learned initialisation's prediction (no adaptation)."""
        return self.algorithm(x)

    def training_step(self, batch: TaskBatch, batch_idx: int) -> None:
        optimizer = self.optimizers()
        optimizer.zero_grad()
        # global_step counts optimizer steps, so this step logs if the count after it is a multiple
        logs = (self.global_step + 1) % self.trainer.log_every_n_steps == 0
        result = self.algorithm.meta_gradient(batch, score=logs)
        average_gradients_across_processes_(self.parameters(), self.trainer)
        if self.hparams.gradient_clip_val is not None:
            self.clip_gradients(optimizer, self.hparams.gradient_clip_val, gradient_clip_algorithm="norm")
        optimizer.step()
        scheduler = self.lr_schedulers()
        if scheduler is not None:
            scheduler.step()
        if result.query_loss is not None:
            self._training_window.setdefault("query_loss", []).append(result.query_loss)
            if not torch.is_floating_point(batch.query_y):
                self._training_window.setdefault("query_accuracy", []).append(
                    _correct(result.query_output.detach(), batch.query_y).flatten()
                )
        if logs:
            self._log_training()

    def validation_step(self, batch: TaskBatch, batch_idx: int) -> None:
        self._evaluate("val", batch)

    def test_step(self, batch: TaskBatch, batch_idx: int) -> None:
        self._evaluate("test", batch)

    def adaptation_curves(
        self, tasks: Iterable[TaskBatch], steps: int | None = None, transductive: bool | None = None
    ) -> AdaptationCurves:
        """Query results after 0..``steps`` adaptation steps on each task (default: ``eval_steps``),
        predicting transductively or not as the module was configured unless ``transductive`` is given.

        Gradients are enabled even inside Lightning's evaluation loops, which run under
        ``torch.no_grad`` or ``torch.inference_mode``: adaptation needs them.
        """
        steps = self.eval_steps if steps is None else steps
        transductive = self.hparams.transductive if transductive is None else transductive
        with torch.inference_mode(False), torch.enable_grad():
            # Tensors made under inference mode cannot enter autograd; cloning here makes normal ones.
            tasks = [batch.map(torch.clone) for batch in tasks]
            return adaptation_curves(self.algorithm, tasks, steps, transductive)

    def _evaluate(self, split: str, batch: TaskBatch) -> None:
        """Update the split's query metrics with one batch of held-out tasks; Lightning computes them
        (reduced over processes) and logs them at the end of the epoch."""
        curves = self.adaptation_curves([batch])
        metrics = self.metrics[f"{split}_metrics"]
        before = f"{split}/query_loss_before" in metrics
        metrics[f"{split}/query_loss"].update(curves.final_loss.to(self.device))
        if before:
            metrics[f"{split}/query_loss_before"].update(curves.loss[:, 0].to(self.device))
        if curves.outputs is not None:
            first, final = (_correct(output, curves.labels).flatten() for output in curves.outputs)
            metrics[f"{split}/query_accuracy"].update(final)
            if before:
                metrics[f"{split}/query_accuracy_before"].update(first)
        for name, metric in metrics.items():
            if metric.update_called:
                self.log(name, metric, on_step=False, on_epoch=True, prog_bar=name in PROGRESS_BAR)

    def _log_training(self) -> None:
        """Log each training metric over the tasks since the last log, then start a new window (Reptile
        scores only the logging step's tasks, see :meth:`Reptile.meta_gradient`).

        The window's tensors reach the metrics once per ``trainer.log_every_n_steps`` (when Lightning
        writes to its loggers anyway): a metric update every step would add its cost to a
        meta-iteration that, on small tasks, takes about a millisecond.
        """
        metrics = self.metrics["train_metrics"]
        for name, values in self._training_window.items():
            metric = metrics[f"train/{name}"]
            metric.update(torch.cat(values))
            self.log(f"train/{name}", metric.compute(), prog_bar=True, on_step=True, on_epoch=False)
            metric.reset()
        self._training_window = {}

    def transfer_batch_to_device(
        self, batch: TaskBatch, device: torch.device, dataloader_idx: int
    ) -> TaskBatch:
        return batch if batch.support_x.device == device else batch.to(device)

    def configure_optimizers(self) -> dict:
        return scheduled_optimizer(self.parameters(), self.optimizer_factory, self.lr_scheduler_factory)


__all__ = ["FewShotModule"]
