"""Every shipped config, run tiny: the one table of test-sized overrides, and the parameters such a run
ends with, recorded so that a refactoring can prove it changed no training result.

``python -m tests.reference_runs record`` runs every config tiny (in one process, with the config's own
seed) and writes the fingerprint of the parameters each run ends with to
``tests/fixtures/reference_parameters.json``, and the small runs' ``last.ckpt`` to
``tests/fixtures/checkpoints/`` (checkpoints users could have on disk: they must keep loading, resuming
and evaluating). Re-record only for a change that is meant to change what training computes, and say
so in the commit. The fixtures in the repository were recorded by commit f396cae, before the
consolidation of the code into its present rooms: every config test checks that training still ends
with those parameters, and tests/test_checkpoint_compatibility.py resumes and evaluates those
checkpoints (a later recording never replaces them). The parameters were recorded again with one torch
thread (as every test computes, tests/conftest.py) when the image configs were added; the code then still
reproduced f396cae's recording with two threads.

Some CPUs round otherwise even with torch's and oneDNN's AVX2 kernels (tests/conftest.py): on an Intel CPU
with AVX512-FP16 the convolutional and MuJoCo configs end a few rounding steps apart, which Adam and
chaotic dynamics turn into other parameters. ``record --other_cpu`` adds what such a CPU ends with to
``tests/fixtures/reference_parameters_other_cpus.json`` (with the CPU's name), and a run passes if it ends
with the parameters of any recording: a change to what training computes changes them all.
"""

import json
import shutil
import sys
import tempfile
from pathlib import Path

import torch

from tests.conftest import OMNIGLOT_ROOT, QUIET, ROOT

FIXTURES = ROOT / "tests" / "fixtures"
REFERENCE_PARAMETERS = FIXTURES / "reference_parameters.json"
OTHER_CPU_PARAMETERS = FIXTURES / "reference_parameters_other_cpus.json"
"""Per config, ``[{"cpu": <model name>, "parameters": <fingerprint>}]``: recordings on CPUs that round
otherwise (module docstring)."""
LEGACY_CHECKPOINTS = FIXTURES / "checkpoints"
LEGACY = ("sine_maml", "sine_reptile", "nav2d_maml_rl", "bandits_rl2", "cartpole_sb3_reptile",
          "pendulum_varshare_sac")  # fmt: skip
"""The configs whose tiny checkpoints are kept as fixtures (one per module, a few kB each; PEARL's, kept
since its posterior_covariance was added, is tests/fixtures/checkpoints/nav2d_pearl_diagonal_only.ckpt)."""

