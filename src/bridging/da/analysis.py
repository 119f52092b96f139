"""The ensemble Kalman analysis in the augmented latent space x = [E(X); y], batched over experiments.

The observation operator is H = [0 I]: the observables are the LAST ``n_obs`` entries of the state, so H is a slice
and never a matrix. Everything is computed in observation space (n_obs = 112 by default) or in ensemble space
(N = 50); no n×n state covariance and no explicit inverse of a covariance is formed. The SPD systems are factored
with a Cholesky decomposition (on the CPU LAPACK's ``potrf`` through SciPy, one matrix at a time, in place; elsewhere
``cholesky_ex``: no host synchronisation on the GPU) and solved with triangular solves: unlocalized and with
n_obs > N it is the N×N matrix (N−1) I + Y R⁻¹ Yᵀ (Woodbury identity, eigenvalues ≥ N − 1), otherwise the m×m
innovation covariance S. Every form ends as ``x_a = μ + M A`` with an N×N mixing matrix M,
one GEMM over the ensemble (``_analysis_core``); the whole batch goes through at once.

Conventions (shapes: ``E`` is (..., N, n), leading dims are independent experiments):

* anomalies ``A = E − mean(E)``; forecast inflation ``A ← λ A`` is applied BEFORE the update and the gain is built
  from the inflated anomalies (the prior is inflated, as in the paper, docs/method.md; DAPPER inflates the
  posterior);
* ``Y = A[..., -n_obs:]`` are the observed anomalies, ``C_yy = Yᵀ Y / (N − 1)``; ``S = C_yy + R``,
  ``R = diag(obs_var)``.

``method="stochastic"`` (perturbed observations, Burgers et al. 1998): member j is updated with the innovation
``d_j = y + ε_j − H x_j``, ``x_j ← x_j + C_xy S⁻¹ d_j``. With ``obs_perturbations`` given, ε_j is
``obs_perturbations[..., j, :]`` exactly as passed. Otherwise ε is drawn from ``generator`` as N(0, R), centred
over the members and rescaled by √(N/(N−1)) so that its expected sample variance stays R. DAPPER's
``EnKF_analysis(..., 'PertObs')`` uses ``y − D_j`` with ``D = mean0(hnoise.sample(N))`` (centred and rescaled the
same way): passing ``obs_perturbations = −D`` reproduces it to rounding.

``method="etkf"``: the deterministic symmetric square-root filter (Bishop et al. 2001; Hunt et al. 2007), computed
in ensemble space, ``E_a = μ + w A + T A`` with ``T = (I + G)^{-1/2}``, ``G = Y R⁻¹ Yᵀ / (N−1)``,
``w = (y − Hμ) R⁻¹ Yᵀ (I + G)⁻¹ / (N − 1)`` — identical to DAPPER's ``'Sqrt'``.

Localization (``obs_taper`` ρ, m × m, symmetric positive semi-definite) is done in observation space and projected
onto the ensemble span, so that z and y move by the SAME combination of members (y is a function of the decoded z: a
Schur taper on the state–observation covariance gives them increments that do not match, and that filter diverged
with trained models, docs/method.md, Filter):

1. observation-space increments with ``C̃ = ρ ∘ C_yy``, ``S̃ = C̃ + R``: stochastic ``δy_j = C̃ S̃⁻¹ d_j``; ETKF the
   localized mean increment ``C̃ S̃⁻¹ (y − Hμ)`` plus the localized square-root anomaly increment
   ``−Y R^{-1/2} V⁻¹ (V + I)⁻¹ R^{-1/2} C̃`` with ``V² = R^{-1/2} S̃ R^{-1/2}`` (Andrews 1968 / Whitaker & Hamill
   2002, symmetric roots);
2. member weights by least squares, ``w_j = argmin ‖Yᵀ w − δy_j‖`` (minimum norm): ``W = ΔY Yᵀ (Y Yᵀ)⁺``, N×N;
3. ``x_j ← x_j + Σ_k W_jk A_k``.

The stochastic ``ΔY Yᵀ = D S̃⁻¹ C̃ Yᵀ`` (rows of D: d_jᵀ) is computed as ``D (Y − Y R S̃⁻¹)ᵀ`` (C̃ = S̃ − R): N
right-hand sides, and no m×m product (in float32 as accurate as the direct form, which loses digits when R ≪ C̃).

For ρ ≡ 1, ``ΔY Yᵀ (Y Yᵀ)⁺ = W₀ Y Yᵀ (Y Yᵀ)⁺ = W₀`` (the projector onto the range of Y leaves the unlocalized
weights W₀ unchanged), so the localized filter reduces to the unlocalized one to rounding (tested). The
pseudo-inverse comes from a Cholesky factor of ``Y Yᵀ + μ 1 1ᵀ / N`` (Y is centred, so 1 spans its null space;
μ = its mean eigenvalue), exact when Y has rank N − 1 and ten times cheaper than ``eigh``; on the CPU the experiments
where it fails or is ill-conditioned are redone with ``eigh`` of Y Yᵀ and a relative truncation, as is every
experiment when n_obs < N − 1 (on CUDA a failed factor gives NaN members, without a host synchronisation).
Symmetric square roots come from ``eigh`` on the CPU and from a coupled Newton–Schulz iteration on CUDA, where
batched ``eigh`` is slow for matrices larger than 32 × 32 (PyTorch issues #175585, #174674).

Failures: a non-positive-definite innovation covariance (or an unconverged Newton–Schulz square root) raises on the
CPU; on CUDA the affected experiments are filled with NaN instead (raising would cost a host synchronisation per
call), so a cycling caller must check for non-finite members, as ``bridging.da.run`` does.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import scipy.linalg
import torch

Method = Literal["stochastic", "etkf"]
METHODS = ("stochastic", "etkf")

# Coupled Newton–Schulz iterations for a symmetric (inverse) square root. The matrix is scaled by its Frobenius
# norm, so eigenvalues lie in [1/κ_F, 1]; an eigenvalue p grows ~9/4 per iteration while small and then converges
# quadratically: 30 iterations reach float64 round-off for 1/κ_F down to about 1e-9 (and κ_F ≤ 1 + trace(R^{-1} P_yy)
# stays below 1e5 for any sensible observation-error variance). Unconverged results are flagged, not returned.
NEWTON_SCHULZ_ITERATIONS = 30


def _flatten_batch(t: torch.Tensor, trailing: int, batch_shape: torch.Size, name: str) -> torch.Tensor:
    """Broadcast ``t`` to ``batch_shape + t.shape[-trailing:]`` and flatten the batch dims into one."""
    core = t.shape[t.dim() - trailing :]
    try:
        t = t.expand(*batch_shape, *core)
    except RuntimeError:
        raise ValueError(
            f"{name}: shape {tuple(t.shape)} does not broadcast to batch shape {tuple(batch_shape)}"
        ) from None
    return t.reshape(-1, *core)


def _per_experiment(value, batch_shape: torch.Size, like: torch.Tensor, name: str) -> torch.Tensor:
    """A scalar or a per-experiment tensor (batch_shape) as a (B, 1, 1) tensor."""
    t = torch.as_tensor(value, dtype=like.dtype, device=like.device)
    try:
        t = t.expand(batch_shape)
    except RuntimeError:
        raise ValueError(
            f"{name}: shape {tuple(t.shape)} does not broadcast to batch shape {tuple(batch_shape)}"
        ) from None
    return t.reshape(-1, 1, 1)


def symmetric_sqrt_pair(
    matrix: torch.Tensor, *, method: Literal["auto", "eigh", "newton_schulz"] = "auto"
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Symmetric square root and inverse square root of a batch of SPD matrices, and a per-matrix failure flag.

    ``auto`` uses ``eigh`` on the CPU and Newton–Schulz elsewhere. Returns ``(M^{1/2}, M^{-1/2}, failed)`` where
    ``failed`` (batch shape, bool) marks non-SPD input (eigh) or an iteration that did not converge (Newton–Schulz).
    """
    if method == "auto":
        method = "eigh" if matrix.device.type == "cpu" else "newton_schulz"
    eye = torch.eye(matrix.shape[-1], dtype=matrix.dtype, device=matrix.device)
    if method == "eigh":
        vals, vecs = torch.linalg.eigh(matrix)
        failed = vals[..., 0] <= 0
        root = vals.clamp_min(torch.finfo(matrix.dtype).tiny).sqrt()
        sqrt = (vecs * root.unsqueeze(-2)) @ vecs.mT
        inv_sqrt = (vecs / root.unsqueeze(-2)) @ vecs.mT
        return sqrt, inv_sqrt, failed
    if method != "newton_schulz":
        raise ValueError(f"unknown square-root method {method!r}")
    # Higham (2008), eq. 6.35: Y_k → (M/c)^{1/2}, Z_k → (M/c)^{-1/2}; stable in the coupled form.
    scale = torch.linalg.matrix_norm(matrix).clamp_min(torch.finfo(matrix.dtype).tiny)[..., None, None]
    y = matrix / scale
    z = eye.expand_as(matrix)
    for _ in range(NEWTON_SCHULZ_ITERATIONS):
        t = 1.5 * eye - 0.5 * (z @ y)
        y, z = y @ t, t @ z
    residual = torch.linalg.matrix_norm(z @ y - eye) / math.sqrt(matrix.shape[-1])
    failed = ~(residual < 100 * torch.finfo(matrix.dtype).eps * matrix.shape[-1])
    root_scale = scale.sqrt()
    return y * root_scale, z / root_scale, failed


