"""Task distributions of MDPs as a DataModule: a resumable stream of meta-batches of tasks for
meta-training, and fixed held-out tasks for validation and test."""

from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial

import gymnasium as gym
import pytorch_lightning as pl

from lit_meta.datamodules.streams import FixedTasks, ShardedStream, ShardedTrainingData
from lit_meta.envs import Task, check_env_id, make_task_env, sample_task_env
from lit_meta.envs.task_generator import TaskGenerator, sample_meta_batch
from lit_meta.errors import require, require_positive
from lit_meta.seeding import derive_generator, derive_seed, draw_seeds

TASK_BOOKKEEPING = ("task_seed", "task_index")
"""Keys :class:`TaskGenerator` adds to a task's info besides its parameters."""


@dataclass
class MetaBatch:
    """The tasks of one meta-iteration: ``tasks`` are ``(env, info, origin_meta_step)``; under
    data-parallel training one rank's share of them, the first being task ``first_index`` of the
    whole meta-batch."""

    meta_step: int
    tasks: list[tuple[gym.Env, dict, int | None]]
    first_index: int = 0

    def __len__(self) -> int:
        return len(self.tasks)

    @property
    def task_parameters(self) -> list[Task]:
        """The MDP parameters of each task, without the generator's bookkeeping (seed, index)."""
        return [{k: v for k, v in info.items() if k not in TASK_BOOKKEEPING} for _, info, _ in self.tasks]


