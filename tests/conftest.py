"""Shared helpers: tiny task batches and running the command-line entry points."""

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

AVX2_KERNELS = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "TORCHINDUCTOR_CACHE_DIR": os.path.join(tempfile.gettempdir(), "lit-meta-tests-inductor-avx2"),
}
"""Tests compute with torch's and oneDNN's AVX2 kernels, in their process and in the commands they start
(set before torch loads): the parameters tiny runs end with (tests/reference_runs.py) were recorded on
an AVX2 CPU, and an AVX-512 CPU rounds convolutions and reductions otherwise, which Adam turns into whole
steps on near-zero gradients (a convolution's bias before batch norm). torch.compile's kernels go to a
cache of their own: kernels compiled for another CPU capability must not be reused. Ignored where the
CPU is not x86."""
for _name, _value in AVX2_KERNELS.items():
    os.environ.setdefault(_name, _value)

import pytest  # noqa: E402
import torch  # noqa: E402

from lit_meta.datamodules import SineTasks  # noqa: E402
from lit_meta.tasks import TaskBatch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ONE_THREAD = {"OMP_NUM_THREADS": "1"}
"""Tests compute with one thread, in their process and in the commands they start: the pytest-xdist
workers share the cores without oversubscription, and results (tests/reference_runs.py records the
parameters tiny runs end with; Adam turns float noise in near-zero gradients into whole steps) do not
depend on how many cores a machine has."""
torch.set_num_threads(1)
QUIET = ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]
OMNIGLOT_CANDIDATES = [
    Path(os.environ.get("LIT_META_OMNIGLOT", ROOT.parent / "shared" / "data" / "omniglot")),
    Path("/work/shared/data/omniglot"),
]
OMNIGLOT_ROOT = next(
    (path for path in OMNIGLOT_CANDIDATES if (path / "images_background_small1.zip").is_file()), None
)
requires_omniglot = pytest.mark.skipif(
    OMNIGLOT_ROOT is None,
    reason="the Omniglot subset (images_background_small1/2.zip) is not in ../shared/data/omniglot; "
    "set LIT_META_OMNIGLOT to its folder",
)


@pytest.fixture(scope="session")
def omniglot_cache(tmp_path_factory) -> Path:
    """One decoded-image cache for the whole session (the shared data folder is read-only)."""
    return tmp_path_factory.mktemp("omniglot-cache")


@pytest.fixture(scope="session")
def image_data(tmp_path_factory) -> Path:
    """The tiny mini-ImageNet and CIFAR-100 datasets of the image configs (tests/image_fixtures.py)."""
    from tests.reference_runs import image_datasets

    return image_datasets(tmp_path_factory.mktemp("image-data"))


@pytest.fixture(scope="session")
def omniglot(omniglot_cache):
    """The small Omniglot subset, 5-way 1-shot with 3 queries, split by alphabet."""
    from lit_meta.datamodules import OmniglotDataModule

    return OmniglotDataModule(
        root=str(OMNIGLOT_ROOT), cache_dir=str(omniglot_cache), ways=5, shots=1, queries=3, meta_batch_size=4
    )


@pytest.fixture
def sine_tasks() -> TaskBatch:
    """Three sine tasks with 6 support and 5 query points each."""
    return SineTasks().sample(3, torch.Generator().manual_seed(7), shots=6, queries=5)


def run_script(
    script: str, *args: str, cwd: Path = ROOT, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run ``python <script> <args>`` from the repository as a user would (with ``env`` added to the
    environment), capturing its output."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore", **ONE_THREAD, **(env or {})}
    return subprocess.run(
        [sys.executable, str(ROOT / script), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )


def tiny_run(name: str, run_dir: Path, steps: int, *extra: str, omniglot_cache: Path | None = None) -> list:
    """``fit`` arguments running ``configs/<name>.yaml`` tiny (tests/reference_runs.py), ``steps`` steps."""
    from tests.reference_runs import tiny_run_args

    return tiny_run_args(
        name, run_dir, "--trainer.max_steps", str(steps), *extra, omniglot_cache=omniglot_cache
    )


def train(args: list[str]) -> None:
    """Run the training command line in this process; it must succeed."""
    from lit_meta.cli import main as train_main

    assert train_main(args) == 0


def refused(args: list[str], capsys) -> str:
    """Run the training command line on bad input: it must exit with status 2 after one error line,
    which is returned."""
    from lit_meta.cli import main as train_main

    assert train_main(args) == 2
    return only_error_line(capsys)


def train_tiny_config(name: str, run_dir: Path, omniglot_cache: Path | None = None) -> dict:
    """Train ``configs/<name>.yaml`` tiny in a subprocess, as a user would (``train.py``); it must end with
    the parameters recorded for it (tests/reference_runs.py). Returns its last checkpoint."""
    from tests.reference_runs import assert_parameters_as_recorded, tiny_run_args

    trained = run_script("train.py", *tiny_run_args(name, run_dir, omniglot_cache=omniglot_cache))
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert_parameters_as_recorded(name, run_dir / "checkpoints" / "last.ckpt")
    return torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)