_CPU_POTRF = {torch.float32: np.float32, torch.float64: np.float64}  # dtypes the CPU factors with LAPACK
_CPU_POTRF_MIN_SIZE = 64  # smaller matrices: cholesky_ex is as fast (docs/method.md, Filter)


def _cholesky(matrix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Lower Cholesky factors of a batch (B, k, k) of symmetric positive definite matrices, and per-matrix failures;
    ``matrix`` is a temporary the CPU overwrites.

    On the CPU and from ``_CPU_POTRF_MIN_SIZE`` on, LAPACK's ``potrf`` (SciPy's OpenBLAS) one matrix at a time, in
    place, because there it is faster than ``cholesky_ex`` (MKL's batched potrf behind copies into column-major
    layout and back; docs/method.md, Filter). Otherwise ``cholesky_ex``.
    """
    lapack = None
    if matrix.device.type == "cpu" and matrix.shape[-1] >= _CPU_POTRF_MIN_SIZE and not matrix.requires_grad:
        lapack = _CPU_POTRF.get(matrix.dtype)
    if lapack is None:
        factor, info = torch.linalg.cholesky_ex(matrix)
        return factor, info != 0
    matrix = matrix.contiguous()
    potrf = scipy.linalg.get_lapack_funcs("potrf", dtype=lapack)
    # block.T is the same memory in column-major order: LAPACK writes L into its lower triangle, which is the upper
    # triangle of the row-major block (Lᵀ); the other triangle keeps the input and is zeroed below.
    status = [potrf(block.T, lower=1, overwrite_a=1, clean=0)[1] for block in matrix.numpy()]
    factor = matrix.triu_().mT
    info = torch.tensor(status) != 0
    return factor, info | ~factor.diagonal(dim1=-2, dim2=-1).isfinite().all(-1)  # OpenBLAS's potrf passes NaN


def _right_solve_spd(rhs: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """rhs S⁻¹ for S = L Lᵀ, as two right-side triangular solves (rhs is (B, N, m), members in rows).

    On the CPU this is ~4× faster than ``cholesky_solve`` on the transposed (m, N) right-hand side, which copies it
    into column-major layout first.
    """
    half = torch.linalg.solve_triangular(factor.mT, rhs, upper=True, left=False)  # rhs L⁻ᵀ
    return torch.linalg.solve_triangular(factor, half, upper=False, left=False)  # rhs L⁻ᵀ L⁻¹


def _finish(result: torch.Tensor, failed: torch.Tensor, what: str) -> torch.Tensor:
    """Raise on the CPU; on other devices fill failed experiments with NaN (no host sync)."""
    if result.device.type == "cpu":
        if bool(failed.any()):
            bad = torch.nonzero(failed).flatten().tolist()
            raise torch.linalg.LinAlgError(f"EnKF analysis: {what} in experiment(s) {bad[:10]} (flattened batch index)")
        return result
    return torch.where(failed[:, None, None], torch.full_like(result, float("nan")), result)


def draw_obs_perturbations(
    shape: tuple[int, ...], obs_var: torch.Tensor, generator: torch.Generator, *, dtype, device
) -> torch.Tensor:
    """ε ~ N(0, diag(obs_var)) of shape (..., N, n_obs), centred over members and rescaled by √(N/(N−1))."""
    n_members = shape[-2]
    eps = torch.randn(shape, generator=generator, dtype=dtype, device=device)
    eps = eps - eps.mean(-2, keepdim=True)
    return eps * (obs_var.sqrt().unsqueeze(-2) * math.sqrt(n_members / (n_members - 1)))


def analysis(
    ensemble: torch.Tensor,
    obs: torch.Tensor,
    obs_var: torch.Tensor,
    *,
    method: Method = "stochastic",
    inflation: float | torch.Tensor = 1.0,
    obs_taper: torch.Tensor | None = None,
    obs_perturbations: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    sqrt_method: Literal["auto", "eigh", "newton_schulz"] = "auto",
    projection: Literal["auto", "eigh", "cholesky"] = "auto",
) -> torch.Tensor:
    """One EnKF analysis (module docstring for the equations and conventions).

    Parameters
    ----------
    ensemble : (..., N, n) forecast members; the last n_obs state entries are the observables (H = [0 I]).
    obs : (..., n_obs) observations.
    obs_var : (n_obs,) or (..., n_obs) observation-error variances (diagonal R), > 0.
    method : "stochastic" (perturbed observations) or "etkf" (symmetric square root).
    inflation : factor λ ≥ 1 on the forecast anomalies, a float or a tensor of the batch shape.
    obs_taper : optional (n_obs, n_obs) or (..., n_obs, n_obs) symmetric PSD Schur taper ρ on C_yy: localization in
        observation space, projected onto the ensemble span (module docstring).
    obs_perturbations : (..., N, n_obs) ε_j for the stochastic filter; member j assimilates obs + ε_j.
    generator : draws ε when ``obs_perturbations`` is not given (stochastic filter only).
    sqrt_method : symmetric square roots of the ETKF: "auto" (eigh on the CPU, Newton–Schulz on other devices).
    projection : the (Y Yᵀ)⁺ of the localized filter: "eigh", "cholesky", "cholesky_eigh" (Cholesky, eigh for the
        experiments where it fails or is ill-conditioned: CPU only) or "auto" (eigh when n_obs < N − 1, else
        cholesky_eigh on the CPU and cholesky elsewhere).

    Returns the analysis ensemble, same shape and dtype as ``ensemble``.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if ensemble.dim() < 2:
        raise ValueError(f"ensemble must be (..., N, n), got shape {tuple(ensemble.shape)}")
    if not ensemble.is_floating_point():
        raise TypeError(f"ensemble must be floating point, got {ensemble.dtype}")
    n_members, n_state = ensemble.shape[-2:]
    n_obs = obs.shape[-1]
    if n_members < 2:
        raise ValueError("the ensemble needs at least 2 members")
    if n_obs > n_state:
        raise ValueError(f"{n_obs} observables but the state has only {n_state} entries")
    batch_shape = ensemble.shape[:-2]
    dtype, device = ensemble.dtype, ensemble.device
    obs = obs.to(dtype)
    obs_var = torch.as_tensor(obs_var, dtype=dtype, device=device)

    if device.type == "cpu" and not bool((obs_var > 0).all()):  # on other devices a check would cost a host sync
        raise ValueError("obs_var must be positive (diagonal of R)")
    E = ensemble.reshape(-1, n_members, n_state)
    y = _flatten_batch(obs, 1, batch_shape, "obs")
    r = _flatten_batch(obs_var, 1, batch_shape, "obs_var")
    rho = None  # the observation-space taper, (m, m) or (B, m, m)
    if obs_taper is not None:
        if tuple(obs_taper.shape[-2:]) != (n_obs, n_obs):
            raise ValueError(f"obs_taper must be (..., {n_obs}, {n_obs}), got {tuple(obs_taper.shape)}")
        rho = obs_taper.to(dtype=dtype, device=device)
        rho = rho if rho.dim() == 2 else _flatten_batch(rho, 2, batch_shape, "obs_taper")
    if projection == "auto":
        projection = "eigh" if n_obs < n_members - 1 else "cholesky_eigh" if device.type == "cpu" else "cholesky"
    if projection not in ("eigh", "cholesky", "cholesky_eigh"):
        raise ValueError(f"unknown projection method {projection!r}")
    lam = None
    if not (isinstance(inflation, (int, float)) and inflation == 1.0):
        lam = _per_experiment(inflation, batch_shape, E, "inflation")  # (B, 1, 1)
    eps = None
    if method == "stochastic":
        if obs_perturbations is None:
            if generator is None:
                raise ValueError("stochastic analysis needs obs_perturbations or a generator")
            eps = draw_obs_perturbations((E.shape[0], n_members, n_obs), r, generator, dtype=dtype, device=device)
        else:
            eps = _flatten_batch(obs_perturbations.to(dtype), 2, batch_shape, "obs_perturbations")
            if eps.shape[-2] != n_members:
                raise ValueError(f"obs_perturbations has {eps.shape[-2]} members, the ensemble {n_members}")
    elif obs_perturbations is not None:
        raise ValueError("obs_perturbations are meaningless for the deterministic ETKF")

    result, failed = _analysis_core(
        E,
        y,
        r,
        rho=None if rho is None else rho / (n_members - 1),  # C̃ = (ρ / (N − 1)) ∘ Yᵀ Y
        lam=lam,
        eps=eps,
        method=method,
        sqrt_method=sqrt_method,
        projection=projection,
    )
    what = "innovation covariance is not positive definite" if method == "stochastic" else "ETKF square root failed"
    if rho is not None:
        what += " (or the ensemble's observed anomalies are rank-deficient)"
    return _finish(result, failed, what).reshape(ensemble.shape)


