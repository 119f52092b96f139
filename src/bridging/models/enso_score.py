"""The forecast model's stopping score: ENSO indices read off the state, at the leads the filter relies on.

Why not the mean error over the whole state: most of the 613 standardised dimensions are unpredictable beyond a month,
and their error hides any gain or loss in the few ENSO directions (docs/method.md, Forecast model). The score is the
error of four indices, each in units of its standard deviation over the training mixture, averaged over leads
``forecast.score_leads`` (3–12 months):

* Niño 3 and Niño 4 as the mean of the observed SST boxes whose longitudes lie in those boxes. They are read off the
  observables the state carries, which match the decoded fields to the autoencoder's consistency (0.97–0.98 on the
  demo), so no decoder call is needed per epoch; the gate still scores decoded Niño 3;
* the two leading principal components of the standardised observables (the recharge oscillator's SST and
  thermocline modes).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..diagnostics.indices import NINO3, NINO4
from ..observables import OBS_KINDS

INDEX_NAMES = ("nino3_obs", "nino4_obs", "obs_pc1", "obs_pc2")


@dataclass(frozen=True)
class EnsoIndices:
    """Linear indices of the standardised state: ``indices(xs) = xs @ weights`` (n_state, 4), each with unit
    standard deviation over the training mixture."""

    weights: np.ndarray
    names: tuple[str, ...] = INDEX_NAMES

    @classmethod
    def from_training(
        cls,
        obs_coords: dict,
        n_latent: int,
        state_std: np.ndarray,
        segments: list[np.ndarray],
        segment_weights: list[float],
    ) -> EnsoIndices:
        """From the observables' coordinates and the standardised training segments (weighted as the mixture)."""
        kind = np.asarray(obs_coords["obs_variable"])
        lon = np.asarray(obs_coords["obs_lon"], np.float64) % 360.0
        n_state = np.asarray(state_std).size
        weights = np.zeros((n_state, len(INDEX_NAMES)))
        sst = kind == OBS_KINDS.index("sst")
        for k, box in enumerate((NINO3, NINO4)):
            inside = np.flatnonzero(sst & (lon >= box.lon_min) & (lon <= box.lon_max))
            if inside.size == 0:
                raise ValueError(f"no observed SST box lies in the {box.name} box ({box.lon_min}–{box.lon_max} °E)")
            # mean of the boxes in °C from the standardised state: x = xs·std + mean
            weights[n_latent + inside, k] = np.asarray(state_std)[n_latent + inside] / inside.size
        total = float(sum(segment_weights))
        y_cov = sum((w / total) * np.cov(seg[:, n_latent:], rowvar=False) for seg, w in zip(segments, segment_weights))
        _, vecs = np.linalg.eigh(y_cov)
        weights[n_latent:, 2] = vecs[:, -1]
        weights[n_latent:, 3] = vecs[:, -2]
        variance = sum(
            (w / total) * np.var(seg.astype(np.float64) @ weights, axis=0) for seg, w in zip(segments, segment_weights)
        )
        return cls(weights / np.sqrt(variance))

    def rmse_by_lead(self, predicted: np.ndarray, truth: np.ndarray) -> np.ndarray:
        """(n_leads, 4) RMSE of the indices over starts; predicted and truth are standardised (starts, leads, n)."""
        err = (np.asarray(predicted, np.float64) - np.asarray(truth, np.float64)) @ self.weights
        return np.sqrt((err**2).mean(0))


def lead_window_score(rmse_by_lead: np.ndarray, leads: tuple[int, int]) -> float:
    """Mean of an (n_leads, n_indices) error table over leads first..last (1-based) and the indices."""
    first, last = leads
    return float(np.asarray(rmse_by_lead)[first - 1 : last].mean())
