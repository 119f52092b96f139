"""The EnKF analysis and its localization: equations against independent dense references, batching, dtypes."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg as sla
import torch

from bridging.da.analysis import _cholesky, analysis, draw_obs_perturbations, symmetric_sqrt_pair
from bridging.da.localization import gaspari_cohn, obs_taper, taper_from_settings, taper_summary, zonal_distance_deg
from bridging.settings import LocalizationSection


def _problem(seed=0, B=None, N=20, n=30, m=12, dtype=torch.float64):
    """A forecast ensemble with correlated anomalies and an offset mean, observations and R."""
    rng = np.random.default_rng(seed)
    lead = () if B is None else (B,)
    mix = rng.standard_normal((n, n)) / np.sqrt(n)
    E = rng.standard_normal((*lead, N, n)) @ mix * 0.8 + rng.standard_normal(n)
    y = rng.standard_normal((*lead, m))
    R = rng.uniform(0.1, 0.5, m)
    eps = rng.standard_normal((*lead, N, m)) * np.sqrt(R)
    t = lambda a: torch.tensor(a, dtype=dtype)  # noqa: E731
    return t(E), t(y), t(R), t(eps)


def _dense_stochastic(E, y, R, eps, inflation=1.0):
    """Textbook state-space form: n×n covariance, dense H, explicit inverse (the form the library avoids)."""
    E, y, R, eps = (np.asarray(a, dtype=np.float64) for a in (E, y, R, eps))
    N, n = E.shape
    m = y.size
    H = np.hstack([np.zeros((m, n - m)), np.eye(m)])
    mu = E.mean(0)
    A = (E - mu) * inflation
    E = mu + A
    P = A.T @ A / (N - 1)
    K = P @ H.T @ np.linalg.inv(H @ P @ H.T + np.diag(R))
    return E + ((y + eps - E @ H.T) @ K.T)


def _dense_localized(E, y, R, rho, *, eps=None, inflation=1.0):
    """The localized filter written out: observation-space increments with explicit inverses (and scipy's sqrtm for
    the ETKF, eps=None), member weights from numpy's pseudo-inverse of the observed anomalies, x_j += Σ_k W_jk A_k."""
    E, y, R, rho = (np.asarray(a, dtype=np.float64) for a in (E, y, R, rho))
    N, n = E.shape
    m = y.size
    mu = E.mean(0)
    A = (E - mu) * inflation
    Y = A[:, n - m :]
    C = rho * (Y.T @ Y / (N - 1))
    S = C + np.diag(R)
    if eps is not None:
        dY = (y + np.asarray(eps, dtype=np.float64) - (mu[n - m :] + Y)) @ np.linalg.inv(S) @ C
    else:
        Ris = np.diag(R**-0.5)
        V = np.real(sla.sqrtm(Ris @ S @ Ris))
        mean_increment = C @ np.linalg.inv(S) @ (y - mu[n - m :])
        anomaly_increments = -Y @ Ris @ np.linalg.inv(V) @ np.linalg.inv(V + np.eye(m)) @ Ris @ C
        dY = mean_increment + anomaly_increments
    W = dY @ np.linalg.pinv(Y)  # row j: argmin ‖Yᵀ w − δy_j‖ of minimum norm
    return mu + A + W @ A


def _rel(a, b, ref):
    return float(np.abs(np.asarray(a) - np.asarray(b)).max() / np.abs(np.asarray(b) - np.asarray(ref)).max())


def _random_taper(m, seed=1, half_width=60.0):
    lon = np.sort(np.random.default_rng(seed).uniform(130, 270, m))
    return gaspari_cohn(zonal_distance_deg(lon, lon), half_width)


# ------------------------------------------------------------------------------------------------ equations


def test_stochastic_without_taper_matches_dense_reference():
    E, y, R, eps = _problem(seed=3)
    ours = analysis(E, y, R, obs_perturbations=eps)
    assert _rel(ours, _dense_stochastic(E, y, R, eps), E) < 1e-12


