"""Losing nothing and reporting every failure (docs/reliability.md): a NaN stops training before it is
saved, checkpoints are written atomically and checked before use, a failed write stops the run, one
process per run directory, and every bad input or failure ends in one sentence."""

import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import torch

from lit_meta.checkpoints import load_checkpoint
from lit_meta.cli import main as train_main
from lit_meta.evaluate import main as evaluate_main

from .conftest import ROOT, only_error_line, run_script, tiny_run
from .test_train_cli import tiny_sine_run

HELPERS = "tests/reliability_helpers.py"


def error_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("error:")]


def step_of(path: Path) -> int:
    return torch.load(path, weights_only=True)["global_step"]


def files_under(folder: Path) -> set[str]:
    return {str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file()}


def partial_files(folder: Path) -> list[Path]:
    return [path for path in folder.rglob("*.partial")]


@pytest.fixture(scope="module")
def good_run(tmp_path_factory) -> Path:
    """A healthy 3-step MAML run on sine tasks (validated and checkpointed at step 3)."""
    run_dir = tmp_path_factory.mktemp("good") / "run"
    assert train_main(tiny_sine_run(run_dir, "maml", 3)) == 0
    return run_dir


def copy_run(run_dir: Path, destination: Path) -> Path:
    subprocess.run(["cp", "-r", str(run_dir), str(destination)], check=True)
    return destination


# ------------------------------------------------------------------------------------------------- NaN
@pytest.mark.parametrize("algorithm", ["maml", "fomaml", "metasgd", "reptile"])
def test_a_diverging_run_stops_with_one_sentence_and_writes_no_checkpoint(algorithm, tmp_path, capsys):
    run_dir = tmp_path / "run"
    args = tiny_sine_run(run_dir, algorithm, 6, "--model.init_args.inner_lr", "1e12")
    if algorithm == "reptile":
        args += ["--model.init_args.compile_inner_loop", "false"]
    assert train_main(args) == 3
    line = only_error_line(capsys)
    assert line.startswith("error: training stopped at step ")
    assert "is not finite (NaN or infinity)" in line
    assert "inner_lr=1000000000000.0" in line and "meta-optimizer lr=" in line
    assert "no checkpoint had been written" in line
    assert not list(run_dir.glob("checkpoints/*.ckpt"))


def test_resuming_with_a_diverging_rate_keeps_the_good_checkpoint(good_run, tmp_path, capsys):
    run_dir = copy_run(good_run, tmp_path / "run")
    before = {name: (run_dir / "checkpoints" / name).read_bytes() for name in ("last.ckpt", "best.ckpt")}
    args = tiny_sine_run(run_dir, "maml", 6, "--ckpt_path", "last", "--model.init_args.inner_lr", "1e12")
    assert train_main(args) == 3
    line = only_error_line(capsys)
    assert "training stopped at step 4: the training metric train/query_loss is not finite" in line
    assert f"the last checkpoint, {run_dir / 'checkpoints' / 'last.ckpt'}, is kept" in line
    assert {name: (run_dir / "checkpoints" / name).read_bytes() for name in before} == before
    assert not partial_files(run_dir)


def test_a_non_finite_training_metric_stops_the_run(tmp_path, capsys):
    poison = ["--trainer.callbacks+", "tests.reliability_helpers.PoisonAt", "--trainer.callbacks.step", "2",
              "--trainer.callbacks.target", "metric"]  # fmt: skip
    assert train_main(tiny_sine_run(tmp_path / "run", "fomaml", 6, *poison)) == 3
    assert (
        "training stopped at step 2: the training metric train/poisoned_loss is not finite"
        in only_error_line(capsys)
    )


