"""Known, harmless messages of the libraries under lit-meta, silenced once by each entry point.

Each filter names one message; anything else still reaches the user.
"""

import logging
import warnings


def silence_library_noise() -> None:
    # Lightning 2.6 calls a torch.utils._pytree API that torch 2.14 deprecates; nothing to act on.
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")
    # The few-shot module moves task batches itself, on purpose; Lightning reports that it will use it.
    warnings.filterwarnings(
        "ignore", message=r"You have overridden `transfer_batch_to_device` in `LightningModule`"
    )
    # Resuming writes into the run's own checkpoint directory on purpose (a fresh run there is refused).
    warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")
    # The seed is in the run's config.yaml; Lightning's line on stderr would precede every one-line error.
    logging.getLogger("lightning_fabric.utilities.seed").addFilter(
        lambda record: not record.getMessage().startswith("Seed set to")
    )
    # Advertising for optional cloud services, printed on every run.
    logging.getLogger("pytorch_lightning.utilities.rank_zero").addFilter(
        lambda record: not record.getMessage().startswith("💡 Tip")
    )
    # SB3 keeps SAC/TD3 target networks in eval mode on purpose; the meta-policy is never trained directly.
    warnings.filterwarnings("ignore", message=r"Found \d+ module\(s\) in eval mode at the start of training")
    # torch.compile's C++ toolchain probe on machines without CUDA: harmless, compiles for the CPU.
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
