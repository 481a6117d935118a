"""Data-parallel meta-training (Lightning DDP on CPU, gloo, 2 processes): the same update as one process
given the whole meta-batch, distinct tasks per process, exact resume, one checkpoint per save."""

import os
import socket
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from lit_meta.algorithms import build_algorithm
from lit_meta.cli import _requeue_checkpoint
from lit_meta.datamodules import RLTaskDataModule, SineTasks, TaskStream
from lit_meta.datamodules.streams import rank_share
from lit_meta.errors import ConfigError
from lit_meta.modules.distributed import average_gradients_across_processes_, require_data_parallel_strategy
from lit_meta.nn import MLP
from lit_meta.tasks import LOSS_FUNCTIONS, TASK_SEED, TaskBatch

from .conftest import QUIET, ROOT, run_script

TWO_PROCESSES = ["--trainer.accelerator", "cpu", "--trainer.devices", "2", "--trainer.strategy", "ddp"]
SGD = ["--model.init_args.optimizer", "torch.optim.SGD", "--model.init_args.optimizer.lr", "0.05"]


# ------------------------------------------------------------------------------ in one process
def test_rank_shares_are_contiguous_equal_and_cover_the_batch():
    assert [rank_share(6, rank, 3) for rank in range(3)] == [slice(0, 2), slice(2, 4), slice(4, 6)]
    with pytest.raises(ConfigError, match="meta_batch_size 5 does not split evenly over 2 processes"):
        rank_share(5, 0, 2)


def sine_stream(seed: int = 3) -> TaskStream:
    def sample(count, generator):
        return SineTasks().sample(count, generator, shots=5, queries=2)

    return TaskStream(sample, batch_size=4, seed=seed, epoch_length=3)


def test_sharded_streams_draw_distinct_tasks_whose_union_is_the_single_process_stream():
    whole = list(sine_stream())
    shards = []
    for rank in range(2):
        stream = sine_stream()
        stream.shard(rank, 2)
        shards.append(list(stream))
    for step, batch in enumerate(whole):
        parts = [shards[rank][step] for rank in range(2)]
        assert not torch.equal(parts[0].support_x, parts[1].support_x)
        union = TaskBatch.concatenate(parts)
        assert torch.equal(union.support_x, batch.support_x) and torch.equal(union.query_y, batch.query_y)
        assert torch.equal(union.info[TASK_SEED], batch.info[TASK_SEED])
    assert len(set(torch.cat([b.info[TASK_SEED] for b in whole]).tolist())) == 12  # every task its own


def test_sharded_meta_batch_streams_hand_out_the_global_task_positions():
    def tasks_of(rank, world_size):
        data = RLTaskDataModule(env="lit_meta/Navigation2D-v0", meta_batch_size=4, epoch_length=2, seed=5)
        data.train_stream.shard(rank, world_size)
        return [(batch.first_index, batch.task_parameters) for batch in data.train_stream]

    whole = tasks_of(0, 1)
    halves = [tasks_of(rank, 2) for rank in range(2)]
    for step, (first_index, tasks) in enumerate(whole):
        assert first_index == 0
        assert [halves[rank][step][0] for rank in range(2)] == [0, 2]
        assert halves[0][step][1] + halves[1][step][1] == tasks


@pytest.mark.parametrize("algorithm", ["maml", "reptile"])
def test_the_mean_of_half_batch_meta_gradients_is_the_whole_batch_meta_gradient(algorithm):
    """What data-parallel training relies on: tasks split in two equal halves give meta-gradients whose
    mean is the whole batch's, Reptile's minibatch shuffles included (each task carries its seed)."""
    tasks = next(iter(sine_stream()))  # 4 tasks with their seeds, 5 support points
    torch.manual_seed(0)
    minibatch = 2 if algorithm == "reptile" else None
    model = build_algorithm(algorithm, MLP(1, 1, [16, 16], "relu"), LOSS_FUNCTIONS["mse"], 0.02, 3, minibatch)

    def gradient(batch):
        model.zero_grad()
        model.meta_gradient(batch)
        return torch.cat([p.grad.flatten() for p in model.parameters()])

    halves = (gradient(tasks[:2]) + gradient(tasks[2:])) / 2
    torch.testing.assert_close(halves, gradient(tasks), rtol=0, atol=1e-6)


def test_gradients_are_left_alone_in_one_process_and_other_strategies_are_refused():
    parameter = torch.nn.Parameter(torch.ones(2))
    parameter.grad = torch.tensor([1.0, 2.0])
    average_gradients_across_processes_([parameter], SimpleNamespace(world_size=1, strategy=None))
    assert parameter.grad.tolist() == [1.0, 2.0]
    with pytest.raises(ConfigError, match=r"trains in one process or with trainer\.strategy ddp"):
        require_data_parallel_strategy(torch.nn.Module(), SimpleNamespace(strategy=object()))


