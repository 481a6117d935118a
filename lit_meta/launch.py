"""Which process of a data-parallel job this is, read from what the launchers set in the environment."""

import os


def is_launching_process() -> bool:
    """Whether this process is the one that started the job, not a worker a launcher started for a
    data-parallel rank > 0 (Lightning's DDP launcher sets ``LOCAL_RANK``/``NODE_RANK``, torchrun
    ``RANK``, SLURM ``SLURM_PROCID`` of several tasks). Only the launching process takes the run lock."""
    if "RANK" in os.environ:
        return int(os.environ["RANK"]) == 0
    if int(os.environ.get("SLURM_NTASKS", "1")) > 1:  # one task per process of a data-parallel job
        return int(os.environ.get("SLURM_PROCID", "0")) == 0
    return all(int(os.environ.get(key, "0")) == 0 for key in ("LOCAL_RANK", "NODE_RANK", "GROUP_RANK"))


__all__ = ["is_launching_process"]
