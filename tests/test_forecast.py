"""The latent forecast models (linear, LSTM with frozen linear skip), model noise, the gate and the stage."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from test_autoencoder import COMPUTE, GRID, TINY_AE, run_training, write_tiny_sources

from bridging.errors import GateFailedError
from bridging.grid import TargetGrid
from bridging.models.enso_score import EnsoIndices
from bridging.models.forecast import (
    LinearForecaster,
    LSTMForecaster,
    ensure_gate_passed,
    fit_ridge,
    load_forecast_model,
    one_step_residuals,
    residual_covariance,
    save_forecast_model,
    train_forecast,
    train_lstm,
)
from bridging.models.forecast_study import forecast_study
from bridging.models.gate import NINO_BOXES, GateData, box_indices, free_run, index_weights, run_gate
from bridging.models.latent import encode_sources
from bridging.models.training import training_checkpoint
from bridging.resume import ResumeCheckpoint, resume_path_for
from bridging.settings import CurriculumSection, ForecastSection, GateSection


def simulate_ar1(a: np.ndarray, q: np.ndarray, months: int, seed: int, mean=None) -> np.ndarray:
    rng = np.random.default_rng(seed)
    chol = np.linalg.cholesky(q)
    x = np.zeros((months + 200, a.shape[0]))
    for t in range(1, x.shape[0]):
        x[t] = a @ x[t - 1] + chol @ rng.standard_normal(a.shape[0])
    x = x[200:]
    return x if mean is None else x + mean


# ---------------------------------------------------------------------------------------------- linear model
def test_ridge_recovers_a_known_ar1():
    rng = np.random.default_rng(0)
    q_basis = rng.standard_normal((5, 5))
    a = 0.5 * q_basis / np.max(np.abs(np.linalg.eigvals(q_basis)))  # a generic (non-symmetric) stable matrix
    a += np.diag([0.4, 0.3, 0.2, 0.1, 0.0])
    assert np.max(np.abs(np.linalg.eigvals(a))) < 0.95
    x = simulate_ar1(a, 0.2 * np.eye(5), 40_000, seed=1)
    fit = fit_ridge([x], alpha=1e-6)
    np.testing.assert_allclose(fit.weight, a, atol=0.02)
    np.testing.assert_allclose(fit.bias, 0.0, atol=0.01)
    assert fit.spectral_radius == pytest.approx(np.max(np.abs(np.linalg.eigvals(a))), abs=0.02)
    assert fit.train_rmse == pytest.approx(np.sqrt(0.2), rel=0.02)


def test_weighted_ridge_follows_the_heavier_segment():
    a1, a2 = 0.9 * np.eye(2), 0.3 * np.eye(2)
    seg1, seg2 = simulate_ar1(a1, 0.1 * np.eye(2), 20_000, 1), simulate_ar1(a2, 0.1 * np.eye(2), 2_000, 2)
    # Equal weights per record, whatever their lengths: the coefficient lands between the two dynamics.
    both = fit_ridge([seg1, seg2], alpha=1e-6, weights=[0.5, 0.5])
    only_first = fit_ridge([seg1, seg2], alpha=1e-6, weights=[1.0, 0.0])
    np.testing.assert_allclose(only_first.weight, a1, atol=0.02)
    assert 0.35 < both.weight[0, 0] < 0.85


def test_linear_model_in_state_units_and_held_out_noise():
    a = np.array([[0.8, 0.1, 0.0], [-0.1, 0.7, 0.0], [0.0, 0.0, 0.5]])
    q = np.diag([0.3, 0.2, 0.5])
    mean, scale = np.array([10.0, -3.0, 0.5]), np.array([2.0, 0.5, 30.0])
    xs = simulate_ar1(a, q, 30_000, seed=2)
    x = (xs * scale + mean).astype(np.float32)
    train, held = x[:24_000], x[24_000:]
    mu, sd = train.mean(0), train.std(0)
    fit = fit_ridge([(train - mu) / sd], alpha=1e-6)
    model = LinearForecaster(mu, sd, fit.weight, fit.bias)
    state = model.initial_state(4)
    assert state is None
    x_now = torch.as_tensor(held[:4])
    pred, _ = model.step(x_now, state)
    expected = ((held[:4] - mean) / scale) @ a.T * scale + mean  # the true conditional mean, state units
    np.testing.assert_allclose(pred.numpy(), expected, atol=0.05 * scale.max())
    cov, summary = residual_covariance([one_step_residuals(model, held, warmup=1, device="cpu")], [1.0])
    true_cov = np.diag(np.diag(q) * scale**2)
    np.testing.assert_allclose(np.diag(cov), np.diag(true_cov), rtol=0.1)
    assert summary["rank"] == 3


# ---------------------------------------------------------------------------------------------- LSTM
def _pair(n=6, hidden=8, seed=0, subspace=None):
    rng = np.random.default_rng(seed)
    w = 0.5 * rng.standard_normal((n, n)) / np.sqrt(n)
    b = 0.1 * rng.standard_normal(n)
    mean, std = rng.standard_normal(n), rng.uniform(0.5, 2.0, n)
    basis = None if subspace is None else np.linalg.qr(rng.standard_normal((n, subspace)))[0]
    torch.manual_seed(seed)
    return LinearForecaster(mean, std, w, b), LSTMForecaster(
        mean, std, w, b, hidden=hidden, layers=1, dropout=0.1, basis=basis
    )


@pytest.mark.parametrize("subspace", [None, 3])
def test_lstm_starts_exactly_at_the_linear_model(subspace):
    linear, lstm = _pair(subspace=subspace)
    lstm.eval()
    x = torch.randn(5, 6) * 3
    state = lstm.initial_state(5)
    x_lin, x_lstm = x, x
    for _ in range(4):  # several months, the recurrent state carried
        x_lin, _ = linear.step(x_lin, None)
        x_lstm, state = lstm.step(x_lstm, state)
        assert torch.equal(x_lin, x_lstm)
    assert state[0].abs().sum() > 0  # the LSTM did run: only its zero-initialised head hides it


def test_lstm_skip_is_frozen_and_head_zero():
    _, lstm = _pair()
    names = {n for n, _ in lstm.named_parameters()}
    assert not names & {"skip_weight", "skip_bias", "basis"}
    assert {"skip_weight", "skip_bias", "basis"} <= set(dict(lstm.named_buffers()))
    assert torch.count_nonzero(lstm.head.weight) == 0 and torch.count_nonzero(lstm.head.bias) == 0


def test_lstm_correction_stays_in_its_subspace():
    linear, lstm = _pair(subspace=2)
    torch.nn.init.normal_(lstm.head.weight, std=0.5)
    lstm.eval()
    x = torch.randn(4, 6)
    with torch.no_grad():
        difference = lstm.step(x, None)[0] - linear.step(x, None)[0]  # = std ⊙ (U · head(h)) in state units
        in_standard_units = difference / lstm.state_std
        outside = in_standard_units - (in_standard_units @ lstm.basis) @ lstm.basis.T
    assert in_standard_units.abs().max() > 1e-3 and outside.abs().max() < 1e-5
    assert lstm.lstm.input_size == 2 and lstm.head.out_features == 2


def test_step_keeps_the_callers_dtype_and_carries_state():
    _, lstm = _pair()
    torch.nn.init.normal_(lstm.head.weight, std=0.1)  # a trained-looking head: the state now matters
    lstm.eval()
    x = torch.randn(3, 6, dtype=torch.float64)
    state = lstm.initial_state(3, dtype=torch.float64)
    assert state[0].shape == (1, 3, 8) and state[0].dtype == torch.float64
    out, state2 = lstm.step(x, state)
    assert out.dtype == torch.float64 and state2[0].dtype == torch.float64
    again, _ = lstm.step(x, state2)  # same input, different recurrent state
    assert not torch.allclose(out, again)
    as64 = lstm.to(torch.float64)  # what the filter does for float64 runs
    out64, _ = as64.step(x, as64.initial_state(3, dtype=torch.float64))
    torch.testing.assert_close(out64, out, rtol=1e-5, atol=1e-5)


def test_noise_sampling_matches_the_covariance():
    linear, _ = _pair(n=3)
    cov = np.array([[1.0, 0.5, 0.0], [0.5, 2.0, 0.0], [0.0, 0.0, 0.0]])  # rank-deficient, as short records give
    linear.noise_cov.copy_(torch.as_tensor(cov))
    draws = linear.sample_noise(100_000, torch.Generator().manual_seed(0))
    np.testing.assert_allclose(np.cov(draws.numpy(), rowvar=False), cov, atol=0.03)


def test_save_load_roundtrip_and_gate_enforcement(tmp_path):
    _, lstm = _pair(subspace=4)
    torch.nn.init.normal_(lstm.head.weight, std=0.1)
    lstm.noise_cov.copy_(torch.eye(6) * 0.2)
    lstm.gate_passed, lstm.gate_report = False, {"failures": ["free run blew up in month 7 of 1200"]}
    save_forecast_model(tmp_path / "forecast.pt", lstm, {"source_id": "X"})
    assert torch.load(tmp_path / "forecast.pt", weights_only=True)["kind"] == "forecast"
    loaded = load_forecast_model(tmp_path / "forecast.pt")
    lstm.eval()
    x = torch.randn(2, 6)
    torch.testing.assert_close(loaded.step(x, loaded.initial_state(2))[0], lstm.step(x, lstm.initial_state(2))[0])
    assert loaded.n_state == 6 and loaded.kind == "lstm" and loaded.subspace_dim == 4 and not loaded.gate_passed
    torch.testing.assert_close(loaded.noise_cov, torch.eye(6) * 0.2)
    with pytest.raises(GateFailedError, match="blew up in month 7.*allow_failed"):
        ensure_gate_passed(loaded, allow_failed=False, path=tmp_path / "forecast.pt")
    ensure_gate_passed(loaded, allow_failed=True)  # the explicit override only warns
    loaded.gate_passed = True
    ensure_gate_passed(loaded, allow_failed=False)


# ---------------------------------------------------------------------------------------------- the gate
A_TRUE = np.diag([0.9, 0.85, 0.6, 0.8])
Q_TRUE = np.diag(1 - np.diag(A_TRUE) ** 2)  # unit stationary variance in every component


def _linear_gate_data(x: np.ndarray) -> GateData:
    """Fields that are an exact linear function of the 3 latents: pattern 0 in Niño 3, 1 in Niño 4, 2 off the equator."""
    lat, lon = GRID.lat[:, None], GRID.lon[None, :]
    g = lambda a, b, c, d: np.exp(-(((lat - a) / b) ** 2) - ((lon - c) / d) ** 2)  # noqa: E731
    patterns = np.stack([g(0, 4, 240, 20), g(0, 4, 185, 15), g(8, 2, 200, 30)])
    patterns = np.stack([patterns, 10 * patterns], 1)  # (latent, field, lat, lon)
    ocean = np.ones(GRID.shape, bool)

    def decode(z):
        return np.einsum("nk,kfij->nfij", np.asarray(z, np.float64), patterns).astype(np.float32)

    train, held = x[:2400], x[2400:]
    train_idx = box_indices(decode(train[:, :3])[:, 0], index_weights(GRID, ocean))
    return GateData(
        x_heldout=held.astype(np.float32),
        fields_heldout=decode(held[:, :3]),
        x_warmup=train[-12:].astype(np.float32),
        reference_index_std={name: float(train_idx[:, i].std()) for i, name in enumerate(NINO_BOXES)},
        decode=decode,
        field_names=("sst", "thermocline_depth"),
        field_std={"sst": 1.0, "thermocline_depth": 1.0},
        ocean_mask=ocean,
        grid=GRID,
        n_latent=3,
        state_mean=np.zeros(4),
        state_std=np.ones(4),
        warmup_months=12,
    )


@pytest.fixture(scope="module")
def gate_data() -> GateData:
    return _linear_gate_data(simulate_ar1(A_TRUE, Q_TRUE, 2400 + 300, seed=5))


def _linear(a, q):
    return LinearForecaster(np.zeros(4), np.ones(4), a, np.zeros(4), noise_cov=q)


def test_gate_passes_a_stable_model(gate_data):
    report = run_gate(_linear(A_TRUE, Q_TRUE), gate_data, GateSection())
    assert report["passed"], report["failures"]
    assert report["free_run"]["months_completed"] == 1200 and report["free_run"]["blowup_month"] is None
    for name in NINO_BOXES:
        assert abs(report["free_run"]["std_ratio"][name] - 1) < 0.3
        # a linear model with Gaussian noise: a symmetric free run, within its own block-bootstrap SE
        se = report["free_run"]["index_skewness_se"][name]
        assert 0 < se < 0.5 and abs(report["free_run"]["index_skewness"][name]) < 3 * se
    skill = report["skill"]
    assert skill["leads"] == [1, 3, 6, 12]
    lat1 = skill["latent_rmse"]
    assert lat1["model"][0] < lat1["persistence"][0] and lat1["model"][-1] < lat1["climatology"][-1] * 1.05
    # the fields are exactly linear in z, so a perfect latent forecast has zero field error
    assert skill["sst_rmse_degC"]["autoencoder_floor"] == pytest.approx([0, 0, 0, 0], abs=1e-5)
    assert skill["nino3_corr"]["model"][0] > 0.3


def test_gate_fails_an_unstable_model(gate_data):
    unstable = A_TRUE.copy()
    unstable[0, 0] = 1.05
    report = run_gate(_linear(unstable, Q_TRUE), gate_data, GateSection())
    assert not report["passed"]
    assert report["free_run"]["blowup_month"] is not None and report["free_run"]["months_completed"] < 1200
    assert any("blew up" in f for f in report["failures"])
    assert report["criteria"]["free_run_bounded"]["value"] is False


def test_gate_fails_a_collapsed_model(gate_data):
    report = run_gate(_linear(0.3 * A_TRUE, 0.01 * Q_TRUE), gate_data, GateSection())
    assert not report["passed"]
    assert any("nino3 std" in f and "training data" in f for f in report["failures"])
    assert report["free_run"]["std_ratio"]["nino3"] < 0.5


def _observe_point(gd: GateData):
    """y = the decoded SST at the centre of pattern 0 (0°N, 240°E): an exact linear function p·z of the latents."""
    i, j = int(np.argmin(np.abs(GRID.lat))), int(np.argmin(np.abs(GRID.lon - 240)))
    p = gd.decode(np.eye(3))[:, 0, i, j].astype(np.float64)
    return (lambda fields: np.asarray(fields[:, 0, i, j], np.float64)[:, None]), p


def test_gate_fails_a_model_whose_observables_drift_from_the_latents(gate_data):
    """The filter reads y off the state and the bridging model is D(z): in free run, y must stay D(z) at the
    observation points. A model that evolves y on its own (here: the AR(1) with independent y) fails; one whose y row
    follows the latents (y_{t+1} = p·z_{t+1}, noise included) passes."""
    import dataclasses

    observe, p = _observe_point(gate_data)
    drifting = run_gate(_linear(A_TRUE, Q_TRUE), dataclasses.replace(gate_data, observe=observe), GateSection())
    assert not drifting["passed"]
    assert drifting["free_run"]["consistency"]["correlation"] < 0.5
    assert any("drift apart" in f for f in drifting["failures"])

    a = np.zeros((4, 4))
    a[:3, :3] = A_TRUE[:3, :3]
    a[3, :3] = p @ A_TRUE[:3, :3]
    qz = Q_TRUE[:3, :3]
    q = np.block([[qz, (qz @ p)[:, None]], [(p @ qz)[None, :], np.array([[p @ qz @ p]])]])
    z = simulate_ar1(A_TRUE[:3, :3], qz, 2400 + 300, seed=6)
    consistent_data = dataclasses.replace(_linear_gate_data(np.concatenate([z, z @ p[:, None]], 1)), observe=observe)
    consistent = run_gate(_linear(a, q), consistent_data, GateSection())
    assert consistent["free_run"]["consistency"]["correlation"] > 0.99
    assert consistent["free_run"]["consistency_autoencoder_ceiling"]["correlation"] > 0.99
    assert consistent["criteria"]["free_run_consistency"]["value"] > 0.99
    assert not any("drift apart" in f for f in consistent["failures"])


def test_free_run_is_reproducible_for_a_seed(gate_data):
    model = _linear(A_TRUE, Q_TRUE)
    a, _ = free_run(model, gate_data.x_warmup, 50, seed=3, blowup_threshold=25)
    b, _ = free_run(model, gate_data.x_warmup, 50, seed=3, blowup_threshold=25)
    c, _ = free_run(model, gate_data.x_warmup, 50, seed=4, blowup_threshold=25)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


# ---------------------------------------------------------------------------------------------- LSTM training
def _nonlinear_series(months: int, seed: int) -> np.ndarray:
    """A 4-variable series with a nonlinear, predictable part a linear model misses (one-step RMSE in standardised
    units: ridge 0.62, the true conditional mean 0.30)."""
    rng = np.random.default_rng(seed)
    x = np.zeros((months + 100, 4))
    for t in range(1, x.shape[0]):
        p = x[t - 1]
        x[t] = 0.5 * p + 0.9 * np.sin(2 * p[[1, 2, 3, 0]]) + 0.3 * rng.standard_normal(4)
    x = x[100:]
    return ((x - x.mean(0)) / x.std(0)).astype(np.float32)


LSTM_SETTINGS = {
    "hidden": 32,
    "epochs": 8,
    "teacher_forcing_months": 4,
    "rollout_max": 2,
    "batch_size": 32,
    "sequences_per_epoch": 512,
    "learning_rate": 2e-2,
    "weight_decay": 0.01,
    "dropout": 0.0,
    "patience": 10,
    "score_leads": (1, 2),
    "seed": 0,
}


def _train(tmp_path, settings=None, seed=0):
    x = _nonlinear_series(3000, seed=1)
    train, held = x[:2500], x[2500:]
    fit = fit_ridge([train], alpha=1e-4)
    torch.manual_seed(seed)
    s = ForecastSection.model_validate({**LSTM_SETTINGS, **(settings or {})})
    model = LSTMForecaster(np.zeros(4), np.ones(4), fit.weight, fit.bias, hidden=s.hidden, dropout=s.dropout)
    checkpoint = training_checkpoint(tmp_path / "forecast.pt", "test")
    whole_state = EnsoIndices(np.eye(4), names=("x0", "x1", "x2", "x3"))
    return train_lstm(
        model, train, None, [(held, 1.0)], s, CurriculumSection(p_max=0.0), "cpu", checkpoint, whole_state
    )


def test_lstm_training_beats_its_linear_start_on_nonlinear_data(tmp_path):
    model, history, stopper, initial = _train(tmp_path)
    assert len(history) == LSTM_SETTINGS["epochs"]
    assert [r["rollout_k"] for r in history] == [1, 1, 1, 2, 2, 2, 2, 2]  # 1 → 2 over the first 60 % (5 epochs)
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    # the score is the worst source's held-out index error relative to the linear skip's (1 = the skip, epoch −1)
    assert stopper.best < 0.9 and stopper.best_epoch >= 0
    best = history[stopper.best_epoch]
    assert best["heldout_score"] == max(s / s0 for s, s0 in zip(best["heldout_index_error_by_source"], initial))


def test_lstm_training_is_deterministic_and_resumes_exactly(tmp_path, monkeypatch):
    short = {"epochs": 3}
    reference, ref_history, _, _ = _train(tmp_path / "a", short)
    (tmp_path / "b").mkdir()
    original_save = ResumeCheckpoint.save

    def save_then_interrupt(self, state):
        original_save(self, state)
        if state["epoch"] == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(ResumeCheckpoint, "save", save_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        _train(tmp_path / "b", short)
    monkeypatch.setattr(ResumeCheckpoint, "save", original_save)
    resumed, history, _, _ = _train(tmp_path / "b", short)
    for key, value in reference.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), key
    assert [r["heldout_score"] for r in history] == [r["heldout_score"] for r in ref_history]
    (tmp_path / "c").mkdir()
    again, _, _, _ = _train(tmp_path / "c", short)  # a second uninterrupted run: same seed, same model
    assert all(torch.equal(v, again.state_dict()[k]) for k, v in reference.state_dict().items())


# ---------------------------------------------------------------------------------------------- the stage
TINY_FORECAST = {
    "kind": "lstm",
    "hidden": 8,
    "epochs": 2,
    "teacher_forcing_months": 6,
    "rollout_max": 6,
    "score_leads": (3, 6),
    "batch_size": 16,
    "validation_fraction": 0.3,
    "gate": {"leads": [1, 3, 6], "free_run_years": 10},
}
CURRICULUM = {"p_start": 0.0, "p_max": 0.6, "ramp_end_epoch": None, "apply_to_autoencoder": False}


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipeline")
    sources = write_tiny_sources(root)
    run_training(sources, root / "models", autoencoder={"epochs": 2})
    latent = {"operational": root / "latent" / "operational.zarr", "reanalysis": root / "latent" / "reanalysis.zarr"}
    encode_sources(
        root / "models" / "autoencoder.pt",
        sources["operational"],
        sources["reanalysis"],
        sources["pseudo_obs"],
        latent["operational"],
        latent["reanalysis"],
        autoencoder=TINY_AE,
        compute=COMPUTE,
        grid=GRID.__dict__,
    )
    return root, sources, latent


def _run_stage(pipeline, out, forecast):
    root, sources, latent = pipeline
    return train_forecast(
        latent["operational"],
        latent["reanalysis"],
        root / "models" / "autoencoder.pt",
        sources["operational"],
        sources["reanalysis"],
        out / "forecast.pt",
        out / "forecast_metrics.json",
        out / "forecast_curves.png",
        out / "forecast_gate.png",
        forecast=forecast,
        curriculum=CURRICULUM,
        compute=COMPUTE,
        grid=GRID.__dict__,
    )


def test_stage_trains_gates_and_saves_the_lstm(pipeline, tmp_path):
    record = _run_stage(pipeline, tmp_path, TINY_FORECAST)
    model = load_forecast_model(tmp_path / "forecast.pt")
    assert model.kind == "lstm" and model.n_state == 12 + 8 and model.n_latent == 12
    cov = model.noise_cov.double().numpy()
    np.testing.assert_allclose(cov, cov.T, atol=1e-6)
    assert np.linalg.eigvalsh(cov).min() > -1e-6 and np.trace(cov) > 0
    saved = json.loads((tmp_path / "forecast_metrics.json").read_text())
    assert saved["gate_passed"] == model.gate_passed == record["gate"]["passed"]
    assert model.gate_report["criteria"].keys() == saved["gate"]["criteria"].keys()
    skill = saved["gate"]["skill"]
    assert skill["leads"] == [1, 3, 6]
    assert {"model", "linear", "persistence", "climatology"} <= set(skill["latent_rmse"])
    assert {"model", "linear", "persistence", "climatology", "autoencoder_floor"} <= set(skill["sst_rmse_degC"])
    assert "reanalysis_latent_rmse" in skill  # trained with the curriculum: scored on the reanalysis too
    assert "linear" in saved["gate_other_models"]
    assert len(saved["history"]) == 2 and saved["history"][-1]["p_reanalysis"] == pytest.approx(0.6)
    assert (tmp_path / "forecast_curves.png").exists() and (tmp_path / "forecast_gate.png").exists()
    assert not resume_path_for(tmp_path / "forecast.pt").exists()


def test_stage_with_the_linear_kind(pipeline, tmp_path):
    record = _run_stage(pipeline, tmp_path, {**TINY_FORECAST, "kind": "linear"})
    model = load_forecast_model(tmp_path / "forecast.pt")
    assert model.kind == "linear" and model.initial_state(3) is None
    assert record["history"] == [] and record["ridge"]["spectral_radius"] < 1


def test_forecast_study_tables_variants_over_seeds(pipeline, tmp_path):
    root, sources, latent = pipeline
    paths = {
        "latent_dir": latent["operational"].parent,
        "autoencoder": root / "models" / "autoencoder.pt",
        "operational_store": sources["operational"],
        "reanalysis_store": sources["reanalysis"],
    }
    variants = {"linear": {"kind": "linear"}, "lstm4": {"kind": "lstm", "hidden": 4}}
    study = forecast_study(
        paths,
        variants,
        [0, 1],
        tmp_path,
        forecast=TINY_FORECAST,
        curriculum=CURRICULUM,
        compute=COMPUTE,
        grid=GRID.__dict__,
    )
    runs = {(r["variant"], r["seed"]): r for r in study["runs"]}
    assert set(runs) == {("linear", 0), ("linear", 1), ("lstm4", 0), ("lstm4", 1)}
    # the linear model does not depend on the seed; its free run's noise does
    assert runs["linear", 0]["nino3_rmse"] == runs["linear", 1]["nino3_rmse"]
    assert runs["linear", 0]["nino3_skewness"] != runs["linear", 1]["nino3_skewness"]
    assert study["summary"]["linear"]["nino3_rmse_vs_linear"] == {"mean": 1.0, "std": 0.0}
    lstm = study["summary"]["lstm4"]
    values = [runs["lstm4", seed]["nino4_rmse_vs_linear"] for seed in (0, 1)]
    assert lstm["n_seeds"] == 2 and lstm["nino4_rmse_vs_linear"]["std"] == pytest.approx(np.std(values, ddof=1))
    assert load_forecast_model(tmp_path / "lstm4_seed1" / "forecast.pt").kind == "lstm"
    assert json.loads((tmp_path / "study.json").read_text())["summary"].keys() == {"linear", "lstm4"}
    assert "| lstm4 |" in (tmp_path / "study.md").read_text()


@pytest.mark.slow
def test_default_lstm_passes_the_gate_and_beats_persistence_on_demo_like_data(tmp_path):
    """Demo-like data (oscillator-driven ENSO on a 2° tropical-Pacific grid, 60 + 43 years), the LSTM with the default
    forecast settings."""
    grid = TargetGrid(-20.0, 20.0, 120.0, 280.0, 2.0)
    sources = write_tiny_sources(tmp_path, grid=grid, operational_years=60, reanalysis_years=43)
    # A smaller autoencoder than the default keeps this test to about a minute; the forecast settings are the defaults.
    ae_settings = {"latent_dim": 64, "channels": [16, 32, 64], "epochs": 12, "batch_size": 32, "patience": 8}
    run_training(sources, tmp_path / "models", autoencoder=ae_settings, grid=grid)
    latent = {k: tmp_path / "latent" / f"{k}.zarr" for k in ("operational", "reanalysis")}
    encode_sources(
        tmp_path / "models" / "autoencoder.pt",
        sources["operational"],
        sources["reanalysis"],
        sources["pseudo_obs"],
        latent["operational"],
        latent["reanalysis"],
        autoencoder={**TINY_AE, **ae_settings},
        compute=COMPUTE,
        grid=grid.__dict__,
    )
    out = tmp_path / "models"
    record = train_forecast(
        latent["operational"],
        latent["reanalysis"],
        out / "autoencoder.pt",
        sources["operational"],
        sources["reanalysis"],
        out / "forecast.pt",
        out / "forecast_metrics.json",
        out / "forecast_curves.png",
        out / "forecast_gate.png",
        forecast=ForecastSection(kind="lstm").model_dump(),
        curriculum=CurriculumSection().model_dump(),
        compute=COMPUTE,
        grid=grid.__dict__,
    )
    gate = record["gate"]
    assert gate["passed"], gate["failures"]
    latent_rmse = gate["skill"]["latent_rmse"]
    for j, lead in enumerate(gate["skill"]["leads"]):
        if lead <= 6:
            assert latent_rmse["model"][j] < latent_rmse["persistence"][j], f"lead {lead}"
            assert gate["skill"]["sst_rmse_degC"]["model"][j] < gate["skill"]["sst_rmse_degC"]["persistence"][j], (
                f"lead {lead}"
            )
    # not worse than the linear baseline by more than sampling noise
    assert np.mean(latent_rmse["model"]) < 1.05 * np.mean(latent_rmse["linear"])