@pytest.mark.parametrize("shape", [{}, {"N": 15, "n": 40, "m": 20}])  # rank(Y) = m < N − 1, and = N − 1
@pytest.mark.parametrize("inflation", [1.0, 1.09])
def test_localized_stochastic_matches_dense_reference(inflation, shape):
    E, y, R, eps = _problem(**shape)
    taper = _random_taper(y.shape[-1])
    ours = analysis(E, y, R, obs_taper=torch.tensor(taper), obs_perturbations=eps, inflation=inflation)
    ref = _dense_localized(E, y, R, taper, eps=eps, inflation=inflation)
    assert _rel(ours, ref, E) < 1e-10


@pytest.mark.parametrize("shape", [{}, {"N": 15, "n": 40, "m": 20}])
def test_localized_etkf_matches_dense_reference(shape):
    E, y, R, _ = _problem(seed=4, **shape)
    taper = _random_taper(y.shape[-1], seed=5)
    ours = analysis(E, y, R, method="etkf", obs_taper=torch.tensor(taper))
    assert _rel(ours, _dense_localized(E, y, R, taper), E) < 1e-10


FULL_RANK, LOW_RANK = {"N": 15, "n": 40, "m": 20}, {"N": 20, "n": 40, "m": 12}


# The Cholesky projection needs rank(Y) = N − 1, so it is only tried on the full-rank problem.
@pytest.mark.parametrize(
    ("shape", "projection"),
    [(FULL_RANK, "eigh"), (FULL_RANK, "cholesky"), (FULL_RANK, "cholesky_eigh"), (LOW_RANK, "eigh")],
)
@pytest.mark.parametrize("method", ["stochastic", "etkf"])
def test_taper_of_ones_equals_no_taper(method, shape, projection):
    """For ρ ≡ 1 the localized (projected) filter is the unlocalized one, to rounding."""
    E, y, R, eps = _problem(seed=6, **shape)
    m = shape["m"]
    pert = eps if method == "stochastic" else None
    a = analysis(E, y, R, method=method, obs_perturbations=pert, inflation=1.09)
    b = analysis(
        E,
        y,
        R,
        method=method,
        obs_perturbations=pert,
        inflation=1.09,
        obs_taper=torch.ones(m, m, dtype=torch.float64),
        projection=projection,
    )
    assert _rel(a, b, E) < 1e-11


def test_rank_deficient_ensemble_falls_back_to_the_truncated_eigh_projection():
    """Duplicated members make Y Yᵀ singular beyond its 1-direction: the CPU's Cholesky projection hands those
    experiments to eigh (relative truncation), which still matches the pseudo-inverse reference."""
    E, y, R, eps = _problem(seed=25, B=2, N=15, n=40, m=20)
    E[1, 8:] = E[1, :7]  # experiment 1: 8 distinct members, rank(Y) = 7
    taper = _random_taper(20, seed=26)
    kwargs = dict(obs_taper=torch.tensor(taper), obs_perturbations=eps)
    auto = analysis(E, y, R, **kwargs)
    assert torch.equal(auto, analysis(E, y, R, projection="cholesky_eigh", **kwargs))
    assert torch.allclose(
        auto[1], analysis(E[1], y[1], R, projection="eigh", **{**kwargs, "obs_perturbations": eps[1]}), atol=1e-12
    )
    for b in range(2):
        ref = _dense_localized(E[b], y[b], R, taper, eps=eps[b])
        assert _rel(auto[b], ref, E[b]) < 1e-8