def test_when_steps_are_too_short_to_check_each_one_a_save_is_still_checked_first(
    tmp_path, capsys, monkeypatch
):
    """With a check dearer than its budget, the guard checks every 10th step only; the NaN put into the
    weights at step 2 is then found by the check before the save at step 3, which is not written."""
    from lit_meta.callbacks import StopOnNonFinite

    monkeypatch.setattr(StopOnNonFinite, "BUDGET", 1e-12)
    poison = ["--trainer.callbacks+", "tests.reliability_helpers.PoisonAt", "--trainer.callbacks.step", "2"]
    args = tiny_sine_run(tmp_path / "run", "fomaml", 30, "--trainer.log_every_n_steps", "50", *poison)
    assert train_main(args) == 3
    line = only_error_line(capsys)
    assert line.startswith(
        "error: training stopped at step 3 (the weights were last found finite after step 1): the weight "
    )
    assert not list(tmp_path.glob("run/checkpoints/*.ckpt"))


RL_CONFIGS = {
    "MAML-RL": "nav2d_maml_rl",
    "RL²": "bandits_rl2",
    "SB3 Reptile": "cartpole_sb3_reptile",
    "VarShare SAC": "pendulum_varshare_sac",
}


@pytest.mark.parametrize("name", ["MAML-RL", "RL²", "SB3 Reptile", "VarShare SAC"])
def test_every_rl_module_stops_at_a_nan_weight_and_keeps_its_checkpoint(name, tmp_path, capsys):
    """The RL modules run their own updates (PPO epochs, SAC steps, SB3 learners); a weight that turns
    NaN during step 3 stops the run there, and the checkpoint of step 2 is what is left."""
    poison = ["--trainer.callbacks+", "tests.reliability_helpers.PoisonAt", "--trainer.callbacks.step", "3"]
    args = tiny_run(RL_CONFIGS[name], tmp_path / "run", 4, "--trainer.val_check_interval", "2", *poison)
    assert train_main(args) == 3
    line = only_error_line(capsys)
    assert line.startswith("error: training stopped at step 3: the weight ")
    assert "is not finite" in line and "is kept" in line
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    assert step_of(last) == 2
    load_checkpoint(last)  # finite, intact


def test_checkpoints_with_non_finite_weights_are_refused_everywhere(good_run, tmp_path, capsys):
    checkpoint = torch.load(good_run / "checkpoints" / "last.ckpt", weights_only=True)
    name = next(iter(checkpoint["state_dict"]))
    checkpoint["state_dict"][name] = torch.full_like(checkpoint["state_dict"][name], float("nan"))
    poisoned = tmp_path / "nan.ckpt"
    torch.save(checkpoint, poisoned)
    assert evaluate_main(["--ckpt", str(poisoned)]) == 2
    assert f"holds weights that are not finite (NaN or infinity in {name})" in only_error_line(capsys)
    args = tiny_sine_run(tmp_path / "resumed", "maml", 6, "--ckpt_path", str(poisoned))
    assert train_main(args) == 2
    assert "holds weights that are not finite" in only_error_line(capsys)


def test_the_checkpoint_writer_refuses_non_finite_weights(tmp_path):
    from lit_meta.checkpoint_io import AtomicCheckpointIO
    from lit_meta.errors import RunStopped

    target = tmp_path / "last.ckpt"
    target.write_bytes(b"the previous checkpoint")
    with pytest.raises(RunStopped, match=r"state_dict\.w is not finite"):
        AtomicCheckpointIO().save_checkpoint({"state_dict": {"w": torch.tensor([1.0, float("inf")])}}, target)
    assert target.read_bytes() == b"the previous checkpoint"