def _analysis_core(E, y, r, *, rho, lam, eps, method, sqrt_method, projection):
    """The analysis of a flattened batch (B, N, n) and its per-experiment failure flags.

    Every form is ``x_a = μ + λ M A`` with an N×N mixing matrix M (I + W, or the ETKF's T + 1 w) applied to the
    anomalies A. Each M maps the members' sum to itself (M 1 = 1: the rows of W and the anomalies sum to zero, T 1 =
    1), so ``x_a = (λ M + (1 − λ) 1 1ᵀ / N) E``: one GEMM on the ensemble itself, which is never centred as a whole
    (its passes over the (B, N, n) members are a visible share of the cost). M 1 = 1 is restored to rounding first.
    """
    dtype, device = E.dtype, E.device
    n_members, n_obs = E.shape[-2], y.shape[-1]
    n1 = n_members - 1
    observed = E[..., -n_obs:]  # H E
    obs_mean = observed.mean(-2, keepdim=True)  # (B, 1, m): H μ
    Y = observed - obs_mean  # (B, N, m): H A
    if lam is not None:
        Y.mul_(lam)  # the gain below is built from the inflated anomalies
    innovation = y - obs_mean[:, 0]  # (B, m): y − H μ
    eye_n = torch.eye(n_members, dtype=dtype, device=device)
    if rho is not None:
        mixing, failed = _localized_weights(Y, innovation, r, rho, eps, method, sqrt_method, projection)
        mixing.diagonal(dim1=-2, dim2=-1).add_(1.0)
    elif method == "stochastic":
        member_innovations = (innovation.unsqueeze(-2) + eps).sub_(Y)  # (B, N, m): y + ε_j − H x_j
        if n_obs > n_members:
            # Ensemble space with the Woodbury identity: D S⁻¹ Yᵀ/(N−1) = (D R⁻¹ Yᵀ) ((N−1) I + Y R⁻¹ Yᵀ)⁻¹, so the
            # factorised matrix is N×N (and well conditioned: eigenvalues ≥ N − 1) instead of m×m.
            Yr = Y * r.rsqrt().unsqueeze(-2)  # Y R^{-1/2}
            L, failed = _cholesky(torch.baddbmm(eye_n * n1, Yr, Yr.mT))
            mixing = _right_solve_spd((member_innovations / r.unsqueeze(-2)) @ Y.mT, L).add_(eye_n)  # (B, N, N)
        else:
            # Ensemble space, m ≤ N: D S⁻¹ C_yxᵀ = [D S⁻¹ Yᵀ/(N−1)] A with the m×m innovation covariance S.
            L, failed = _cholesky(torch.baddbmm(torch.diag_embed(r), Y.mT, Y, alpha=1.0 / n1))
            mixing = torch.baddbmm(eye_n, _right_solve_spd(member_innovations, L), Y.mT, alpha=1.0 / n1)
    else:
        mixing, failed = _etkf_mixing(Y, innovation, r, eye_n, sqrt_method)
    mixing = mixing - (mixing.sum(-1, keepdim=True) - 1.0) / n_members  # M 1 = 1 to rounding
    if lam is not None:
        mixing = (mixing * lam).add_((1.0 - lam) / n_members)
    return torch.bmm(mixing, E), failed


