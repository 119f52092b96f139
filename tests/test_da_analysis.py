"""The EnKF analysis and its localization: equations against independent dense references, batching, dtypes."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg as sla
import torch

from bridging.da.analysis import analysis, draw_obs_perturbations, symmetric_sqrt_pair
from bridging.da.localization import (
    augmented_taper,
    correlation_distance,
    gaspari_cohn,
    taper_from_training,
    zonal_distance_deg,
)
from bridging.errors import InputDataError
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


def _dense_stochastic(E, y, R, eps, taper, inflation=1.0):
    """Textbook state-space form: n×n covariance, dense H, explicit inverse (the form the library avoids)."""
    E, y, R, eps = (np.asarray(a, dtype=np.float64) for a in (E, y, R, eps))
    N, n = E.shape
    m = y.size
    H = np.hstack([np.zeros((m, n - m)), np.eye(m)])
    mu = E.mean(0)
    A = (E - mu) * inflation
    E = mu + A
    P = A.T @ A / (N - 1)
    PHt = (P @ H.T) * taper
    K = PHt @ np.linalg.inv(H @ PHt + np.diag(R))
    return E + ((y + eps - E @ H.T) @ K.T)


def _dense_etkf(E, y, R, taper):
    """The localized symmetric square root written out with scipy's sqrtm and explicit inverses."""
    E, y, R = (np.asarray(a, dtype=np.float64) for a in (E, y, R))
    N, n = E.shape
    m = y.size
    H = np.hstack([np.zeros((m, n - m)), np.eye(m)])
    mu = E.mean(0)
    A = E - mu
    PHt = (A.T @ A / (N - 1) @ H.T) * taper
    S = H @ PHt + np.diag(R)
    Ris = np.diag(R**-0.5)
    W = np.real(sla.sqrtm(Ris @ S @ Ris))
    K = PHt @ np.linalg.inv(S)
    Ktilde = PHt @ Ris @ np.linalg.inv(W) @ np.linalg.inv(W + np.eye(m)) @ Ris
    return mu + K @ (y - H @ mu) + A - A @ H.T @ Ktilde.T


def _rel(a, b, ref):
    return float(np.abs(np.asarray(a) - np.asarray(b)).max() / np.abs(np.asarray(b) - np.asarray(ref)).max())


def _random_taper(n, m, seed=1):
    rng = np.random.default_rng(seed)
    lon = np.sort(rng.uniform(130, 270, m))
    latent = gaspari_cohn(rng.uniform(0, 1, (n - m, m)), 0.4)
    return np.vstack([latent, gaspari_cohn(zonal_distance_deg(lon, lon), 25.0)])


# ------------------------------------------------------------------------------------------------ equations


@pytest.mark.parametrize("inflation", [1.0, 1.09])
def test_stochastic_matches_dense_reference_with_taper(inflation):
    E, y, R, eps = _problem()
    taper = _random_taper(30, 12)
    ours = analysis(E, y, R, taper=torch.tensor(taper), obs_perturbations=eps, inflation=inflation)
    ref = _dense_stochastic(E, y, R, eps, taper, inflation)
    assert _rel(ours, ref, E) < 1e-12


def test_stochastic_without_taper_matches_dense_reference():
    E, y, R, eps = _problem(seed=3)
    ours = analysis(E, y, R, obs_perturbations=eps)
    assert _rel(ours, _dense_stochastic(E, y, R, eps, np.ones((30, 12))), E) < 1e-12


def test_etkf_with_taper_matches_dense_reference():
    E, y, R, _ = _problem(seed=4)
    taper = _random_taper(30, 12, seed=5)
    ours = analysis(E, y, R, method="etkf", taper=torch.tensor(taper))
    assert _rel(ours, _dense_etkf(E, y, R, taper), E) < 1e-10


@pytest.mark.parametrize("method", ["stochastic", "etkf"])
def test_taper_of_ones_equals_no_taper(method):
    """The ensemble-space (no taper) and observation-space (taper) forms are the same filter."""
    E, y, R, eps = _problem(seed=6, N=15, n=40, m=20)
    pert = eps if method == "stochastic" else None
    a = analysis(E, y, R, method=method, obs_perturbations=pert)
    b = analysis(E, y, R, method=method, obs_perturbations=pert, taper=torch.ones(40, 20, dtype=torch.float64))
    assert _rel(a, b, E) < 1e-12


