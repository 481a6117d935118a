"""PEARL (Rakelly, Zhou, Quillen, Finn & Levine, ICML 2019, "Efficient Off-Policy Meta-Reinforcement
Learning via Probabilistic Context Variables"): SAC conditioned on a latent task variable z inferred from
context transitions.

The encoder maps each context transition (s, a, r, s′) to a Gaussian factor Ψ(z | c_n); the posterior is
their product, q(z | c) ∝ Π_n Ψ(z | c_n) (permutation-invariant), kept near the unit Gaussian prior by
β·KL(q(z | c) ‖ N(0, I)). The paper's factors are diagonal; ``posterior_covariance="full"`` gives each a
full precision matrix (their product adds them), so that one transition may pin down a direction of z
that is not an axis, as a distance-only reward does on 2D navigation (docs/benchmarks.md). The critics
see z with its gradient (the critic loss trains the encoder); the actor, the temperature and the
critics' targets see it detached, as the paper's code does. The SAC itself is
:class:`~lit_meta.algorithms.sac.SoftActorCritic` over observations extended with z.

The paper (section 4.1) names a second way to train the encoder, reconstructing the MDP, and chooses the
critic's; ``encoder_objective`` offers both. ``"reward"`` trains it through a reward decoder
r̂(s, a, s′, z) alone, as VariBAD (Zintgraf et al. 2020) decodes rewards; the critics then see z detached.
``"critic_and_reward"`` trains it through the sum of the two losses.

No Lightning here: :class:`~lit_meta.modules.PEARLModule` collects the data and schedules the updates.
"""

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lit_meta.algorithms.sac import OPTIMIZED_GROUPS, SoftActorCritic, bounded_target_entropy, step_groups
from lit_meta.errors import require, require_one_of, require_positive
from lit_meta.nn.mlp import MLP

MIN_VARIANCE = 1e-7
"""The smallest variance of a Gaussian factor (the paper's code clamps there too)."""
COVARIANCES = ("diagonal", "full")
"""The Gaussian factors an encoder may output: the paper's diagonal ones, or full precision matrices."""
PEARL_GROUPS = (*OPTIMIZED_GROUPS, "encoder")
"""The parameter groups of :meth:`PEARLAgent.parameter_groups`, each stepped by its own optimizer."""
ENCODER_OBJECTIVES = ("critic", "reward", "critic_and_reward")
"""What trains the encoder: the critic's loss (the paper), a reward decoder's, or both."""
DEVIATION_SCALE = 10.0
"""How much a transition's deviation from its context's mean is magnified for the encoder: a step's jitter
is small against the positions and rewards themselves (on 2D navigation, 0.03 against 0.5)."""


def context_features(batch: Mapping[str, Tensor]) -> Tensor:
    """The encoder's input for each transition of ``batch``: ``[..., 2·O + A + 1]`` = (s, a, r, s′)."""
    return torch.cat([batch["obs"], batch["action"], batch["reward"][..., None], batch["next_obs"]], -1)