def _etkf_mixing(Y, innovation, r, eye_n, sqrt_method):
    """The unlocalized ETKF's M = T + 1 w (module docstring) and failures."""
    n1 = Y.shape[-2] - 1
    r_isqrt = r.rsqrt()  # (B, m)
    Ys = Y * (r_isqrt.unsqueeze(-2) / math.sqrt(n1))  # (B, N, m): Y R^{-1/2} / √(N−1)
    M = torch.baddbmm(eye_n, Ys, Ys.mT)  # I + G, (B, N, N)
    _, T, failed = symmetric_sqrt_pair(M, method=sqrt_method)  # T = (I + G)^{-1/2}
    # w = dy R⁻¹ Yᵀ (I+G)⁻¹/(N−1) = [(dy R^{-1/2}) Ysᵀ] T T / √(N−1)
    w = ((innovation * r_isqrt).unsqueeze(-2) @ Ys.mT) @ T @ T / math.sqrt(n1)  # (B, 1, N)
    return T + w, failed  # every member moves by w A, and its anomaly becomes T A


def _localized_weights(Y, innovation, r, rho, eps, method, sqrt_method, projection):
    """Member weights W (B, N, N) of the localized analysis, x_j += Σ_k W_jk A_k (module docstring), and failures."""
    n_members = Y.shape[-2]
    n1 = n_members - 1
    cov = torch.bmm(Y.mT, Y).mul_(rho)  # (B, m, m): C̃ = ρ ∘ C_yy (ρ comes divided by N − 1)
    if method == "stochastic":
        # ΔY Yᵀ = D S̃⁻¹ C̃ Yᵀ = D (Yᵀ − S̃⁻¹ R Yᵀ), rows of D d_jᵀ = (y + ε_j − H x_j)ᵀ (module docstring).
        member_innovations = (innovation.unsqueeze(-2) + eps).sub_(Y)  # (B, N, m)
        cov.diagonal(dim1=-2, dim2=-1).add_(r)  # S̃ = C̃ + R
        L, failed = _cholesky(cov)
        rhs = member_innovations @ (Y - _right_solve_spd(Y * r.unsqueeze(-2), L)).mT  # D (Y − Y R S̃⁻¹)ᵀ
    else:
        r_isqrt = r.rsqrt()
        eye_m = torch.eye(Y.shape[-1], dtype=Y.dtype, device=Y.device)
        gain_rhs = cov * r_isqrt.unsqueeze(-1)  # R^{-1/2} C̃
        V, V_inv, failed_sqrt = symmetric_sqrt_pair(eye_m + gain_rhs * r_isqrt.unsqueeze(-2), method=sqrt_method)
        L, failed_chol = _cholesky(V + eye_m)
        F = torch.cholesky_solve(V_inv, L)  # (V + I)⁻¹ V⁻¹ (the two commute)
        mean_weights = (V_inv @ (V_inv @ (innovation * r_isqrt).unsqueeze(-1))).mT  # (B, 1, m): (V⁻² R^{-1/2} dy)ᵀ
        increments = (mean_weights - (Y * r_isqrt.unsqueeze(-2)) @ F) @ gain_rhs  # (B, N, m)
        failed = failed_sqrt | failed_chol
        rhs = increments @ Y.mT  # (B, N, N): ΔY Yᵀ
    gram = Y @ Y.mT  # (B, N, N): Y Yᵀ, PSD with 1 in its null space
    if projection == "eigh":
        weights, failed_gram = _eigh_pinv_apply(rhs, gram)
        return weights, failed | failed_gram
    trace = gram.diagonal(dim1=-2, dim2=-1).sum(-1)
    L, failed_gram = _cholesky(gram + (trace / (n1 * n_members))[:, None, None])  # + μ 1 1ᵀ / N
    weights = _right_solve_spd(rhs, L)
    if projection == "cholesky_eigh":  # CPU: redo the experiments whose Y is (nearly) rank-deficient with eigh
        redo = failed_gram | (
            L.diagonal(dim1=-2, dim2=-1).square().amin(-1) <= trace * (n_members * torch.finfo(Y.dtype).eps)
        )
        if bool(redo.any()):
            weights[redo], failed_redo = _eigh_pinv_apply(rhs[redo], gram[redo])
            failed_gram = failed_gram.clone()
            failed_gram[redo] = failed_redo
    return weights, failed | failed_gram


def _eigh_pinv_apply(rhs, gram):
    """rhs (Y Yᵀ)⁺ from eigh with a relative truncation (eigenvalues ≤ N·eps·λ_max count as zero), and failures."""
    vals, vecs = torch.linalg.eigh(gram)
    keep = vals > vals[..., -1:] * (gram.shape[-1] * torch.finfo(gram.dtype).eps)
    inv = torch.where(keep, 1.0 / torch.where(keep, vals, 1.0), 0.0)
    return ((rhs @ vecs) * inv.unsqueeze(-2)) @ vecs.mT, ~keep.any(-1)
