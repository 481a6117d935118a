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


@pytest.fixture
def sine_tasks() -> TaskBatch:
    """Three sine tasks with 6 support and 5 query points each."""
    return SineTasks().sample(3, torch.Generator().manual_seed(7), shots=6, queries=5)


def run_script(script: str, *args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """Run ``python <script> <args>`` from the repository as a user would, capturing its output."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run(
        [sys.executable, str(ROOT / script), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
