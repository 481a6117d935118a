"""Shared helpers: tiny task batches and running the command-line entry points."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lit_meta.datamodules import SineTasks
from lit_meta.tasks import TaskBatch

ROOT = Path(__file__).resolve().parents[1]
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
    env = {**os.environ, "PYTHONWARNINGS": "ignore", **(env or {})}
    return subprocess.run(
        [sys.executable, str(ROOT / script), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