SINE = [
    "--trainer.max_steps", "4",
    "--trainer.val_check_interval", "2",
    "--trainer.log_every_n_steps", "2",
    "--data.init_args.val_tasks", "4",
    "--data.init_args.test_tasks", "4",
    "--data.init_args.eval_batch_size", "2",
    "--data.init_args.meta_batch_size", "2",
]  # fmt: skip
OMNIGLOT = [
    "--trainer.max_steps", "2",
    "--trainer.val_check_interval", "2",
    "--trainer.log_every_n_steps", "1",
    "--data.init_args.val_tasks", "2",
    "--data.init_args.test_tasks", "2",
    "--data.init_args.eval_batch_size", "2",
    "--data.init_args.meta_batch_size", "2",
    "--model.init_args.eval_steps", "2",
]  # fmt: skip
OMNIGLOT_PROTONET = OMNIGLOT[:-2]  # Prototypical Networks adapt without steps
IMAGES = [*OMNIGLOT_PROTONET, "--data.init_args.queries", "2", "--data.init_args.meta_batch_size", "1"]
"""Datasets built by tests/image_fixtures.py (a few small images per class)."""
IMAGE_RUNS = {
    "maml": [*IMAGES, "--model.init_args.eval_steps", "2"],
    "fomaml": [*IMAGES, "--model.init_args.eval_steps", "2"],
    "anil": [*IMAGES, "--model.init_args.eval_steps", "2"],
    "reptile": [*IMAGES, "--model.init_args.eval_steps", "2", "--data.init_args.train_shots", "2"],
    "protonet": [*IMAGES, "--data.init_args.train_ways", "5"],
}
MAML_RL = [
    "--trainer.max_steps", "2",
    "--trainer.val_check_interval", "2",
    "--data.init_args.meta_batch_size", "2",
    "--data.init_args.val_tasks", "1",
    "--model.init_args.episodes_per_task", "2",
    "--model.init_args.eval_steps", "1",
    "--model.init_args.eval_episodes", "2",
    "--model.init_args.hidden_sizes", "[16]",
]  # fmt: skip
RL2 = [
    "--trainer.max_steps", "2",
    "--trainer.val_check_interval", "2", "--trainer.log_every_n_steps", "1",
    "--data.init_args.meta_batch_size", "8",
    "--data.init_args.val_tasks", "2",
    "--model.init_args.hidden_size", "16",
    "--model.init_args.minibatches", "2",
    "--model.init_args.ppo_epochs", "2",
    "--model.init_args.eval_episodes", "2",
]  # fmt: skip
SB3 = [
    "--trainer.max_steps", "2",
    "--trainer.val_check_interval", "2",
    "--data.init_args.meta_batch_size", "2",
    "--data.init_args.val_tasks", "1",
    "--model.init_args.eval_steps", "1",
    "--model.init_args.eval_episodes", "1",
]  # fmt: skip
VARSHARE_SAC = [
    "--trainer.max_steps", "4",
    "--trainer.val_check_interval", "2",
    "--data.init_args.train_tasks", "4",
    "--model.init_args.hidden_sizes", "[16]",
    "--model.init_args.batch_size", "32",
    "--model.init_args.learning_starts", "170",  # 30 updates per episode: a step of each task
    "--model.init_args.eval_steps", "1",
]  # fmt: skip
PEARL = [
    "--trainer.max_steps", "3",
    "--trainer.val_check_interval", "2",
    "--data.init_args.train_tasks", "4",
    "--data.init_args.val_tasks", "1",
    "--data.init_args.test_tasks", "2",
    "--model.init_args.hidden_sizes", "[16]",
    "--model.init_args.encoder_hidden_sizes", "[16]",
    "--model.init_args.initial_episodes", "1",
    "--model.init_args.tasks_per_iteration", "2",
    "--model.init_args.prior_episodes", "1",
    "--model.init_args.posterior_episodes", "1",
    "--model.init_args.gradient_steps", "5",
    "--model.init_args.task_batch_size", "2",
    "--model.init_args.context_size", "8",
    "--model.init_args.batch_size", "16",
    "--model.init_args.eval_steps", "2",
    "--model.init_args.eval_episodes", "2",
]  # fmt: skip
SHORT_META_WORLD = ["--data.init_args.env_kwargs", '{"env_name": "reach-v3", "max_episode_steps": 10}']
"""Meta-World episodes of 10 steps (gym.make's time limit) instead of 500, and no more test goals than a
tiny evaluation scores."""

