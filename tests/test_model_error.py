"""The forecast model's error model: fluctuation-dissipation Q, the state-dependent noise head, and early stopping
that waits for the training schedules."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import linalg, stats
from test_forecast import simulate_ar1

from bridging.diagnostics.statistics import moments
from bridging.errors import ConfigError
from bridging.models.curriculum import ramps_end_epoch
from bridging.models.forecast import LinearForecaster, load_forecast_model, save_forecast_model
from bridging.models.gate import mixture_skewness, skewness_se
from bridging.models.model_error import fit_noise_head, fluctuation_dissipation_covariance
from bridging.models.training import EarlyStopping
from bridging.settings import CurriculumSection, ForecastSection, validate_config


def test_fluctuation_dissipation_q_recovers_the_noise_and_keeps_the_climate():
    a = np.array([[0.8, 0.2, 0.0], [-0.2, 0.7, 0.1], [0.0, 0.0, 0.5]])
    q_true = np.array([[0.3, 0.1, 0.0], [0.1, 0.2, 0.0], [0.0, 0.0, 0.1]])
    x = simulate_ar1(a, q_true, 200_000, seed=3)
    x = x - x.mean(0)
    q, summary = fluctuation_dissipation_covariance(a, [x], [1.0])
    np.testing.assert_allclose(q, q_true, atol=0.01)
    assert summary["negative_eigenvalues_clipped"] == 0
    # The defining property: the linear model's stationary covariance with this Q is the data's covariance.
    np.testing.assert_allclose(linalg.solve_discrete_lyapunov(a, q), x.T @ x / x.shape[0], rtol=1e-6, atol=1e-9)


def _state_dependent_series(months: int, slope: float, seed: int) -> np.ndarray:
    """x_{t+1} = 0.9 x_t + exp(½ slope·x_t) σ η_t in the first of two variables (the second is plain AR(1))."""
    rng = np.random.default_rng(seed)
    x = np.zeros((months + 100, 2))
    for t in range(1, x.shape[0]):
        amp = np.exp(0.5 * slope * np.clip(x[t - 1, 0], -3, 3))
        x[t] = 0.9 * x[t - 1] + np.array([0.4 * amp, 0.4]) * rng.standard_normal(2)
    return x[100:]


def _head_records(x: np.ndarray, split: int):
    """(residuals, origins, weight) of the true linear model, standardised by x's std, for months before/after split."""
    std = x.std(0)
    xs = (x - x.mean(0)) / std
    residuals = (x[1:] - 0.9 * x[:-1]) / std
    return [(residuals[:split], xs[:split], 1.0)], [(residuals[split:], xs[:-1][split:], 1.0)]


@pytest.mark.parametrize("slope", [0.5, 0.0])
def test_noise_head_finds_state_dependence_only_where_there_is_some(slope):
    x = _state_dependent_series(24_000, slope, seed=4)
    train, heldout = _head_records(x, 20_000)
    q = np.cov(np.concatenate([r for r, _, _ in train]), rowvar=False)
    predictors = np.eye(2)  # the state itself
    head = fit_noise_head(q, predictors, train, heldout, n_modes=2)
    amplitude_spread = np.ptp(np.asarray(head.summary["amplitude_5_50_95_percent"])[[0, 2]], axis=0).max()
    if slope:
        assert head.summary["heldout_nll_gain_vs_state_independent"] > 0.01
        # the mode along the first variable: log g² ≈ slope·x (x standardised here by its std)
        mode = int(np.argmax(np.abs(head.modes[0])))
        assert head.coef[mode, 1] == pytest.approx(slope * x[:, 0].std(), rel=0.25)
        assert amplitude_spread > 0.5
    else:
        assert head.summary["heldout_nll_gain_vs_state_independent"] < 0.005
        assert amplitude_spread < 0.15