@pytest.mark.parametrize("method", ["stochastic", "etkf"])
def test_localized_increments_move_z_and_y_with_the_same_member_weights(method):
    """The increment of every state entry is one member combination of the anomalies (balanced z and y)."""
    E, y, R, eps = _problem(seed=11, N=15, n=40, m=20)
    pert = eps if method == "stochastic" else None
    Ea = analysis(E, y, R, method=method, obs_taper=torch.tensor(_random_taper(20)), obs_perturbations=pert).numpy()
    A = (E - E.mean(-2, keepdim=True)).numpy()
    increments = Ea - E.numpy()
    weights = np.linalg.lstsq(A.T, increments.T, rcond=None)[0].T  # increments = W A, fitted on the whole state
    np.testing.assert_allclose(weights @ A, increments, atol=1e-10 * np.abs(increments).max())
    # ... and the same weights come from the observed part alone: z cannot move without y moving with it.
    Y = A[:, -20:]
    obs_weights = np.linalg.lstsq(Y.T, increments[:, -20:].T, rcond=None)[0].T
    np.testing.assert_allclose(obs_weights @ A, increments, atol=1e-10 * np.abs(increments).max())


def test_etkf_mean_equals_the_kalman_update_of_the_mean():
    """With or without a taper, the ETKF moves the mean as the stochastic filter with zero perturbations does."""
    E, y, R, eps = _problem(seed=7)
    for taper in (None, torch.tensor(_random_taper(12, seed=8))):
        etkf = analysis(E, y, R, method="etkf", obs_taper=taper)
        stoch = analysis(E, y, R, obs_taper=taper, obs_perturbations=torch.zeros_like(eps))
        assert torch.allclose(etkf.mean(-2), stoch.mean(-2), atol=1e-12, rtol=0)


def test_etkf_posterior_covariance_is_the_kalman_covariance():
    """Without localization the square-root ensemble has exactly the covariance (I − KH) P."""
    E, y, R, _ = _problem(seed=9, N=40, n=25, m=10)
    Ea = analysis(E, y, R, method="etkf").numpy()
    Ef = E.numpy()
    P = np.cov(Ef.T)
    H = np.hstack([np.zeros((10, 15)), np.eye(10)])
    K = P @ H.T @ np.linalg.inv(H @ P @ H.T + np.diag(R.numpy()))
    np.testing.assert_allclose(np.cov(Ea.T), (np.eye(25) - K @ H) @ P, atol=1e-12)


def test_inflation_is_applied_to_the_forecast_anomalies_before_the_gain():
    E, y, R, eps = _problem(seed=10)
    lam = 1.3
    mu = E.mean(-2, keepdim=True)
    for method, pert in (("stochastic", eps), ("etkf", None)):
        a = analysis(E, y, R, method=method, inflation=lam, obs_perturbations=pert)
        b = analysis(mu + lam * (E - mu), y, R, method=method, obs_perturbations=pert)
        assert torch.allclose(a, b, atol=1e-12, rtol=0)


# ------------------------------------------------------------------------------------------------ batching, dtypes


@pytest.mark.parametrize("method", ["stochastic", "etkf"])
def test_batched_equals_loop_over_experiments(method):
    E, y, R, eps = _problem(seed=12, B=4)
    R_b = R * torch.tensor([1.0, 0.5, 2.0, 1.5], dtype=torch.float64)[:, None]
    infl = torch.tensor([1.0, 1.05, 1.1, 1.2], dtype=torch.float64)
    taper = torch.tensor(np.stack([_random_taper(12, seed=s) for s in range(4)]))
    pert = eps if method == "stochastic" else None
    for tap in (None, taper):
        batched = analysis(E, y, R_b, method=method, inflation=infl, obs_taper=tap, obs_perturbations=pert)
        for b in range(4):
            single = analysis(
                E[b],
                y[b],
                R_b[b],
                method=method,
                inflation=float(infl[b]),
                obs_taper=None if tap is None else tap[b],
                obs_perturbations=None if pert is None else pert[b],
            )
            assert torch.allclose(batched[b], single, atol=1e-12, rtol=0)


