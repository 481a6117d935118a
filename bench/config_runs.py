"""Running a shipped config as ``python train.py fit --config ...`` does, for the benchmarks."""

import csv
import json
import sys
import time
from pathlib import Path

import filelock

from lit_meta.checkpoints import load_checkpoint
from lit_meta.cli import LitMetaCLI
from lit_meta.files import atomic_write_text
from lit_meta.registry import rebuild

ROOT = Path(__file__).resolve().parents[1]


def config_cli(config: str, run_dir: str, minutes: float, overrides: list[str]) -> LitMetaCLI:
    """The CLI of ``configs/<config>.yaml`` writing to ``run_dir``, without a progress bar, its wall clock
    capped at ``minutes``, with ``overrides``; built, not run."""
    sys.argv = sys.argv[:1]  # the CLI reads its arguments from ``args`` only
    hours, seconds = divmod(round(minutes * 60), 3600)
    return LitMetaCLI(
        args=["--config", str(ROOT / "configs" / f"{config}.yaml"), "--run_dir", run_dir,
              "--trainer.enable_progress_bar", "false",
              "--trainer.max_time", f"00:{hours:02d}:{seconds // 60:02d}:{seconds % 60:02d}", *overrides],
        run=False,
    )  # fmt: skip


def fit_and_reload(cli: LitMetaCLI, run_dir: str) -> tuple[object, object, float, int]:
    """Train ``cli``'s model, then rebuild it from its last checkpoint, as ``evaluate.py`` does:
    ``(module, datamodule, training seconds, iterations)``."""
    start = time.perf_counter()
    cli.trainer.fit(cli.model, cli.datamodule)
    seconds = time.perf_counter() - start
    module, datamodule = rebuild(load_checkpoint(f"{run_dir}/checkpoints/last.ckpt"), "the run")
    return module, datamodule, seconds, cli.trainer.global_step


def validation_curve(run_dir: str, metric: str = "val/return") -> list[dict[str, float]]:
    """``metric`` at each validation of the run in ``run_dir``, from its CSV log: ``[{step, value}]``."""
    with open(next(Path(run_dir, "csv").glob("version_*/metrics.csv"))) as file:
        return [
            {"step": int(row["step"]), "value": float(row[metric])}
            for row in csv.DictReader(file)
            if row.get(metric)
        ]


def merge_record(path: Path, key: str, record: dict) -> dict:
    """Store ``record`` as ``key`` of the JSON object at ``path``, re-read just before writing, so that two
    benchmarks writing other keys of the same file meanwhile keep theirs; returns the whole object."""
    with filelock.FileLock(f"{path}.lock"):  # the lock bench/omniglot.py's accuracy rows take too
        results = json.loads(path.read_text()) if path.is_file() else {}
        results[key] = record
        atomic_write_text(path, json.dumps(results, indent=2))
    return results


def add_tag_argument(parser, stem: str) -> None:
    """``--tag``: a variant's suffix, so that its records go to ``<stem><tag>.json``, not the setting's."""
    parser.add_argument(
        "--tag", default="", help=f"a variant's suffix: its records go to {stem}<tag>.json, not the setting's"
    )