def test_state_dependent_noise_makes_skewness_a_constant_noise_cannot():
    """The linear model with the fitted head reproduces the skewness of state-dependent forcing; with its constant
    covariance alone the free run is symmetric."""
    x = _state_dependent_series(24_000, 0.5, seed=5)
    mean, std = x.mean(0), x.std(0)
    train, heldout = _head_records(x, 20_000)
    q_std = np.cov(np.concatenate([r for r, _, _ in train]), rowvar=False)
    head = fit_noise_head(q_std, np.eye(2), train, heldout, n_modes=2)
    weight = np.diag(0.9 * np.ones(2))
    bias = 0.9 * mean / std - mean / std
    model = LinearForecaster(mean, std, weight, bias, noise_cov=std[:, None] * q_std * std[None, :])
    plain = LinearForecaster(mean, std, weight, bias, noise_cov=model.noise_cov.numpy())
    model.set_noise_head(head.modes, head.predictors, head.coef)

    def skewness(m, seed):
        gen = torch.Generator().manual_seed(seed)
        noise = m.sample_noise(20_000, gen)
        current, out = torch.as_tensor(x[-1:], dtype=torch.float32), []
        for t in range(noise.shape[0]):
            nxt, _ = m.step(current)
            current = nxt + m.modulate_noise(noise[t : t + 1], current)
            out.append(float(current[0, 0]))
        return stats.skew(out)

    truth = stats.skew(x[:, 0])
    assert truth > 0.6
    assert skewness(model, 0) == pytest.approx(truth, abs=0.3)
    assert abs(skewness(plain, 0)) < 0.1


def test_noise_head_travels_with_the_checkpoint_and_is_the_identity_without_one(tmp_path):
    n = 3
    model = LinearForecaster(np.zeros(n), np.ones(n), 0.5 * np.eye(n), np.zeros(n), noise_cov=np.eye(n))
    noise, origin = torch.randn(4, n), torch.randn(4, n)
    assert torch.equal(model.modulate_noise(noise, origin), noise)
    modes = np.eye(n)[:, :1]
    model.set_noise_head(modes, np.eye(n)[:, :1], np.array([[0.0, 1.0]]))
    modulated = model.modulate_noise(noise, origin)
    g = torch.exp(0.5 * origin[:, 0])
    torch.testing.assert_close(modulated[:, 0], noise[:, 0] * g)
    torch.testing.assert_close(modulated[:, 1:], noise[:, 1:])
    save_forecast_model(tmp_path / "f.pt", model)
    loaded = load_forecast_model(tmp_path / "f.pt")
    torch.testing.assert_close(loaded.modulate_noise(noise, origin), modulated)


def test_early_stopping_waits_for_the_ramps():
    stopper = EarlyStopping(patience=2, start_epoch=5)
    assert stopper.update(1.0, -1)  # the baseline always competes
    for epoch in range(5):  # ramping epochs: better scores, but neither best nor counted
        assert not stopper.update(0.1, epoch)
    assert stopper.best_epoch == -1 and not stopper.should_stop
    assert stopper.update(0.5, 5) and stopper.best_epoch == 5
    stopper.update(0.6, 6)
    stopper.update(0.7, 7)
    assert stopper.should_stop


def test_ramps_must_end_before_training_does():
    settings = ForecastSection(epochs=30, rollout_ramp_fraction=0.6)
    assert ramps_end_epoch(settings, CurriculumSection()) == 18  # rollout 1 → 12 by epoch 18, curriculum by 15
    with pytest.raises(ValueError, match="must exceed the epoch at which the ramps end"):
        ramps_end_epoch(ForecastSection(epochs=20), CurriculumSection(ramp_end_epoch=20))
    # caught when the config loads, for the LSTM only (the linear model has no training schedule)
    with pytest.raises(ConfigError, match="forecast.epochs"):
        validate_config({"forecast": {"kind": "lstm", "epochs": 20}, "curriculum": {"ramp_end_epoch": 20}})
    validate_config({"forecast": {"kind": "linear", "epochs": 20}, "curriculum": {"ramp_end_epoch": 20}})


def test_mixture_skewness_pools_records_by_weight():
    rng = np.random.default_rng(0)
    a, b = rng.gamma(2.0, size=600), -rng.gamma(4.0, size=1200) + 3
    pooled = moments(np.concatenate([a, b]))["skewness"]
    assert mixture_skewness([a, b], [1.0, 2.0]) == pytest.approx(pooled, rel=1e-10)  # weights ∝ lengths
    assert mixture_skewness([a, b], [1.0, 0.0]) == pytest.approx(moments(a)["skewness"], rel=1e-10)
    # the bootstrap SE of a Gaussian record's skewness is near the textbook √(6/n) for independent months
    se = skewness_se([rng.standard_normal(2400)], [1.0])
    assert se == pytest.approx(np.sqrt(6 / 2400), rel=0.3)