TINY_RUNS: dict[str, list[str]] = {
    **{f"sine_{name}": SINE for name in ("maml", "fomaml", "metasgd", "reptile")},
    **{f"omniglot_{name}_5w1s": OMNIGLOT for name in ("maml", "fomaml", "metasgd", "reptile")},
    **{f"omniglot_{name}": OMNIGLOT for name in ("maml_5w5s", "maml_20w1s", "reptile_5w5s", "anil_5w1s")},
    **{f"omniglot_protonet_{name}": OMNIGLOT_PROTONET for name in ("5w1s", "20w1s")},
    **{name: MAML_RL for name in ("nav2d_maml_rl", "nav2d_pretrained_rl", "cheetah_vel_maml_rl")},
    "bandits_rl2": RL2,
    **{f"bandits{setting}_rl2": RL2 for setting in ("10x100", "10x10", "5x100")},
    "nav2d_rl2": [*RL2, "--data.init_args.meta_batch_size", "4"],
    "cheetah_vel_rl2": [*RL2, "--data.init_args.meta_batch_size", "4"],
    **{f"tabular{n}_rl2": [*RL2, "--model.init_args.episodes_per_trial", "3"] for n in (10, 25)},
    "cartpole_sb3_reptile": [
        *SB3,
        "--model.init_args.inner_timesteps",
        "128",
        "--model.init_args.eval_step_timesteps",
        "128",
    ],
    "pendulum_sb3_reptile": [
        *SB3,
        "--model.init_args.inner_updates",
        "20",
        "--model.init_args.eval_step_timesteps",
        "150",
    ],
    "pendulum_varshare_sac": VARSHARE_SAC,
    **{name: PEARL for name in ("nav2d_pearl", "cheetah_vel_pearl")},
    "ml1_reach_pearl": [*PEARL, *SHORT_META_WORLD],
    "ml1_reach_maml_rl": [*MAML_RL, *SHORT_META_WORLD],
    "ml1_reach_rl2": [*RL2, "--data.init_args.meta_batch_size", "4", *SHORT_META_WORLD],
    **{
        f"miniimagenet_{algorithm}_5w{shots}s": IMAGE_RUNS[algorithm]
        for algorithm in ("maml", "fomaml", "anil", "reptile", "protonet")
        for shots in (1, 5)
    },
    "cifarfs_protonet_5w1s": IMAGES,
    "fc100_protonet_5w5s": IMAGES,
}
"""Overrides that make each shipped config (``configs/<name>.yaml``) run in seconds."""


IMAGE_DATASETS = {"miniimagenet_": "mini-imagenet", "cifarfs_": "cifar-100", "fc100_": "cifar-100"}
"""Config name prefix -> the folder of :func:`image_datasets` its tiny run reads."""


def image_datasets(folder: Path) -> Path:
    """Build (once) the tiny on-disk datasets of the image configs in ``folder``: mini-ImageNet in
    learn2learn's pickle layout and CIFAR-100 in torchvision's."""
    from tests.image_fixtures import make_cifar100, make_miniimagenet_pickles

    if not (folder / "ready").exists():
        make_miniimagenet_pickles(folder / "mini-imagenet", images_per_class=8)  # 5 shots + 2 queries
        make_cifar100(folder / "cifar-100", images_per_class=8)
        (folder / "ready").touch()
    return folder


def tiny_run_args(
    name: str,
    run_dir: Path,
    *extra: str,
    omniglot_cache: Path | None = None,
    image_data: Path | None = None,
) -> list[str]:
    """``fit`` arguments running ``configs/<name>.yaml`` tiny in ``run_dir`` (``extra`` appended);
    ``image_data`` is the folder of :func:`image_datasets` (the image configs' data)."""
    data = []
    prefix = next((p for p in IMAGE_DATASETS if name.startswith(p)), None)
    if prefix is not None:
        root = image_data / IMAGE_DATASETS[prefix]
        data = ["--data.init_args.root", str(root), "--data.init_args.cache_dir", str(image_data / "cache")]
    if name.startswith("omniglot_"):
        data = [
            "--data.init_args.root",
            str(OMNIGLOT_ROOT),
            "--data.init_args.cache_dir",
            str(omniglot_cache),
        ]
    config = ROOT / "configs" / f"{name}.yaml"
    return [
        "fit",
        "--config",
        str(config),
        "--run_dir",
        str(run_dir),
        *QUIET,
        *data,
        *TINY_RUNS[name],
        *extra,
    ]


def parameter_fingerprint(checkpoint: dict) -> dict[str, list[float]]:
    """Per floating-point tensor of the state dict (nested entries named by their path): its sum and its
    sum of squares, in float64."""
    found = {}

    def visit(prefix: str, value: object) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                visit(f"{prefix}.{key}" if prefix else str(key), item)
        elif isinstance(value, torch.Tensor) and value.is_floating_point():
            found[prefix] = [value.double().sum().item(), value.double().square().sum().item()]

    visit("", checkpoint["state_dict"])
    return found