# ------------------------------------------------------------------------- in two processes
def sine_run(run_dir: Path, algorithm: str, steps: int, *extra: str) -> list[str]:
    return [
        "fit", "--config", str(ROOT / f"configs/sine_{algorithm}.yaml"), "--run_dir", str(run_dir), *QUIET,
        "--trainer.max_steps", str(steps),
        "--trainer.val_check_interval", "2",
        "--trainer.log_every_n_steps", "1",
        "--data.init_args.meta_batch_size", "4",
        "--data.init_args.val_tasks", "4",
        "--data.init_args.eval_batch_size", "2",
        "--data.init_args.epoch_length", "3",
        *SGD, *extra,
    ]  # fmt: skip


def train(*args: str) -> None:
    result = run_script("train.py", *args, env={"OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]


def assert_same_weights(first: dict, second: dict, atol: float) -> None:
    assert first.keys() == second.keys()
    for name in first:
        torch.testing.assert_close(first[name], second[name], rtol=0, atol=atol, msg=name)


def recorded(folder: Path, rank: int, step: int) -> dict:
    return torch.load(folder / f"rank{rank}-step{step}.pt", weights_only=True)


def recorder(folder: Path) -> list[str]:
    return ["--trainer.callbacks+", "tests.distributed_callbacks.RecordTasks",
            "--trainer.callbacks.folder", str(folder)]  # fmt: skip


def test_maml_on_two_processes_equals_one_process_resumes_exactly_and_saves_once(tmp_path):
    one, two, resumed = tmp_path / "one", tmp_path / "two", tmp_path / "resumed"
    train(*sine_run(one, "maml", 4), *recorder(tmp_path / "tasks-one"))
    train(*sine_run(two, "maml", 4), *TWO_PROCESSES, *recorder(tmp_path / "tasks-two"))
    assert_same_weights(weights(two), weights(one), atol=1e-6)

    for step in range(4):  # distinct tasks per process; together, the single process's meta-batch
        single = recorded(tmp_path / "tasks-one", 0, step)
        ranks = [recorded(tmp_path / "tasks-two", rank, step) for rank in range(2)]
        assert not torch.equal(ranks[0]["amplitude"], ranks[1]["amplitude"])
        for key in ("amplitude", "phase", TASK_SEED):
            assert torch.equal(torch.cat([ranks[0][key], ranks[1][key]]), single[key])

    train(*sine_run(resumed, "maml", 3), *TWO_PROCESSES)  # stops mid-epoch, between validations
    train(*sine_run(resumed, "maml", 4), *TWO_PROCESSES, "--ckpt_path", "last")
    assert_same_weights(weights(resumed), weights(two), atol=0)

    for run in (two, resumed):  # rank 0 alone writes checkpoints, configs and logs
        assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]
        assert len(list((run / "tensorboard").glob("events.out.tfevents.*"))) == (1 if run == two else 2)
        assert len(list((run / "csv").iterdir())) == (1 if run == two else 2)
    assert len(list(two.glob("config*.yaml"))) == 1


def test_reptile_with_inner_minibatches_on_two_processes_equals_one_process(tmp_path):
    minibatches = ["--data.init_args.shots", "10", "--model.init_args.inner_batch_size", "4",
                   "--model.init_args.inner_steps", "3"]  # fmt: skip
    train(*sine_run(tmp_path / "one", "reptile", 2), *minibatches)
    train(*sine_run(tmp_path / "two", "reptile", 2), *minibatches, *TWO_PROCESSES)
    assert_same_weights(weights(tmp_path / "two"), weights(tmp_path / "one"), atol=1e-6)


def test_maml_rl_on_two_processes_equals_one_process(tmp_path):
    def run(run_dir, *extra):
        return [
            "fit", "--config", str(ROOT / "configs/nav2d_maml_rl.yaml"), "--run_dir", str(run_dir), *QUIET,
            "--trainer.max_steps", "2", "--trainer.val_check_interval", "2",
            "--data.init_args.meta_batch_size", "4", "--data.init_args.val_tasks", "2",
            "--model.init_args.episodes_per_task", "4", "--model.init_args.eval_steps", "1",
            "--model.init_args.eval_episodes", "2", "--model.init_args.hidden_sizes", "[16]", *SGD, *extra,
        ]  # fmt: skip

    train(*run(tmp_path / "one"))
    train(*run(tmp_path / "two", *TWO_PROCESSES))
    assert_same_weights(weights(tmp_path / "two"), weights(tmp_path / "one"), atol=1e-6)
    scores = [
        float(next(iter(callbacks.values()))["best_model_score"])
        for callbacks in (
            torch.load(tmp_path / run / "checkpoints/last.ckpt", weights_only=True)["callbacks"]
            for run in ("one", "two")
        )
    ]
    assert np.isclose(*scores)  # validation over the held-out tasks gives the same score


def srun(run_dir: Path, *extra: str) -> None:
    """Start the two tasks of ``srun --ntasks 2 python train.py ...`` on this machine, as SLURM would."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, str(ROOT / "train.py"), *sine_run(run_dir, "maml", 6), *TWO_PROCESSES, *extra]
    tasks, logs = [], [run_dir.parent / f"{run_dir.name}-task{rank}.log" for rank in range(2)]
    for rank in range(2):
        slurm = {"SLURM_NTASKS": "2", "SLURM_NTASKS_PER_NODE": "2", "SLURM_JOB_NAME": "lit-meta",
                 "SLURM_JOB_ID": "1", "SLURM_PROCID": str(rank), "SLURM_LOCALID": str(rank),
                 "SLURM_NODEID": "0", "SLURM_NODELIST": "localhost", "MASTER_PORT": str(port)}  # fmt: skip
        env = {**os.environ, **slurm, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
        with open(logs[rank], "w") as log:
            tasks.append(subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT))
    for task, log in zip(tasks, logs, strict=True):
        assert task.wait(timeout=600) == 0, log.read_text()[-3000:]


def test_a_preempted_slurm_job_stops_at_a_step_boundary_and_its_requeued_run_resumes_exactly(tmp_path):
    """SIGUSR1 reaches one task mid-step; both stop after that meta-step, rank 0 writes Lightning's
    hpc_ckpt_1.ckpt (``scontrol requeue`` is absent here), and the same command started again (the
    requeued job) resumes from it and ends where an uninterrupted job ends."""
    srun(tmp_path / "uninterrupted")
    preempted = tmp_path / "preempted"
    srun(preempted, "--trainer.callbacks+", "tests.distributed_callbacks.SendSignal",
         "--trainer.callbacks.step", "2", "--trainer.callbacks.rank", "1")  # fmt: skip
    saved = torch.load(preempted / "hpc_ckpt_1.ckpt", weights_only=True)
    assert saved["global_step"] == 3 and torch.load(preempted / "checkpoints/last.ckpt")["global_step"] == 3
    srun(preempted)
    assert_same_weights(weights(preempted), weights(tmp_path / "uninterrupted"), atol=0)


def test_a_requeued_job_resumes_from_its_furthest_checkpoint(tmp_path):
    (tmp_path / "checkpoints").mkdir()
    for name, step in {"hpc_ckpt_1.ckpt": 2, "hpc_ckpt_2.ckpt": 4, "hpc_ckpt_x.ckpt": 9}.items():
        torch.save({"global_step": step, "state_dict": {}}, tmp_path / name)
    assert _requeue_checkpoint(tmp_path) == str(tmp_path / "hpc_ckpt_2.ckpt")  # no last.ckpt yet
    torch.save({"global_step": 4, "state_dict": {}}, tmp_path / "checkpoints/last.ckpt")
    assert _requeue_checkpoint(tmp_path) == str(tmp_path / "hpc_ckpt_2.ckpt")  # same step: the hpc one
    torch.save(
        {"global_step": 6, "state_dict": {}}, tmp_path / "checkpoints/last.ckpt"
    )  # requeued later without a signal
    assert _requeue_checkpoint(tmp_path) == str(tmp_path / "checkpoints/last.ckpt")
    assert _requeue_checkpoint(tmp_path / "checkpoints") is None


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (["--data.init_args.meta_batch_size", "5", *TWO_PROCESSES], "does not split evenly over 2 processes"),
        (["--trainer.strategy", "fsdp"], "the trainer settings cannot run here"),
        (["--trainer.devices", "1024", "--trainer.strategy", "ddp"], "asks for 1024 CPU processes"),
        (["--trainer.accelerator", "gpu", "--trainer.devices", "1024"], "trainer settings cannot run here"),
    ],
)
def test_bad_distributed_settings_end_in_one_sentence(override, message, tmp_path):
    result = run_script("train.py", *sine_run(tmp_path / "run", "maml", 1), *override)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == 2 and len(errors) == 1 and message in errors[0], result.stderr[-2000:]
    assert not (tmp_path / "run" / "checkpoints").exists()