@pytest.mark.parametrize("method", ["stochastic", "etkf"])
def test_batched_equals_the_loop_at_the_paper_size(method):
    """At n = 613, m = 112 (the CPU's blocked Cholesky): a batch gives each experiment's own analysis."""
    E, y, R, eps = _problem(seed=23, B=8, N=50, n=613, m=112)
    taper = torch.tensor(_random_taper(112, seed=24))
    pert = eps if method == "stochastic" else None
    batched = analysis(E, y, R, method=method, obs_taper=taper, obs_perturbations=pert, inflation=1.09)
    for b in range(8):
        single = analysis(
            E[b],
            y[b],
            R,
            method=method,
            obs_taper=taper,
            inflation=1.09,
            obs_perturbations=None if pert is None else pert[b],
        )
        assert torch.allclose(batched[b], single, atol=1e-12, rtol=0)  # batched BLAS may round differently


def test_extra_leading_dimensions_and_shared_taper():
    E, y, R, eps = _problem(seed=13, B=6)
    taper = torch.tensor(_random_taper(12))
    flat = analysis(E, y, R, obs_taper=taper, obs_perturbations=eps)
    nested = analysis(
        E.reshape(2, 3, 20, 30), y.reshape(2, 3, 12), R, obs_taper=taper, obs_perturbations=eps.reshape(2, 3, 20, 12)
    )
    assert nested.shape == (2, 3, 20, 30)
    assert torch.allclose(nested.reshape(6, 20, 30), flat, atol=1e-13, rtol=0)


@pytest.mark.parametrize("localized", [False, True])
@pytest.mark.parametrize("method", ["stochastic", "etkf"])
def test_float32_agrees_with_float64_at_the_paper_size(method, localized):
    """n_l = 501, n_o = 112, N = 50: float32 increments agree with float64 to ~1e-6."""
    E, y, R, eps = _problem(seed=14, N=50, n=613, m=112)
    taper = torch.tensor(_random_taper(112, seed=15)) if localized else None
    pert = eps if method == "stochastic" else None
    a64 = analysis(E, y, R, method=method, obs_taper=taper, obs_perturbations=pert, inflation=1.09)
    a32 = analysis(
        E.float(),
        y.float(),
        R.float(),
        method=method,
        obs_taper=None if taper is None else taper.float(),
        obs_perturbations=None if pert is None else pert.float(),
        inflation=1.09,
    )
    assert a32.dtype == torch.float32
    assert _rel(a32.double(), a64, E) < 5e-5


def test_newton_schulz_square_root_matches_eigh():
    rng = np.random.default_rng(16)
    X = rng.standard_normal((3, 50, 200)) * rng.uniform(0.1, 30, (3, 1, 200))
    M = torch.tensor(np.eye(50) + X @ X.transpose(0, 2, 1) / 49)
    s1, i1, f1 = symmetric_sqrt_pair(M, method="eigh")
    s2, i2, f2 = symmetric_sqrt_pair(M, method="newton_schulz")
    assert not f1.any() and not f2.any()
    assert torch.allclose(s1, s2, rtol=1e-10, atol=1e-10 * float(s1.abs().max()))
    assert torch.allclose(i1, i2, rtol=1e-10, atol=1e-12)
    assert torch.allclose(s2 @ s2, M, rtol=1e-10, atol=1e-9 * float(M.abs().max()))


@pytest.mark.parametrize("with_taper", [False, True])
def test_etkf_newton_schulz_path_equals_eigh_path(with_taper):
    """The GPU path's square root, run on the CPU, gives the same ETKF analysis."""
    E, y, R, _ = _problem(seed=17, N=50, n=100, m=60)  # rank(Y) = N − 1, as the Cholesky projection needs
    taper = torch.tensor(_random_taper(60, seed=18)) if with_taper else None
    a = analysis(E, y, R, method="etkf", obs_taper=taper, sqrt_method="eigh")
    b = analysis(E, y, R, method="etkf", obs_taper=taper, sqrt_method="newton_schulz", projection="cholesky")
    assert _rel(a, b, E) < 1e-10


def test_newton_schulz_flags_a_matrix_it_cannot_handle():
    M = torch.diag(torch.tensor([1.0, 1e-30], dtype=torch.float64))
    _, _, failed = symmetric_sqrt_pair(M, method="newton_schulz")
    assert bool(failed)