class MetaBatchStream(ShardedStream):
    """Meta-batches drawn from a task generator, cut into epochs of ``epoch_length``; its state (how
    many were drawn, and the generator's own state) is saved with Lightning's loop state. Every rank
    draws the whole meta-batch and, after :meth:`shard`, yields its own share (see
    :func:`~lit_meta.datamodules.streams.rank_share`)."""

    def __init__(self, task_generator: TaskGenerator, batch_size: int, seed: int, epoch_length: int) -> None:
        super().__init__(batch_size, seed, epoch_length)
        self.task_generator = task_generator

    def __iter__(self) -> Iterator[MetaBatch]:
        for _ in range(self.epoch_length):
            meta_step = self.batches_drawn
            tasks = sample_meta_batch(self.task_generator, meta_step, self.batch_size, self.seed)
            self.batches_drawn += 1
            yield MetaBatch(meta_step, tasks[self.share], first_index=self.share.start)

    def state_dict(self) -> dict:
        return {"batches_drawn": self.batches_drawn, "task_generator": self.task_generator.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.batches_drawn = state["batches_drawn"]
        self.task_generator.load_state_dict(state["task_generator"])


class RLTaskDataModule(ShardedTrainingData, pl.LightningDataModule):
    """Tasks of a registered task family (``lit_meta.envs``) for meta-RL.

    :param env: registered id of the family, e.g. ``lit_meta/CartPoleTask-v0``.
    :param ranges: sampling intervals of the task parameters, ``{name: [low, high]}`` (default: the
        family's own).
    :param env_kwargs: the family's other constructor arguments (e.g. ``{"arms": 10}`` for bandits,
        ``{"env_name": "reach-v3"}`` for Meta-World's ML1), and ``max_episode_steps`` to shorten episodes.
    :param train_tasks: ``None`` makes a new task at every draw (dynamic tasks, revisited with
        probability ``revisit_prob``); a number fixes that many training tasks, drawn once (static; of a
        family with finitely many training tasks, like Meta-World's, that many distinct ones).
    :param revisit_policy: ``random``, ``cyclic`` or ``weighted`` (see :class:`TaskGenerator`).
    :param revisit_prob: dynamic tasks: probability of revisiting an earlier task.
    :param weights: static tasks with the ``weighted`` policy: one weight per training task.
    :param meta_batch_size: tasks per meta-iteration.
    :param epoch_length: meta-iterations per epoch (the progress bar's unit).
    :param val_tasks: held-out tasks scored at each validation.
    :param test_tasks: held-out tasks of ``trainer.test``.
    :param seed: seed of every task draw; training, validation and test draw from distinct streams.
    """

    def __init__(
        self,
        env: str = "lit_meta/CartPoleTask-v0",
        ranges: dict[str, list[float]] | None = None,
        env_kwargs: dict | None = None,
        train_tasks: int | None = None,
        revisit_policy: str = "random",
        revisit_prob: float = 0.0,
        weights: list[float] | None = None,
        meta_batch_size: int = 4,
        epoch_length: int = 100,
        val_tasks: int = 4,
        test_tasks: int = 20,
        seed: int = 0,
    ) -> None:
        super().__init__()
        check_env_id(env)
        for name, value in {"val_tasks": val_tasks, "test_tasks": test_tasks}.items():
            require_positive(name, value)
        self.save_hyperparameters()
        self.template = make_task_env(env, ranges=ranges, env_kwargs=env_kwargs)  # checks the ranges
        self.task_callable = partial(sample_task_env, env, ranges=ranges, env_kwargs=env_kwargs)
        if train_tasks is None:
            require(weights is None, "weights apply to a fixed set of train_tasks only")
            require(
                revisit_policy != "weighted",
                "the weighted revisit policy needs a fixed set of train_tasks and their weights "
                "(weights of dynamic tasks are a Python weight_fn, "
                "see lit_meta.envs.task_generator.TaskGenerator)",
            )
            generator = TaskGenerator(
                task_callable=self.task_callable,
                revisit_policy=revisit_policy,
                revisit_prob=revisit_prob,
                seed=derive_seed(seed, "revisits"),
            )
        else:
            require_positive("train_tasks", train_tasks)
            finite = self.template.unwrapped.split_tasks("train")
            if finite is None:
                tasks = [self.task_callable(seed=s) for s in draw_seeds(seed, "train", count=train_tasks)]
            else:
                tasks = [(self.make_env(task), task) for task in self._drawn(finite, train_tasks, "train")]
            generator = TaskGenerator(
                tasks=tasks,
                revisit_policy=revisit_policy,
                weights=weights,
                seed=derive_seed(seed, "revisits"),
            )
        self.task_generator = generator
        self.train_stream = MetaBatchStream(
            generator, meta_batch_size, derive_seed(seed, "train"), epoch_length
        )

    def template_env(self) -> gym.Env:
        """An environment of the family, for the spaces every task shares."""
        return self.template

    def fixed_train_tasks(self) -> list[Task]:
        """The parameters of the fixed training tasks (``train_tasks`` set), task id ``i`` at index ``i``."""
        require(
            self.hparams.train_tasks is not None,
            "this model trains on a fixed set of tasks: set data.train_tasks to their number",
        )
        return [dict(info) for _, info in self.task_generator.tasks]

    def eval_tasks(self, split: str, num_tasks: int) -> list[Task]:
        """``num_tasks`` fixed held-out tasks of ``split`` (``val`` or ``test``), never drawn in training
        (a distinct seed stream over continuous parameters), or, for a family with finitely many tasks
        per split (Meta-World), ``num_tasks`` distinct tasks of that split."""
        require_positive("the number of evaluation tasks", num_tasks)
        finite = self.template.unwrapped.split_tasks(split)
        if finite is not None:
            return self._drawn(finite, num_tasks, split)
        return self.template.unwrapped.sample_tasks(num_tasks, derive_generator(self.hparams.seed, split))

    def _drawn(self, tasks: list[Task], count: int, split: str) -> list[Task]:
        """``count`` distinct tasks of a family's finite ``split``, in an order drawn from the data seed."""
        require(
            count <= len(tasks),
            f"{self.hparams.env} has {len(tasks)} {split} tasks; ask for at most that many, not {count}",
        )
        order = derive_generator(self.hparams.seed, split).permutation(len(tasks))[:count]
        return [tasks[index] for index in order]

    def make_env(self, task: Task) -> gym.Env:
        return make_task_env(
            self.hparams.env, task=task, ranges=self.hparams.ranges, env_kwargs=self.hparams.env_kwargs
        )

    def train_dataloader(self) -> MetaBatchStream:
        return self.train_stream

    def val_dataloader(self) -> FixedTasks:
        """One held-out task per batch (a plain list would be read by Lightning as many dataloaders)."""
        return FixedTasks([[task] for task in self.eval_tasks("val", self.hparams.val_tasks)])

    def test_dataloader(self) -> FixedTasks:
        return FixedTasks([[task] for task in self.eval_tasks("test", self.hparams.test_tasks)])

    def describe(self) -> dict:
        """What results depend on, for reports."""
        return {
            "env": self.hparams.env,
            "ranges": self.template.unwrapped.ranges,
            "env_kwargs": self.hparams.env_kwargs or {},
        }
