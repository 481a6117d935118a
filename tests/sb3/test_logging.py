"""Learners lit-meta builds log without files: SB3's default logger makes an empty ``SB3-<time>``
folder in the temp directory at every ``learn``, one per task and meta-step of a meta-training."""

import tempfile

import pytest
from stable_baselines3 import PPO

from lit_meta.sb3.meta_algorithm import folderless_logger
from tests.sb3.test_reptile_sb3 import CARTPOLE, reptile

TINY = {"n_steps": 32, "batch_size": 16, "n_epochs": 1, "policy_kwargs": {"net_arch": [8]}}


@pytest.fixture
def temp_dir(tmp_path, monkeypatch):
    """A temp directory of this test's own (others' runs may write into the shared one meanwhile)."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.delenv("SB3_LOGDIR", raising=False)
    assert tempfile.gettempdir() == str(tmp_path)
    return tmp_path


def sb3_folders(folder) -> list[str]:
    return sorted(path.name for path in folder.iterdir() if path.name.startswith("SB3-"))


def test_meta_training_and_adaptation_leave_no_sb3_folder(temp_dir):
    algorithm = reptile(PPO, CARTPOLE, TINY, meta_batch_size=2)
    algorithm.learn(1, progress_bar=False)
    env = CARTPOLE(seed=3)[0]
    algorithm.adapt(env, seed=3, timesteps=32).learn(32, reset_num_timesteps=False)
    assert sb3_folders(temp_dir) == []


def test_the_folderless_logger_is_what_keeps_the_temp_directory_clean(temp_dir):
    model = PPO("MlpPolicy", CARTPOLE(seed=0)[0], device="cpu", seed=0, **TINY)
    model.set_logger(folderless_logger())
    model.learn(32)
    assert sb3_folders(temp_dir) == []
    PPO("MlpPolicy", CARTPOLE(seed=0)[0], device="cpu", seed=0, **TINY).learn(32)  # SB3's default
    assert len(sb3_folders(temp_dir)) == 1  # the check above would have seen one