# ------------------------------------------------------------------------------------------------ perturbations, errors


def test_drawn_perturbations_are_centred_rescaled_and_reproducible():
    R = torch.tensor([0.5, 2.0, 1.0], dtype=torch.float64)
    g = torch.Generator().manual_seed(3)
    eps = draw_obs_perturbations((4000, 10, 3), R, g, dtype=torch.float64, device="cpu")
    assert torch.allclose(eps.mean(-2), torch.zeros(4000, 3, dtype=torch.float64), atol=1e-14)
    # Centring alone would give E[sample variance (ddof 0)] = R (N−1)/N; the √(N/(N−1)) rescaling restores R.
    var = (eps**2).mean(-2).mean(0)
    assert torch.allclose(var, R, rtol=0.03)
    again = draw_obs_perturbations(
        (4000, 10, 3), R, torch.Generator().manual_seed(3), dtype=torch.float64, device="cpu"
    )
    assert torch.equal(eps, again)


def test_generator_draws_give_a_reproducible_stochastic_analysis():
    E, y, R, _ = _problem(seed=19)
    a = analysis(E, y, R, generator=torch.Generator().manual_seed(5))
    b = analysis(E, y, R, generator=torch.Generator().manual_seed(5))
    c = analysis(E, y, R, generator=torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_bad_arguments_are_refused():
    E, y, R, eps = _problem()
    with pytest.raises(ValueError, match="obs_perturbations or a generator"):
        analysis(E, y, R)
    with pytest.raises(ValueError, match="meaningless"):
        analysis(E, y, R, method="etkf", obs_perturbations=eps)
    with pytest.raises(ValueError, match="method"):
        analysis(E, y, R, method="enkf-n", obs_perturbations=eps)
    with pytest.raises(ValueError, match="obs_taper"):
        analysis(E, y, R, obs_perturbations=eps, obs_taper=torch.ones(30, 12, dtype=torch.float64))
    with pytest.raises(ValueError, match="projection"):
        analysis(E, y, R, obs_perturbations=eps, obs_taper=torch.ones(12, 12, dtype=torch.float64), projection="qr")
    with pytest.raises(ValueError, match="members"):
        analysis(E, y, R, obs_perturbations=eps[:5])


def test_a_non_positive_definite_innovation_covariance_raises_on_cpu():
    E, y, R, eps = _problem()
    with pytest.raises(ValueError, match="obs_var must be positive"):
        analysis(E, y, -10 * R, obs_perturbations=eps)
    # An obs–obs taper that is not positive semi-definite can make ρ∘C_yy + R indefinite.
    taper = -torch.ones(12, 12, dtype=torch.float64)
    taper.fill_diagonal_(1.0)
    with pytest.raises(torch.linalg.LinAlgError, match="not positive definite"):
        analysis(E, y, 1e-3 * R, obs_perturbations=eps, obs_taper=taper)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cpu_lapack_cholesky_matches_torch_and_flags_failures(dtype):
    """At the paper's m = 112 the CPU factors with LAPACK in place: same factor as cholesky_ex, failures flagged."""
    rng = np.random.default_rng(21)
    Y = torch.tensor(rng.standard_normal((4, 50, 112)), dtype=dtype)
    S = Y.mT @ Y / 49 + 0.1 * torch.eye(112, dtype=dtype)
    S[2, 7, 7] = -1.0  # not positive definite
    S[3, 40, 3] = S[3, 3, 40] = float("nan")  # OpenBLAS's potrf does not report a NaN: the diagonal check does
    factor, failed = _cholesky(S.clone())
    assert failed.tolist() == [False, False, True, True]
    reference = torch.linalg.cholesky(S[:2])
    assert torch.allclose(factor[:2], reference, rtol=0, atol=(1e-5 if dtype == torch.float32 else 1e-12))
    assert torch.equal(factor[:2].triu(1), torch.zeros_like(factor[:2]))


@pytest.mark.parametrize("localized", [False, True])
@pytest.mark.parametrize("method", ["stochastic", "etkf"])
def test_the_analysis_moves_with_a_shift_of_the_state(method, localized):
    """x_a(E + c, y + Hc) = x_a(E) + c: the update never needs the members' mean beyond rounding (x_a = M' E)."""
    E, y, R, eps = _problem(seed=22, N=50, n=613, m=112)
    taper = torch.tensor(_random_taper(112, seed=23)) if localized else None
    pert = eps if method == "stochastic" else None
    shift = torch.linspace(-50.0, 50.0, 613, dtype=torch.float64)
    kwargs = dict(method=method, obs_taper=taper, obs_perturbations=pert, inflation=1.09)
    moved = analysis(E + shift, y + shift[-112:], R, **kwargs)
    assert _rel(moved - shift, analysis(E, y, R, **kwargs), E) < 1e-11


# ------------------------------------------------------------------------------------------------ localization


def test_gaspari_cohn_shape():
    c = 0.7
    r = np.linspace(0, 3, 3001) * c
    rho = gaspari_cohn(r, c)
    assert rho[0] == 1.0
    assert np.all(np.diff(rho) <= 1e-15), "monotone non-increasing"
    assert np.all(rho[r >= 2 * c] == 0.0) and np.all(rho[r < 2 * c - 1e-9] > 0)
    # Both branches give 5/24 at r = c (continuity of the piecewise polynomial).
    assert gaspari_cohn([c * (1 - 1e-12)], c)[0] == pytest.approx(5 / 24, abs=1e-9)
    assert gaspari_cohn([c * (1 + 1e-12)], c)[0] == pytest.approx(5 / 24, abs=1e-9)
    # Smoothness: the taper is C¹ at r = c (derivatives of both branches agree).
    h = 1e-6 * c
    left = (gaspari_cohn([c], c)[0] - gaspari_cohn([c - h], c)[0]) / h
    right = (gaspari_cohn([c + h], c)[0] - gaspari_cohn([c], c)[0]) / h
    assert left == pytest.approx(right, rel=1e-4)


def test_obs_taper_is_positive_semidefinite():
    rng = np.random.default_rng(20)
    lon = np.repeat(np.sort(rng.uniform(126, 280, 56)), 2)  # SST and thermocline depth at each node longitude
    rho = gaspari_cohn(zonal_distance_deg(lon, lon), 30.0)
    assert np.allclose(rho, rho.T)
    assert np.linalg.eigvalsh(rho).min() > -1e-12
    assert np.all(np.diag(rho) == 1.0)


def test_taper_from_settings_and_summary():
    lon = np.array([130.0, 160.0, 250.0, 130.0, 160.0, 280.0])
    taper = taper_from_settings(lon, LocalizationSection(enabled=True, obs_halfwidth_deg=100.0))
    np.testing.assert_allclose(taper, gaspari_cohn(zonal_distance_deg(lon, lon), 100.0))
    np.testing.assert_array_equal(taper, obs_taper(lon, 100.0))
    assert taper[0, 3] == 1.0  # SST and thermocline depth at the same longitude
    assert taper[0, 5] == pytest.approx(gaspari_cohn([150.0], 100.0)[0])
    assert taper_from_settings(lon, LocalizationSection(enabled=False)) is None
    assert taper_from_settings(lon, {"enabled": True, "obs_halfwidth_deg": 100.0}).shape == (6, 6)
    summary = taper_summary(taper, lon)
    assert summary["weight_between_westmost_and_eastmost"] == pytest.approx(taper[0, 5])
    assert taper_summary(None) == {"enabled": False}
    # The default keeps the basin-scale (126–280 °E) covariance ENSO is made of.
    assert obs_taper([126.0, 280.0], LocalizationSection().obs_halfwidth_deg)[0, 1] > 0.5
    with pytest.raises(ValueError, match="longitudes"):
        obs_taper(np.array([[130.0]]), 100.0)