def evaluate_last_checkpoint(run_dir: Path, *args: str) -> dict:
    """Run ``evaluate.py`` on the run's last checkpoint as a user would; it must succeed. Returns the
    report it wrote (the run's only one)."""
    evaluated = run_script("evaluate.py", "--ckpt", str(run_dir / "checkpoints" / "last.ckpt"), *args)
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    return json.loads(next((run_dir / "evaluation").glob("*.json")).read_text())


def only_error_line(capsys) -> str:
    """The one ``error...:`` line a failed command printed on stderr (there must be exactly one)."""
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error")]
    assert len(lines) == 1, lines
    return lines[0]


def assert_same_state(expected: object, found: object, where: str = "checkpoint") -> None:
    """Two checkpoint entries are equal bit for bit, tensors included, at any depth."""
    if isinstance(expected, torch.Tensor):
        assert isinstance(found, torch.Tensor) and torch.equal(expected, found), where
    elif isinstance(expected, dict):
        assert isinstance(found, dict) and expected.keys() == found.keys(), where
        for key, value in expected.items():
            assert_same_state(value, found[key], f"{where}.{key}")
    elif isinstance(expected, list | tuple):
        assert isinstance(found, list | tuple) and len(expected) == len(found), where
        for index, (value, other) in enumerate(zip(expected, found, strict=True)):
            assert_same_state(value, other, f"{where}[{index}]")
    else:
        assert expected == found or (expected != expected and found != found), where  # NaN equals NaN


NOT_TRAINING_STATE = ("callbacks", "hyper_parameters", "datamodule_hyper_parameters", "epoch", "loops")
"""Checkpoint entries that name the run's own directory or command line, or count Lightning's own loop
progress (which a resumed run counts its own way); the training stream's position is compared apart."""


def assert_resume_is_exact(
    tiny_run, tmp_path: Path, batches: int = 2, stop_by: str = "epochs"
) -> tuple[Path, Path]:
    """Train ``tiny_run(run_dir)`` straight for ``2 * batches`` steps, and again stopped after ``batches``
    steps and resumed from ``last.ckpt``: the resumed run must end with exactly the state of the straight
    one (weights, optimizer, schedules, task stream, random generators, the module's own extra state),
    and not with the weights it was stopped with. Returns both run directories.

    ``stop_by="epochs"`` stops the first part at the end of an epoch of ``batches`` steps (the total of
    ``trainer.max_steps`` stays, so schedules annealed over it agree); ``"steps"`` stops it with
    ``trainer.max_steps``."""
    straight, interrupted = tmp_path / "straight", tmp_path / "interrupted"
    if stop_by == "epochs":
        epochs = lambda n: ["--trainer.max_epochs", str(n), "--trainer.limit_train_batches", str(batches)]  # noqa: E731
    else:
        epochs = lambda n: ["--trainer.max_steps", str(n * batches)]  # noqa: E731
    train([*tiny_run(straight), *epochs(2)])
    train([*tiny_run(interrupted), *epochs(1)])
    halfway = torch.load(interrupted / "checkpoints" / "last.ckpt", weights_only=True)
    assert halfway["global_step"] == batches
    train([*tiny_run(interrupted), *epochs(2), "--ckpt_path", "last"])
    expected = torch.load(straight / "checkpoints" / "last.ckpt", weights_only=True)
    resumed = torch.load(interrupted / "checkpoints" / "last.ckpt", weights_only=True)
    assert expected["global_step"] == resumed["global_step"] == 2 * batches
    for key in expected.keys() - set(NOT_TRAINING_STATE):
        assert_same_state(expected[key], resumed[key], key)
    stream = lambda c: c["loops"]["fit_loop"]["state_dict"]["combined_loader"]  # noqa: E731
    assert_same_state(stream(expected), stream(resumed), "training stream")
    weights = lambda c: [v for v in c["state_dict"].values() if isinstance(v, torch.Tensor)]  # noqa: E731
    assert any(not torch.equal(a, b) for a, b in zip(weights(halfway), weights(resumed), strict=True))
    return straight, interrupted