def product_of_gaussians(
    means: Tensor, variances: Tensor, mask: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """The normalised product of Gaussian factors ``N(means[..., n, :], variances[..., n, :])`` over ``n``:
    precision ``1/σ² = Σ_n 1/σ_n²`` and mean ``μ = σ² Σ_n μ_n/σ_n²``, per latent dimension. ``mask``
    ``[..., N]`` leaves out the factors where it is 0 (padding); every product needs one factor."""
    precisions = 1.0 / variances.clamp_min(MIN_VARIANCE)
    if mask is not None:
        precisions = precisions * mask[..., None]
    variance = 1.0 / precisions.sum(-2)
    return variance * (precisions * means).sum(-2), variance


def product_of_full_gaussians(
    means: Tensor, precision_factors: Tensor, mask: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """The normalised product of Gaussian factors ``N(means[..., n, :], Λ_n⁻¹)`` over ``n``, each given by
    a lower-triangular ``precision_factors[..., n, :, :]`` ``L_n`` with ``Λ_n = L_n L_nᵀ``: precision
    ``Λ = Σ_n Λ_n`` and mean ``μ = Λ⁻¹ Σ_n Λ_n μ_n``. Returns the mean ``[..., L]`` and the covariance
    ``Λ⁻¹`` ``[..., L, L]``; ``mask`` as :func:`product_of_gaussians`. Solved in double precision, and the
    covariance stays double: a hundred factors sharp along one direction make it too ill-conditioned for a
    Cholesky factorisation in single precision."""
    factors = precision_factors.double()
    precisions = factors @ factors.transpose(-1, -2)
    if mask is not None:
        precisions = precisions * mask[..., None, None].double()
    information = (precisions @ means.double()[..., None]).sum(-3)
    cholesky = torch.linalg.cholesky(precisions.sum(-3))
    mean = torch.cholesky_solve(information, cholesky)[..., 0]
    return mean.to(means.dtype), torch.cholesky_inverse(cholesky)


def is_full_covariance(mean: Tensor, variance: Tensor) -> bool:
    """Whether ``variance`` is a covariance matrix per mean (``[..., L, L]``) rather than a diagonal."""
    return variance.dim() > mean.dim()


def kl_to_standard_normal(mean: Tensor, variance: Tensor) -> Tensor:
    """``KL(N(mean, Σ) ‖ N(0, I)) = ½ (tr Σ + |μ|² − L − log det Σ)``, over the last dim: ``Σ = diag
    variance`` (``½ Σ_d (σ_d² + μ_d² − 1 − log σ_d²)``), or the covariance ``[..., L, L]`` itself."""
    if not is_full_covariance(mean, variance):
        return 0.5 * (variance + mean.pow(2) - 1.0 - variance.log()).sum(-1)
    covariance = variance.double()
    log_det = 2.0 * torch.linalg.cholesky(covariance).diagonal(dim1=-2, dim2=-1).log().sum(-1)
    trace = covariance.diagonal(dim1=-2, dim2=-1).sum(-1)
    return (0.5 * (trace + mean.double().pow(2).sum(-1) - mean.shape[-1] - log_det)).to(mean.dtype)


def marginal_variance(mean: Tensor, variance: Tensor) -> Tensor:
    """Each latent dimension's variance ``[..., L]``, whichever form ``variance`` has."""
    if is_full_covariance(mean, variance):
        return variance.diagonal(dim1=-2, dim2=-1).to(mean.dtype)
    return variance


def context_deviations(features: Tensor, mask: Tensor | None = None) -> Tensor:
    """``features [..., N, F]`` with each transition's deviation from the mean over its context appended,
    scaled by :data:`DEVIATION_SCALE`: ``[..., N, 2·F]`` (the mean over the steps where ``mask`` is 1)."""
    if mask is None:
        centre = features.mean(-2, keepdim=True)
    else:
        weights = mask[..., None].to(features.dtype)
        centre = (features * weights).sum(-2, keepdim=True) / weights.sum(-2, keepdim=True).clamp_min(1.0)
    return torch.cat([features, DEVIATION_SCALE * (features - centre)], -1)


class ContextEncoder(nn.Module):
    """An MLP from one transition's features to the mean and variance (softplus) of its Gaussian factor,
    or (``covariance="full"``) to its mean and the lower-triangular factor of its precision: the diagonal
    ``1/√softplus``, as the diagonal factor's, and free entries below it.

    With ``deviations``, each transition's factor also reads how the transition deviates from the mean of
    its context (:func:`context_deviations`; the permutation-equivariant layer of Zaheer et al. 2017,
    "Deep Sets"): the posterior stays a permutation-invariant product of factors, but a factor can now
    see, say, that this step's reward is above the context's mean where its position is right of it,
    which one transition alone cannot show."""

    def __init__(
        self,
        feature_size: int,
        latent_size: int,
        hidden_sizes: Sequence[int] = (200, 200, 200),
        covariance: str = "diagonal",
        deviations: bool = False,
    ):
        super().__init__()
        require_positive("latent_size", latent_size)
        require_one_of("posterior_covariance", covariance, COVARIANCES)
        self.latent_size, self.full, self.deviations = latent_size, covariance == "full", deviations
        below = latent_size * (latent_size - 1) // 2 if self.full else 0
        inputs = 2 * feature_size if deviations else feature_size
        self.network = MLP(inputs, 2 * latent_size + below, list(hidden_sizes), "relu")

    def forward(self, features: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """The posterior's mean and variance ``[..., L]`` (diagonal) or covariance ``[..., L, L]`` (full)
        given context ``features [..., N, F]``."""
        if self.deviations:
            features = context_deviations(features, mask)
        flat = self.network(features.reshape(-1, features.shape[-1]))
        flat = flat.reshape(*features.shape[:-1], -1)
        size = self.latent_size
        means, raw = flat[..., :size], flat[..., size : 2 * size]
        variances = F.softplus(raw)
        if not self.full:
            return product_of_gaussians(means, variances, mask)
        factors = torch.diag_embed(variances.clamp_min(MIN_VARIANCE).rsqrt())
        rows, columns = torch.tril_indices(size, size, offset=-1, device=flat.device)
        factors[..., rows, columns] = flat[..., 2 * size :]
        return product_of_full_gaussians(means, factors, mask)


class PEARLAgent(nn.Module):
    """The context encoder and a SAC agent over ``[observation, z]``.

    :param latent_size: dimension of z (the paper: 5).
    :param kl_weight: β, the weight of the KL term in the encoder's loss (the paper: 0.1).
    :param target_entropy: the temperature aims at this many nats per action dimension on actions
        rescaled to [−1, 1] (:func:`~lit_meta.algorithms.sac.bounded_target_entropy`; SAC's −1), whatever
        the action bounds.

    :param reward_scale: rewards are multiplied by it in the critic's target (the paper: 5 on its
        locomotion tasks), which sets how much return weighs against entropy.
    :param posterior_covariance: ``"diagonal"`` Gaussian factors (the paper) or ``"full"`` precision
        matrices (:class:`ContextEncoder`).
    :param encoder_objective: what trains the encoder besides the KL term (:data:`ENCODER_OBJECTIVES`):
        the critic's loss (the paper), the squared error of a reward decoder ``r̂(s, a, s′, z)`` on the RL
        batch's rewards as the critics see them (scaled), or their sum.
    """

    def __init__(
        self,
        observation_size: int,
        action_size: int,
        action_low,
        action_high,
        latent_size: int = 5,
        hidden_sizes: Sequence[int] = (300, 300, 300),
        encoder_hidden_sizes: Sequence[int] = (200, 200, 200),
        gamma: float = 0.99,
        tau: float = 0.005,
        init_temperature: float = 1.0,
        kl_weight: float = 0.1,
        reward_scale: float = 1.0,
        posterior_covariance: str = "diagonal",
        target_entropy: float = -1.0,
        encoder_objective: str = "critic",
        context_deviations: bool = False,
    ) -> None:
        super().__init__()
        require(kl_weight >= 0, f"kl_weight must not be negative, got {kl_weight}")
        require_one_of("encoder_objective", encoder_objective, ENCODER_OBJECTIVES)
        require_positive("reward_scale", reward_scale)
        require_positive("latent_size", latent_size)
        self.latent_size, self.kl_weight, self.reward_scale = latent_size, kl_weight, reward_scale
        self.encoder = ContextEncoder(
            2 * observation_size + action_size + 1, latent_size, encoder_hidden_sizes, posterior_covariance,
            context_deviations,
        )  # fmt: skip
        self.sac = SoftActorCritic(
            observation_size + latent_size, action_size, action_low, action_high, hidden_sizes, gamma, tau,
            init_temperature, bounded_target_entropy(action_low, action_high, action_size, target_entropy),
        )  # fmt: skip
        self.critic_trains_encoder = encoder_objective != "reward"
        self.reward_decoder = (
            MLP(2 * observation_size + action_size + latent_size, 1, list(encoder_hidden_sizes), "relu")
            if encoder_objective != "critic"
            else None
        )

    # --- the latent variable ---------------------------------------------------------------------------

    def posterior(self, context: Mapping[str, Tensor], mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Mean ``[..., L]`` and variance ``[..., L]`` (or, full, covariance ``[..., L, L]``) of q(z | c) for
        context transitions ``[..., N, ...]``."""
        return self.encoder(context_features(context), mask)

    def prior(self, count: int) -> tuple[Tensor, Tensor]:
        """Mean and variance ``[count, L]`` of the unit Gaussian prior."""
        zeros = torch.zeros(count, self.latent_size, device=self.sac.action_scale.device)
        return zeros, torch.ones_like(zeros)

    @staticmethod
    def sample_latent(mean: Tensor, variance: Tensor) -> Tensor:
        """``z = μ + σ·ε``, or ``μ + C ε`` with ``C Cᵀ = Σ`` for a full covariance (reparameterised,
        torch's global generator)."""
        if is_full_covariance(mean, variance):
            noise = torch.randn_like(mean).to(variance.dtype)[..., None]
            return mean + (torch.linalg.cholesky(variance) @ noise)[..., 0].to(mean.dtype)
        return mean + variance.sqrt() * torch.randn_like(mean)

    @staticmethod
    def repeat_posterior(mean: Tensor, variance: Tensor, count: int) -> tuple[Tensor, Tensor]:
        """One posterior ``[L]`` (its variance ``[L]`` or ``[L, L]``) as ``count`` identical rows."""
        return mean.expand(count, *mean.shape), variance.expand(count, *variance.shape)

    def policy(self, latent: Tensor, deterministic: bool = False) -> "LatentPolicy":
        """The actor with z fixed (``[E, L]``, one per environment, or ``[L]``), as a policy of
        :class:`~lit_meta.envs.rollouts.EpisodeSampler`."""
        return LatentPolicy(self.sac, latent, deterministic)

    # --- losses and updates ----------------------------------------------------------------------------

    def losses(self, context: Mapping[str, Tensor], batch: Mapping[str, Tensor]) -> tuple[dict, dict]:
        """The losses of one update on ``T`` tasks: ``context`` ``[T, N, ...]`` (each task's posterior),
        ``batch`` ``[T, B, ...]`` (keys :data:`~lit_meta.algorithms.replay.BATCH_KEYS`). Returns
        ``({group: loss}, statistics)``: ``critic`` (z with its gradient unless the objective is ``reward``),
        ``actor`` and ``alpha`` (z
        detached), and ``encoder`` = the ``encoder_objective``'s loss + β·Σ_tasks KL(q(z | c_t) ‖ N(0, I))."""
        mean, variance = self.posterior(context)
        latent = self.sample_latent(mean, variance)
        kl = kl_to_standard_normal(mean, variance).sum()
        tasks, batch_size = batch["obs"].shape[:2]
        latents = latent[:, None].expand(tasks, batch_size, self.latent_size)
        flat = {key: value.reshape(tasks * batch_size, *value.shape[2:]) for key, value in batch.items()}
        latents = latents.reshape(tasks * batch_size, self.latent_size)
        critic_batch = {
            **flat,
            "obs": torch.cat([flat["obs"], latents if self.critic_trains_encoder else latents.detach()], -1),
            "next_obs": torch.cat([flat["next_obs"], latents.detach()], -1),
            "reward": flat["reward"] * self.reward_scale,
        }
        critic_loss, critic_stats = self.sac.critic_loss(critic_batch)
        actor_loss, alpha_loss, policy_stats = self.sac.policy_losses(critic_batch["obs"].detach())
        encoder_loss = self.kl_weight * kl + (critic_loss if self.critic_trains_encoder else 0.0)
        extra = {}
        if self.reward_decoder is not None:
            inputs = torch.cat([flat["obs"], flat["action"], flat["next_obs"], latents], -1)
            decoder_loss = F.mse_loss(self.reward_decoder(inputs)[:, 0], critic_batch["reward"])
            encoder_loss, extra["reward_decoder_loss"] = encoder_loss + decoder_loss, decoder_loss
        losses = {"critic": critic_loss, "actor": actor_loss, "alpha": alpha_loss, "encoder": encoder_loss}
        stats = {f"{name}_loss": loss.detach() for name, loss in losses.items()} | extra
        stats.update(
            critic_stats,
            **policy_stats,
            kl=kl.detach() / tasks,
            posterior_std=marginal_variance(mean, variance).sqrt().mean(),
        )
        return losses, {name: value.detach() for name, value in stats.items()}

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """SAC's groups (``actor``, ``critic``, ``alpha``) and the ``encoder``'s (with any reward decoder)."""
        encoder = list(self.encoder.parameters())
        if self.reward_decoder is not None:
            encoder += list(self.reward_decoder.parameters())
        return {**self.sac.parameter_groups(), "encoder": encoder}

    def update(
        self,
        context: Mapping[str, Tensor],
        batch: Mapping[str, Tensor],
        optimizers: Mapping[str, torch.optim.Optimizer],
    ) -> dict[str, Tensor]:
        """One step of each group's optimizer on :meth:`losses`, all gradients taken first, then the
        critics' Polyak update. Returns the detached statistics."""
        losses, stats = self.losses(context, batch)
        step_groups(losses, self.parameter_groups(), optimizers)
        self.sac.polyak_update_()
        return stats


class LatentPolicy(nn.Module):
    """SAC's actor with a fixed z, in the interface :class:`~lit_meta.envs.rollouts.EpisodeSampler` runs:
    called on observations ``[E, O]`` it returns an object with ``sample()`` and ``log_prob(action)``."""

    def __init__(self, sac: SoftActorCritic, latent: Tensor, deterministic: bool = False) -> None:
        super().__init__()
        self.sac, self.latent, self.deterministic = sac, latent, deterministic

    def forward(self, observations: Tensor) -> "_Actions":
        latent = self.latent.expand(observations.shape[0], -1) if self.latent.dim() == 1 else self.latent
        inputs = torch.cat([observations.to(latent.device), latent], -1)
        action, log_prob = (
            (self.sac.action_tensor(inputs, True), torch.zeros(len(inputs)))
            if self.deterministic
            else self.sac._sample(inputs)
        )
        return _Actions(action.cpu(), log_prob.cpu())


class _Actions:
    """Actions already drawn, with their log-probabilities (the log-probability of a deterministic
    action is reported as 0: nothing trains on it)."""

    def __init__(self, actions: Tensor, log_probs: Tensor) -> None:
        self.actions, self.log_probs = actions, log_probs

    def sample(self) -> Tensor:
        return self.actions

    def log_prob(self, actions: Tensor) -> Tensor:
        require(actions is self.actions, "PEARL's actions can only be scored as they were drawn")
        return self.log_probs


__all__ = [
    "COVARIANCES",
    "DEVIATION_SCALE",
    "PEARL_GROUPS",
    "ContextEncoder",
    "LatentPolicy",
    "PEARLAgent",
    "context_deviations",
    "context_features",
    "is_full_covariance",
    "kl_to_standard_normal",
    "marginal_variance",
    "product_of_full_gaussians",
    "product_of_gaussians",
]