def assert_parameters_as_recorded(name: str, checkpoint_path: Path) -> None:
    """The tiny run of ``name`` ended with the parameters the reference recording holds, or those of its
    recording on another CPU (module docstring)."""
    recorded = json.loads(REFERENCE_PARAMETERS.read_text())[name]
    found = parameter_fingerprint(torch.load(checkpoint_path, weights_only=True))
    assert sorted(found) == sorted(recorded), f"{name}: the state dict's entries changed"
    others = (
        json.loads(OTHER_CPU_PARAMETERS.read_text()).get(name, []) if OTHER_CPU_PARAMETERS.exists() else []
    )
    if not any(_first_difference(found, other["parameters"]) is None for other in others):
        difference = _first_difference(found, recorded)
        assert difference is None, (name, *difference)


def _first_difference(found: dict, recorded: dict) -> tuple[str, float, float] | None:
    """``(entry, found, recorded)`` of the first statistic that differs by more than 1e-5 (relative), or
    ``None``."""
    for key, values in recorded.items():
        for got, expected in zip(found[key], values, strict=True):
            if abs(got - expected) > 1e-5 * max(1.0, abs(expected)):
                return key, got, expected
    return None


def cpu_name() -> str:
    """The CPU's model name and its AVX-512 extensions, as /proc/cpuinfo gives them (Linux)."""
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    fields = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
    fields = {key.strip(): value.strip() for key, value in fields.items()}
    extensions = [flag for flag in fields.get("flags", "").split() if flag.startswith("avx512")]
    return f"{fields.get('model name', 'unknown CPU')} ({' '.join(extensions) or 'no AVX-512'})"


def record(names: list[str], other_cpu: bool = False) -> None:
    """Run each of ``names`` tiny and record the parameters it ends with: as the reference (and keep the
    legacy checkpoints), or (``other_cpu``) as what this CPU ends with where it rounds otherwise, only
    for the configs whose reference this CPU does not reproduce."""
    from lit_meta.cli import main as train_main

    LEGACY_CHECKPOINTS.mkdir(parents=True, exist_ok=True)
    recorded = json.loads(REFERENCE_PARAMETERS.read_text()) if REFERENCE_PARAMETERS.exists() else {}
    others = json.loads(OTHER_CPU_PARAMETERS.read_text()) if OTHER_CPU_PARAMETERS.exists() else {}
    with tempfile.TemporaryDirectory() as scratch:
        for name in names:
            run_dir = Path(scratch) / name
            images = image_datasets(Path(scratch) / "images")
            status = train_main(
                tiny_run_args(name, run_dir, omniglot_cache=Path(scratch) / "cache", image_data=images)
            )
            assert status == 0, f"{name} failed"
            last = run_dir / "checkpoints" / "last.ckpt"
            found = parameter_fingerprint(torch.load(last, weights_only=True))
            if other_cpu:
                assert name in recorded, f"{name} has no reference recording to differ from"
                other_cpus = [other for other in others.get(name, []) if other["cpu"] != cpu_name()]
                if _first_difference(found, recorded[name]) is not None:
                    other_cpus.append({"cpu": cpu_name(), "parameters": found})
                    print(f"recorded {name} for {cpu_name()}", flush=True)
                others[name] = other_cpus
            else:  # a new reference: what other CPUs ended with belongs to the old one
                recorded[name] = found
                others.pop(name, None)
                kept = LEGACY_CHECKPOINTS / f"{name}.ckpt"
                if name in LEGACY and not kept.exists():  # a kept checkpoint stays as its commit wrote it
                    shutil.copyfile(last, kept)
                REFERENCE_PARAMETERS.write_text(json.dumps(recorded, indent=1, sort_keys=True) + "\n")
                print(f"recorded {name}", flush=True)
            others = {key: value for key, value in others.items() if value}
            OTHER_CPU_PARAMETERS.write_text(json.dumps(others, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    if sys.argv[1:2] != ["record"]:
        sys.exit("usage: python -m tests.reference_runs record [--other_cpu] [config names]")
    other_cpu = "--other_cpu" in sys.argv[2:]
    record([name for name in sys.argv[2:] if name != "--other_cpu"] or sorted(TINY_RUNS), other_cpu)
