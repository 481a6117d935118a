"""How Lightning writes lit-meta's checkpoints (atomically, never with non-finite weights, and never
silently failing) and reads them (converted from earlier formats).

Lightning's own ``TorchCheckpointIO`` writes through an fsspec transaction whose temporary file lives in
``$TMPDIR``; when that is another filesystem (a tmpfs, a node-local disk) the final move becomes an
in-place copy, so a kill or a full disk during a save leaves a truncated checkpoint, and a
``PermissionError`` is swallowed (the run goes on believing it saved). This plugin writes with
:func:`lit_meta.files.atomic_write` instead and turns any failure into :class:`RunStopped`.
"""

from pathlib import Path
from typing import Any

import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO

from lit_meta.checkpoints import upgrade_checkpoint
from lit_meta.errors import RunStopped
from lit_meta.files import atomic_write, environment_error_in, reason_of
from lit_meta.finite import first_non_finite_in_state


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint plugin, writing each checkpoint as a whole or not at all, and reading
    checkpoints of earlier formats converted to the current one."""

    def load_checkpoint(self, path, map_location: Any = None, weights_only: bool | None = None) -> dict:
        kwargs = {} if map_location is None else {"map_location": map_location}
        return upgrade_checkpoint(super().load_checkpoint(path, weights_only=weights_only, **kwargs))

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        path = Path(path)
        broken = first_non_finite_in_state(checkpoint.get("state_dict", {}), "state_dict")
        if broken is not None:
            raise RunStopped(
                f"checkpoint {path} was not written because {broken} is not finite (NaN or infinity); "
                "the checkpoint already there is kept"
            )
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(path, lambda file: torch.save(checkpoint, file))
        except Exception as error:  # torch reports a failed write as the RuntimeError of its cleanup
            cause = error if isinstance(error, OSError) else environment_error_in(error)
            if cause is None:
                raise
            raise RunStopped(
                f"checkpoint {path} could not be written ({reason_of(cause)}); "
                "the checkpoint already there is kept and training stopped"
            ) from None


__all__ = ["AtomicCheckpointIO"]