# --------------------------------------------------------------------------------- atomic checkpoints
def test_kill_9_during_a_save_keeps_the_previous_checkpoint_and_resume_cleans_up(tmp_path):
    """The second save of last.ckpt (at step 6) is killed half-written.
    ``$TMPDIR`` is another filesystem where the machine has one (/dev/shm): nothing is written there."""
    other_filesystem = Path("/dev/shm")
    temp = (
        Path(
            os.environ.get("LIT_META_TEST_TMPDIR", "")
            or (other_filesystem if other_filesystem.is_dir() else tmp_path)
        )
        / f"lit-meta-tmpdir-{os.getpid()}"
    )
    temp.mkdir()
    run_dir = tmp_path / "run"
    args = tiny_sine_run(run_dir, "fomaml", 9)
    killed = run_script(HELPERS, "kill", "2", *args, env={"TMPDIR": str(temp)})
    assert killed.returncode == -signal.SIGKILL
    last = run_dir / "checkpoints" / "last.ckpt"
    assert step_of(last) == 3 and load_checkpoint(last)
    assert len(partial_files(run_dir / "checkpoints")) == 1  # what a kill -9 cannot clean up
    assert not list(temp.iterdir())
    temp.rmdir()

    assert train_main([*args, "--ckpt_path", "last"]) == 0
    assert step_of(last) == 9
    assert not partial_files(run_dir)
    assert sorted(path.name for path in (run_dir / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]


@pytest.mark.parametrize(
    ("fault", "reason"), [("enospc", "No space left on device"), ("eacces", "Permission denied")]
)
def test_the_first_failed_save_stops_the_run_and_keeps_the_previous_checkpoint(
    fault, reason, tmp_path, capsys, monkeypatch
):
    from .reliability_helpers import failing_atomic_write

    monkeypatch.setattr("lit_meta.checkpoint_io.atomic_write", failing_atomic_write(fault, 2))
    run_dir = tmp_path / "run"
    assert train_main(tiny_sine_run(run_dir, "fomaml", 9)) == 3
    captured = capsys.readouterr()
    lines = error_lines(captured.err)
    assert len(lines) == 1, captured.err[-2000:]
    last = run_dir / "checkpoints" / "last.ckpt"
    assert lines[0] == (
        f"error: checkpoint {last} could not be written ({reason}); "
        "the checkpoint already there is kept and training stopped"
    )
    assert step_of(last) == 3 and load_checkpoint(last)
    assert not partial_files(run_dir)
    assert "last checkpoint:" not in captured.out  # no claim of a checkpoint that was not written


def _mount(*args: str) -> bool:
    return subprocess.run(["mount", *args], capture_output=True).returncode == 0


@pytest.fixture
def small_disk(tmp_path):
    """A real 1 MiB filesystem (tmpfs), to fill up."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if not _mount("-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)):
        pytest.skip("this machine does not allow mounting a size-limited tmpfs (the injected ENOSPC runs)")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=False)


def test_a_full_disk_stops_the_run_and_loses_nothing(good_run, small_disk, capsys):
    run_dir = copy_run(good_run, small_disk / "run")
    before = (run_dir / "checkpoints" / "last.ckpt").read_bytes()
    free = os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_frsize
    (small_disk / "filler").write_bytes(b"\0" * (free - 24 * 1024))  # room for logs, not a checkpoint
    assert train_main(tiny_sine_run(run_dir, "maml", 9, "--ckpt_path", "last")) == 3
    line = only_error_line(capsys)
    assert line.startswith("error: checkpoint ") and "(No space left on device)" in line
    assert (run_dir / "checkpoints" / "last.ckpt").read_bytes() == before
    assert not partial_files(run_dir)


# ---------------------------------------------------------------------------------- run-directory lock
def test_one_fit_per_run_directory_and_a_dead_process_never_blocks(tmp_path, capsys):
    run_dir = tmp_path / "run"
    long_run = tiny_sine_run(run_dir, "fomaml", 1_000_000)
    first = subprocess.Popen(
        [sys.executable, str(ROOT / "train.py"), *long_run],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        last = run_dir / "checkpoints" / "last.ckpt"
        deadline = time.monotonic() + 120
        while not (last.is_file() and (run_dir / "run.lock.owner").is_file()):
            assert first.poll() is None and time.monotonic() < deadline
            time.sleep(0.2)
        for extra in ([], ["--ckpt_path", "last"]):
            assert train_main([*tiny_sine_run(run_dir, "fomaml", 9), *extra]) == 2
            line = only_error_line(capsys)
            assert f"{run_dir} is in use by another training process (process {first.pid} on " in line
            assert line.endswith("; wait for it to end or choose another --run_dir")
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    step = step_of(last)
    assert train_main(tiny_sine_run(run_dir, "fomaml", step + 2, "--ckpt_path", "last")) == 0
    assert step_of(last) == step + 2
    assert not (run_dir / "run.lock.owner").exists()


def test_a_refused_fit_leaves_no_directory_behind(tmp_path, capsys):
    run_dir = tmp_path / "new"
    assert train_main(tiny_sine_run(run_dir, "maml", 3, "--model.init_args.inner_steps", "0")) == 2
    assert only_error_line(capsys) == "error: inner_steps must be positive, got 0"
    assert not run_dir.exists()
    assert train_main(tiny_sine_run(run_dir, "maml", 3, "--ckpt_path", "last")) == 2
    assert "there is no last.ckpt to resume from" in only_error_line(capsys)
    assert not run_dir.exists()


# ------------------------------------------------------------------------------------ moved run folder
def checkpoint_state(run_dir: Path) -> dict:
    """The state of the ModelCheckpoint callback stored in ``last.ckpt``."""
    callbacks = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["callbacks"]
    return next(state for name, state in callbacks.items() if "Checkpoint" in name)


def test_a_moved_run_directory_resumes_into_last_ckpt(good_run, tmp_path):
    moved = copy_run(good_run, tmp_path / "elsewhere")
    score_before = float(checkpoint_state(moved)["best_model_score"])
    assert train_main(tiny_sine_run(moved, "maml", 6, "--ckpt_path", "last")) == 0
    assert sorted(path.name for path in (moved / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]
    assert step_of(moved / "checkpoints" / "last.ckpt") == 6
    state = checkpoint_state(moved)
    assert state["best_model_path"] == str(moved / "checkpoints" / "best.ckpt")
    assert state["last_model_path"] == str(moved / "checkpoints" / "last.ckpt")
    assert float(state["best_model_score"]) == min(score_before, float(state["current_score"]))
    assert train_main(tiny_sine_run(moved, "maml", 9, "--ckpt_path", "last")) == 0
    assert step_of(moved / "checkpoints" / "last.ckpt") == 9


def test_a_run_started_from_another_runs_checkpoint_keeps_its_own_best(good_run, tmp_path):
    """Resuming run A's checkpoint into a new directory B must not carry A's best score over as B's: B
    would then write best.ckpt only if it beat A, and could end with none."""
    checkpoint = torch.load(good_run / "checkpoints" / "last.ckpt", weights_only=True)
    key = next(name for name in checkpoint["callbacks"] if "Checkpoint" in name)
    checkpoint["callbacks"][key]["best_model_score"] = torch.tensor(-1e9)  # unbeatable
    checkpoint["callbacks"][key]["best_k_models"] = {
        path: torch.tensor(-1e9) for path in checkpoint["callbacks"][key]["best_k_models"]
    }
    torch.save(checkpoint, tmp_path / "a.ckpt")
    branch = tmp_path / "branch"
    assert train_main(tiny_sine_run(branch, "maml", 6, "--ckpt_path", str(tmp_path / "a.ckpt"))) == 0
    assert (branch / "checkpoints" / "best.ckpt").is_file()
    assert checkpoint_state(branch)["best_model_path"] == str(branch / "checkpoints" / "best.ckpt")


# ---------------------------------------------------------------------------------- damaged checkpoints
def _flip_bytes_in_weights(source: Path, target: Path) -> None:
    data = bytearray(source.read_bytes())
    with zipfile.ZipFile(source) as archive:
        tensors = [info for info in archive.infolist() if "/data/" in info.filename]
        entry = max(tensors, key=lambda info: info.file_size)  # the largest tensor's bytes
    start = entry.header_offset + 30 + len(entry.filename.encode()) + len(entry.extra)
    middle = start + entry.file_size // 2
    data[middle : middle + 4] = b"\xff\xff\xff\xff"
    target.write_bytes(bytes(data))


def test_damaged_truncated_and_foreign_files_are_refused(good_run, tmp_path, capsys):
    damaged = tmp_path / "damaged.ckpt"
    _flip_bytes_in_weights(good_run / "checkpoints" / "last.ckpt", damaged)
    torch.load(damaged, weights_only=True)  # control: torch itself notices nothing
    assert evaluate_main(["--ckpt", str(damaged)]) == 2
    assert "is damaged: its entry " in only_error_line(capsys)
    assert train_main(tiny_sine_run(tmp_path / "r", "maml", 6, "--ckpt_path", str(damaged))) == 2
    assert "is damaged" in only_error_line(capsys)

    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes((good_run / "checkpoints" / "last.ckpt").read_bytes()[:20000])
    empty = tmp_path / "empty.ckpt"
    empty.write_bytes(b"")
    for path in (truncated, empty):
        assert evaluate_main(["--ckpt", str(path)]) == 2
        assert f"checkpoint {path} is corrupt or not a checkpoint at all" in only_error_line(capsys)

    assert evaluate_main(["--ckpt", str(tmp_path)]) == 2
    assert only_error_line(capsys) == f"error: checkpoint {tmp_path} is a directory, not a checkpoint file"


def test_a_config_file_given_as_checkpoint_gets_no_unsafe_advice(capsys):
    assert evaluate_main(["--ckpt", str(ROOT / "configs/sine_reptile.yaml")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(
        f"error: checkpoint {ROOT / 'configs/sine_reptile.yaml'} is corrupt or not a checkpoint at all: "
        "it is not a PyTorch checkpoint archive"
    )
    assert "weights_only" not in err and "False" not in err


# ------------------------------------------------------------------------------- one sentence, exit 2
@pytest.mark.parametrize(
    ("override", "message"),
    [
        (["--trainer.val_check_interval", "0"], "error: trainer.val_check_interval must be positive, got 0"),
        (["--trainer.log_every_n_steps", "0"], "error: trainer.log_every_n_steps must be positive, got 0"),
        (["--trainer.accelerator", "tpu"], "error: the trainer settings cannot run here: "),
        (
            ["--checkpoint.enable_version_counter", "true"],
            "error: checkpoint.enable_version_counter must stay",
        ),
    ],
)
def test_trainer_settings_that_used_to_raise_tracebacks(override, message, tmp_path, capsys):
    assert train_main([*tiny_sine_run(tmp_path / "run", "maml", 3), *override]) == 2
    assert only_error_line(capsys).startswith(message)
    assert not (tmp_path / "run").exists()


def test_a_run_dir_that_is_a_file(tmp_path, capsys):
    existing = tmp_path / "notes.txt"
    existing.write_text("mine")
    assert train_main(tiny_sine_run(existing, "maml", 3)) == 2
    assert only_error_line(capsys) == f"error: --run_dir {existing} is a file, not a directory"
    assert existing.read_text() == "mine"


@pytest.fixture
def read_only(tmp_path):
    """A directory nobody may write into: by permissions, or (for root, whom permissions do not stop)
    a read-only bind mount."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    if not (_mount("--bind", str(folder), str(folder)) and _mount("-o", "remount,ro,bind", str(folder))):
        pytest.skip("running as root on a machine that does not allow a read-only bind mount")
    yield folder
    subprocess.run(["umount", "-l", str(folder)], check=False)


def test_read_only_run_directories_and_outputs(read_only, good_run, tmp_path, capsys):
    for run_dir in (read_only, read_only / "child"):
        assert train_main(tiny_sine_run(run_dir, "maml", 3)) == 2
        line = only_error_line(capsys)
        assert line.startswith(f"error: the run directory {run_dir} cannot be written (")
    last = str(good_run / "checkpoints" / "last.ckpt")
    assert evaluate_main(["--ckpt", last, "--tasks", "2", "--out", str(read_only)]) == 2
    assert only_error_line(capsys).startswith(f"error: the results cannot be written to {read_only} (")


def test_evaluation_arguments_that_used_to_raise_tracebacks(good_run, tmp_path, capsys):
    last = str(good_run / "checkpoints" / "last.ckpt")
    assert evaluate_main(["--ckpt", last, "--seed", "-1"]) == 2
    assert only_error_line(capsys) == "error: seed must be zero or positive, got -1"
    a_file = tmp_path / "report.txt"
    a_file.write_text("mine")
    assert evaluate_main(["--ckpt", last, "--tasks", "2", "--out", str(a_file)]) == 2
    assert only_error_line(capsys).startswith(f"error: the results cannot be written to {a_file} (")
    assert a_file.read_text() == "mine"


def test_a_second_config_file_is_named_after_the_subcommand(good_run, tmp_path):
    run_dir = copy_run(good_run, tmp_path / "run")
    assert train_main(tiny_sine_run(run_dir, "maml", 4, "--ckpt_path", "last")) == 0
    extra = [path.name for path in run_dir.glob("config.*.yaml")]
    assert len(extra) == 1 and extra[0].startswith("config.fit-"), extra


# ------------------------------------------------------------------------------------------ SB3 export
class _RunsCode:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_load_policy_never_runs_code_from_a_crafted_export(tmp_path):
    import base64
    import json

    import cloudpickle
    import gymnasium as gym
    from stable_baselines3 import PPO

    from lit_meta.sb3 import export_policy, load_policy

    model = PPO("MlpPolicy", "CartPole-v1", policy_kwargs={"net_arch": [16]}, device="cpu", seed=0)
    honest = export_policy(model, tmp_path / "meta_policy.zip")
    crafted = tmp_path / "crafted.zip"
    marker = tmp_path / "pwned"
    with zipfile.ZipFile(honest) as source, zipfile.ZipFile(crafted, "w") as target:
        for info in source.infolist():
            content = source.read(info)
            if info.filename == "data":
                data = json.loads(content)
                payload = base64.b64encode(cloudpickle.dumps(_RunsCode(marker))).decode()
                data["observation_space"][":serialized:"] = payload
                content = json.dumps(data).encode()
            target.writestr(info, content)

    policy = load_policy(crafted)
    assert not marker.exists()
    observations = [gym.make("CartPole-v1").reset(seed=seed)[0] for seed in range(5)]
    for observation in observations:
        assert (
            policy.predict(observation, deterministic=True)[0]
            == model.predict(observation, deterministic=True)[0]
        )
    # control: SB3's own loader runs the payload (then fails on what it returned), which is why the
    # README points to load_policy
    with pytest.raises(ValueError, match="not a Gymnasium space"):
        PPO.load(crafted, device="cpu")
    assert marker.exists()


@pytest.mark.parametrize(
    ("algorithm", "env"),
    [("PPO", "CartPole-v1"), ("A2C", "CartPole-v1"), ("DQN", "CartPole-v1"), ("SAC", "Pendulum-v1"),
     ("TD3", "Pendulum-v1")],
)  # fmt: skip
def test_load_policy_rebuilds_every_kind_of_export(algorithm, env, tmp_path):
    import gymnasium as gym
    import numpy as np

    from lit_meta.sb3 import SB3_ALGORITHMS, export_policy, load_policy

    kwargs = {"net_arch": [16], "activation_fn": torch.nn.Tanh}
    model = SB3_ALGORITHMS[algorithm]("MlpPolicy", env, policy_kwargs=kwargs, device="cpu", seed=0)
    policy = load_policy(export_policy(model, tmp_path / "meta_policy.zip"))
    assert type(policy) is type(model.policy)
    for name, tensor in model.policy.state_dict().items():
        assert torch.equal(policy.state_dict()[name], tensor), name
    for seed in range(3):
        observation = gym.make(env).reset(seed=seed)[0]
        expected = model.predict(observation, deterministic=True)[0]
        assert np.array_equal(policy.predict(observation, deterministic=True)[0], expected)


def test_load_policy_of_an_archive_without_a_description(tmp_path):
    import gymnasium as gym
    from stable_baselines3 import SAC

    from lit_meta.errors import ConfigError
    from lit_meta.sb3 import load_policy

    model = SAC("MlpPolicy", "Pendulum-v1", policy_kwargs={"net_arch": [16]}, device="cpu", seed=0)
    model.save(tmp_path / "plain.zip")  # SB3's own save, as lit-meta wrote before
    with pytest.raises(ConfigError, match="has no lit-meta description of its policy; pass algorithm="):
        load_policy(tmp_path / "plain.zip")
    env = gym.make("Pendulum-v1")
    policy = load_policy(tmp_path / "plain.zip", "SAC", env, policy_kwargs={"net_arch": [16]})
    observation = env.reset(seed=0)[0]
    assert (
        policy.predict(observation, deterministic=True)[0]
        == model.predict(observation, deterministic=True)[0]
    ).all()