def test_etkf_mean_equals_the_kalman_update_of_the_mean():
    """With any taper, the ETKF moves the mean by K (y − Hμ): the stochastic filter with zero perturbations."""
    E, y, R, eps = _problem(seed=7)
    taper = torch.tensor(_random_taper(30, 12, seed=8))
    etkf = analysis(E, y, R, method="etkf", taper=taper)
    stoch = analysis(E, y, R, taper=taper, obs_perturbations=torch.zeros_like(eps))
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


def test_zero_taper_row_leaves_that_variable_untouched():
    """A latent variable with no taper weight to any observable gets no increment (no spurious update)."""
    E, y, R, eps = _problem(seed=11)
    taper = torch.tensor(_random_taper(30, 12))
    taper[3] = 0.0
    for method, pert in (("stochastic", eps), ("etkf", None)):
        Ea = analysis(E, y, R, method=method, taper=taper, obs_perturbations=pert)
        assert torch.equal(Ea[:, 3], E[:, 3])


# ------------------------------------------------------------------------------------------------ batching, dtypes


@pytest.mark.parametrize("method", ["stochastic", "etkf"])
def test_batched_equals_loop_over_experiments(method):
    E, y, R, eps = _problem(seed=12, B=4)
    R_b = R * torch.tensor([1.0, 0.5, 2.0, 1.5], dtype=torch.float64)[:, None]
    infl = torch.tensor([1.0, 1.05, 1.1, 1.2], dtype=torch.float64)
    taper = torch.tensor(np.stack([_random_taper(30, 12, seed=s) for s in range(4)]))
    pert = eps if method == "stochastic" else None
    for tap in (None, taper):
        batched = analysis(E, y, R_b, method=method, inflation=infl, taper=tap, obs_perturbations=pert)
        for b in range(4):
            single = analysis(
                E[b],
                y[b],
                R_b[b],
                method=method,
                inflation=float(infl[b]),
                taper=None if tap is None else tap[b],
                obs_perturbations=None if pert is None else pert[b],
            )
            assert torch.allclose(batched[b], single, atol=1e-12, rtol=0)


@pytest.mark.parametrize("method", ["stochastic", "etkf"])
def test_cache_sized_cpu_chunks_equal_the_loop_at_the_paper_size(method):
    """At n = 613, m = 112 the CPU path splits a batch into cache-sized chunks; results must not depend on it."""
    E, y, R, eps = _problem(seed=23, B=3, N=50, n=613, m=112)
    taper = torch.tensor(_random_taper(613, 112, seed=24))
    pert = eps if method == "stochastic" else None
    batched = analysis(E, y, R, method=method, taper=taper, obs_perturbations=pert, inflation=1.09)
    for b in range(3):
        single = analysis(
            E[b],
            y[b],
            R,
            method=method,
            taper=taper,
            inflation=1.09,
            obs_perturbations=None if pert is None else pert[b],
        )
        assert torch.equal(batched[b], single)


def test_extra_leading_dimensions_and_shared_taper():
    E, y, R, eps = _problem(seed=13, B=6)
    taper = torch.tensor(_random_taper(30, 12))
    flat = analysis(E, y, R, taper=taper, obs_perturbations=eps)
    nested = analysis(
        E.reshape(2, 3, 20, 30), y.reshape(2, 3, 12), R, taper=taper, obs_perturbations=eps.reshape(2, 3, 20, 12)
    )
    assert nested.shape == (2, 3, 20, 30)
    assert torch.allclose(nested.reshape(6, 20, 30), flat, atol=1e-13, rtol=0)


