"""Explainability: Kalman-gain responses of the decoded fields to observable-group innovations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import bridging
from bridging.codegraph import imported_names
from bridging.diagnostics.explain_plots import plot_gain_responses, plot_latent_observable_correlation
from bridging.explain import (
    gain_responses,
    kalman_gain,
    latent_observable_correlation,
    observable_groups,
    observable_labels,
)
from bridging.grid import TargetGrid
from bridging.observables import ObservationLayout
from bridging.settings import PlottingSection

GRID = TargetGrid(-10.0, 10.0, 120.0, 280.0, 2.0)
NODE_LON = np.arange(126.0, 281.0, 12.0)  # 126, 138, …, 270: includes 162, 174 (west), 210 (edge), 222…


def layout() -> ObservationLayout:
    n = NODE_LON.size
    return ObservationLayout.points(GRID, ["sst"] * n + ["thermocline_depth"] * n, [0.0] * 2 * n, list(NODE_LON) * 2)


def test_observable_groups_split_at_the_nino_boundaries():
    lay = layout()
    groups = observable_groups(lay)
    lon = np.asarray(lay.lon)
    var = np.asarray(lay.variable)
    assert set(var[groups["sst_nino3"]]) == {"sst"} and set(var[groups["thermocline_west"]]) == {"thermocline_depth"}
    assert lon[groups["sst_nino3"]].min() == 210.0 and lon[groups["sst_nino3"]].max() <= 270.0
    assert lon[groups["sst_nino4"]].min() >= 160.0 and lon[groups["sst_nino4"]].max() < 210.0
    assert lon[groups["thermocline_west"]].max() < 180.0
    assert lon[groups["thermocline_east"]].min() >= 210.0
    # The shared 210°E edge belongs to Niño 3 only.
    assert not set(groups["sst_nino3"]) & set(groups["sst_nino4"])
    assert observable_labels(lay)[0] == "SST 126°E"


def test_gain_equals_the_textbook_state_space_formula():
    rng = np.random.default_rng(0)
    n_latent, n_obs, n_members = 6, 4, 30
    ensemble = rng.standard_normal((n_members, n_latent + n_obs)) @ rng.standard_normal((n_latent + n_obs,) * 2)
    r = rng.uniform(0.1, 0.5, n_obs)
    p = np.cov(ensemble, rowvar=False)
    h = np.hstack([np.zeros((n_obs, n_latent)), np.eye(n_obs)])
    textbook = p @ h.T @ np.linalg.inv(h @ p @ h.T + np.diag(r))
    np.testing.assert_allclose(kalman_gain(ensemble, n_latent, r), textbook, rtol=1e-10, atol=1e-12)
    # A taper of ones changes nothing; a zero taper on the latent rows removes the latent update.
    np.testing.assert_allclose(
        kalman_gain(ensemble, n_latent, r, np.ones((n_latent + n_obs, n_obs))), textbook, rtol=1e-10
    )
    taper = np.ones((n_latent + n_obs, n_obs))
    taper[:n_latent] = 0.0
    assert np.all(kalman_gain(ensemble, n_latent, r, taper)[:n_latent] == 0.0)


def test_a_niño3_innovation_decodes_to_the_eastern_pattern():
    """Latent 0 carries the eastern (Niño 3) mode and is what the Niño 3 SST nodes see; latent 1 the central mode
    seen at the Niño 4 nodes. A linear decoder maps each latent to its pattern. The response to a Niño 3 innovation
    is then the eastern pattern, to a Niño 4 innovation the central one — and exactly the decoder applied to K d."""
    rng = np.random.default_rng(1)
    lay = layout()
    groups = observable_groups(lay)
    la, lo = np.meshgrid(GRID.lat, GRID.lon, indexing="ij")
    eastern = np.exp(-((la / 5) ** 2) - ((lo - 240) / 25) ** 2)
    central = np.exp(-((la / 5) ** 2) - ((lo - 180) / 20) ** 2)
    n_latent, n_members = 2, 200
    z = rng.standard_normal((n_members, n_latent))
    node = np.asarray(lay.lon)
    y = np.zeros((n_members, lay.size))
    for k in range(lay.size):
        y[:, k] = z[:, 0] * (node[k] >= 210) + z[:, 1] * (160 <= node[k] < 210)
    y += 0.05 * rng.standard_normal(y.shape)
    ensemble = np.hstack([z, y])
    weights = np.stack(
        [np.stack([eastern, 20 * eastern]), np.stack([central, 20 * central])]
    )  # (latent, channel, lat, lon)

    def decoder(latent):
        return np.tensordot(latent, weights, axes=1)

    r = np.full(lay.size, 0.01)
    responses = gain_responses(ensemble, n_latent, r, decoder, groups, field_scale=np.array([1.0, 0.5]))
    east, central_response = responses["sst_nino3"].field, responses["sst_nino4"].field
    assert east.shape == (2, *GRID.shape)
    assert np.corrcoef(east[0].ravel(), eastern.ravel())[0, 1] > 0.99
    assert np.corrcoef(central_response[0].ravel(), central.ravel())[0, 1] > 0.99
    # field_scale multiplies each channel; the linear decoder gives exactly D(K d).
    dz = responses["sst_nino3"].state_increment[:n_latent]
    np.testing.assert_allclose(east[1], 0.5 * decoder(dz[None])[0, 1], rtol=1e-10)
    # A one-std innovation of the group: each of its observables moved by its innovation std, the others not.
    d = responses["sst_nino3"].innovation
    assert np.all(d[groups["sst_nino3"]] > 0.9) and np.count_nonzero(d) == groups["sst_nino3"].size


def test_latent_observable_correlation_matches_numpy():
    rng = np.random.default_rng(2)
    z = rng.standard_normal((500, 3))
    y = np.column_stack([z[:, 0] + 0.1 * rng.standard_normal(500), rng.standard_normal(500), np.ones(500)])
    corr = latent_observable_correlation(z, y)
    expected = np.corrcoef(z.T, y[:, :2].T)[:3, 3:]
    np.testing.assert_allclose(corr[:, :2], expected, rtol=1e-10)
    assert corr[0, 0] > 0.99 and np.isnan(corr[:, 2]).all()
    with pytest.raises(ValueError, match="different lengths"):
        latent_observable_correlation(z, y[:10])


def test_explainability_figures_are_written(tmp_path):
    field = np.random.default_rng(3).standard_normal((2, *GRID.shape))
    plot_gain_responses(
        {"sst_nino3": field, "sst_nino4": -field}, GRID.lat, GRID.lon, tmp_path / "gain.png", PlottingSection(dpi=50)
    )
    plot_latent_observable_correlation(
        np.random.default_rng(4).uniform(-1, 1, (10, 8)),
        [f"o{i}" for i in range(8)],
        tmp_path / "corr.png",
        PlottingSection(dpi=50),
    )
    assert (tmp_path / "gain.png").stat().st_size > 1000 and (tmp_path / "corr.png").stat().st_size > 1000


def test_diagnostics_do_not_import_the_models_or_the_filter():
    """Diagnostics compare stores; explainability (which reloads the trained models) is a stage of its own."""
    package = Path(bridging.__file__).parent
    upward = {}
    for path in sorted((package / "diagnostics").rglob("*.py")):
        module = ".".join(("bridging", *path.relative_to(package).with_suffix("").parts)).removesuffix(".__init__")
        names = {
            n for n in imported_names(path, module) if n.split(".")[:2] in (["bridging", "models"], ["bridging", "da"])
        }
        if names:
            upward[path.name] = sorted(names)
    assert not upward, upward