@pytest.mark.parametrize("localized", [False, True])
@pytest.mark.parametrize("method", ["stochastic", "etkf"])
def test_float32_agrees_with_float64_at_the_paper_size(method, localized):
    """n_l = 501, n_o = 112, N = 50: float32 increments agree with float64 to ~1e-6."""
    E, y, R, eps = _problem(seed=14, N=50, n=613, m=112)
    taper = torch.tensor(_random_taper(613, 112, seed=15)) if localized else None
    pert = eps if method == "stochastic" else None
    a64 = analysis(E, y, R, method=method, taper=taper, obs_perturbations=pert, inflation=1.09)
    a32 = analysis(
        E.float(),
        y.float(),
        R.float(),
        method=method,
        taper=None if taper is None else taper.float(),
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
    E, y, R, _ = _problem(seed=17, N=50, n=80, m=30)
    taper = torch.tensor(_random_taper(80, 30, seed=18)) if with_taper else None
    a = analysis(E, y, R, method="etkf", taper=taper, sqrt_method="eigh")
    b = analysis(E, y, R, method="etkf", taper=taper, sqrt_method="newton_schulz")
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
    with pytest.raises(ValueError, match="taper"):
        analysis(E, y, R, obs_perturbations=eps, taper=torch.ones(12, 30, dtype=torch.float64))
    with pytest.raises(ValueError, match="members"):
        analysis(E, y, R, obs_perturbations=eps[:5])


def test_a_non_positive_definite_innovation_covariance_raises_on_cpu():
    E, y, R, eps = _problem()
    with pytest.raises(ValueError, match="obs_var must be positive"):
        analysis(E, y, -10 * R, obs_perturbations=eps)
    # An obs–obs taper that is not positive semi-definite can make ρ∘C_yy + R indefinite.
    taper = torch.ones(30, 12, dtype=torch.float64)
    taper[-12:] = -1.0
    taper[-12:].fill_diagonal_(1.0)
    with pytest.raises(torch.linalg.LinAlgError, match="not positive definite"):
        analysis(E, y, 1e-3 * R, obs_perturbations=eps, taper=taper)


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


def test_correlation_distance():
    rng = np.random.default_rng(21)
    y = rng.standard_normal((500, 2))
    z = np.column_stack([3 * y[:, 0] + 1, -y[:, 1], rng.standard_normal(500), np.full(500, 2.0)])
    d = correlation_distance(z, y)
    assert d[0, 0] == pytest.approx(0.0, abs=1e-12)
    assert d[1, 1] == pytest.approx(0.0, abs=1e-12)  # anti-correlation is as informative as correlation
    assert d[2].min() > 0.85  # independent: |corr| ~ 1/√T
    assert np.all(d[3] == 1.0)  # a constant latent variable is at distance 1 from everything
    with pytest.raises(InputDataError, match="constant"):
        correlation_distance(z, np.column_stack([y[:, 0], np.ones(500)]))


def test_augmented_taper_blocks_and_switch():
    rng = np.random.default_rng(22)
    T, n_l, m = 300, 8, 6
    y = rng.standard_normal((T, m))
    z = np.column_stack([y[:, :3] + 0.1 * rng.standard_normal((T, 3)), rng.standard_normal((T, 5))])
    lon = np.array([130.0, 160.0, 250.0, 130.0, 160.0, 250.0])
    loc = LocalizationSection(enabled=True, obs_halfwidth_deg=20.0, latent_halfwidth=0.4)
    taper = taper_from_training(z, y, lon, loc)
    assert taper.shape == (n_l + m, m)
    np.testing.assert_allclose(taper[n_l:], gaspari_cohn(zonal_distance_deg(lon, lon), 20.0))
    np.testing.assert_allclose(taper[:n_l], gaspari_cohn(correlation_distance(z, y), 0.4))
    assert taper[0, 0] > 0.9 and taper[0, 1] == 0.0  # z_0 is y_0's proxy and unrelated to y_1
    assert np.all(taper[3:n_l] == 0.0)  # noise latents: |corr| ≈ 0 → d ≈ 1 > 2c
    assert taper[n_l, 2] == 0.0  # 120° apart
    assert taper_from_training(z, y, lon, LocalizationSection(enabled=False)) is None
    assert np.array_equal(
        taper, augmented_taper(correlation_distance(z, y), lon, latent_halfwidth=0.4, obs_halfwidth_deg=20.0)
    )
