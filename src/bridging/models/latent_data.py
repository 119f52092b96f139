"""The forecast model's training data: both latent records as x = [z; y], their time splits, and the
standardisation on the curriculum's final mixture (1 − p_max operational, p_max reanalysis)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from ..errors import InputDataError
from ..settings import CurriculumSection, ForecastSection
from .enso_score import EnsoIndices
from .latent import open_latent_store
from .ridge import mixture_moments
from .training import TimeSplit, time_split


@dataclass
class LatentRecord:
    """One latent store as the augmented state x = [z; y] (state units)."""

    path: Path
    source_id: str
    x: np.ndarray  # (time, n_state) float32
    n_latent: int
    obs_coords: dict
    time: xr.DataArray

    @property
    def n_state(self) -> int:
        return self.x.shape[1]


def load_latent_record(path: str | Path) -> LatentRecord:
    ds = open_latent_store(path)
    z = ds["z"].transpose("time", "latent").values.astype(np.float32)
    y = ds["y"].transpose("time", "obs").values.astype(np.float32)
    x = np.concatenate([z, y], axis=1)
    if not np.isfinite(x).all():
        raise InputDataError(path, "z or y contain NaN/inf")
    obs = {c: ds[c].values for c in ds["y"].coords if c.startswith("obs_")}
    return LatentRecord(Path(path), str(ds.attrs.get("source_id", Path(path).stem)), x, z.shape[1], obs, ds["time"])


def _same_observables(a: LatentRecord, b: LatentRecord) -> bool:
    if a.n_latent != b.n_latent or set(a.obs_coords) != set(b.obs_coords):
        return False
    return all(np.array_equal(np.asarray(a.obs_coords[k]), np.asarray(b.obs_coords[k])) for k in a.obs_coords)


@dataclass
class LatentData:
    """Both latent records, their time splits, and the standardisation on the curriculum's final mixture.

    Everything is fitted on that mixture (1 − p_max operational, p_max reanalysis), the data the LSTM ends up trained
    on: the standardisation, the linear skip (``forecast.skip_data: curriculum``) and the LSTM's subspace.
    Standardising by the operational months alone would give latents the operational record hardly uses (but the
    reanalysis does) a tiny scale, and free runs would reach tens of "standard deviations" in them.
    """

    op: LatentRecord
    rean: LatentRecord
    op_split: TimeSplit
    rean_split: TimeSplit
    use_reanalysis: bool
    segments: list[np.ndarray]  # standardised training segments of the mixture
    segment_weights: list[float]
    mean: np.ndarray
    std: np.ndarray
    validation: list[tuple[np.ndarray, float]]  # held-out (x, weight) in state units, weight > 0
    noise_validation: list[tuple[np.ndarray, float]]  # those of the records the skip is fitted on

    @classmethod
    def read(
        cls, latent_operational, latent_reanalysis, settings: ForecastSection, cur: CurriculumSection
    ) -> LatentData:
        op, rean = load_latent_record(latent_operational), load_latent_record(latent_reanalysis)
        if not _same_observables(op, rean):
            raise InputDataError(
                [latent_operational, latent_reanalysis],
                "the two latent stores differ in latent size or observables; re-encode both",
            )
        teacher = settings.teacher_forcing_months
        window = teacher + settings.rollout_max + 1
        min_val = teacher + max(settings.rollout_max, settings.score_leads[1], max(settings.gate.leads)) + 1
        op_split = time_split(
            op.x.shape[0], settings.validation_fraction, min_train=window, min_validation=min_val, what=str(op.path)
        )
        use_rean = cur.p_max > 0 or cur.p_start > 0
        rean_split = time_split(
            rean.x.shape[0],
            settings.validation_fraction,
            min_train=window if use_rean else 1,
            min_validation=min_val if use_rean else 1,
            what=str(rean.path),
        )
        raw_segments, seg_weights = [op.x[op_split.train]], [1.0 - cur.p_max]
        if use_rean and cur.p_max > 0:
            raw_segments.append(rean.x[rean_split.train])
            seg_weights.append(cur.p_max)
        mean, std = mixture_moments(raw_segments, seg_weights)
        if not np.all(std > 0):
            raise InputDataError(
                op.path, f"{int(np.sum(std <= 0))} state components are constant over the training months"
            )
        weights = [(op.x[op_split.validation], 1.0 - cur.p_max), (rean.x[rean_split.validation], cur.p_max)]
        validation = [(x, w) for x, w in weights if w > 0]
        # Model error from the held-out months of the records the skip is fitted on: residuals on reanalysis months
        # that the autoencoder represents off its manifold have observable errors no latent error matches, and noisy
        # forecasts then lose y–z consistency (docs/method.md, Forecast model).
        noise_validation = validation if settings.skip_data == "curriculum" else validation[:1]
        data = cls(op, rean, op_split, rean_split, use_rean, [], seg_weights, mean, std, validation, noise_validation)
        data.segments = [data.standardise(x) for x in raw_segments]
        return data

    def standardise(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.mean) / self.std).astype(np.float32)

    def skip_records(self, skip_data: str) -> tuple[list[np.ndarray], list[np.ndarray], list[float]]:
        """The records the linear skip (and the model error) are fitted on: standardised training segments, the same
        training months in state units, and their weights (``forecast.skip_data``)."""
        raw = [self.op.x[self.op_split.train], self.rean.x[self.rean_split.train]][: len(self.segments)]
        if skip_data == "curriculum":
            return self.segments, raw, self.segment_weights
        return self.segments[:1], raw[:1], [1.0]

    def enso_indices(self) -> EnsoIndices:
        """The indices of the LSTM's stopping score (:mod:`.enso_score`)."""
        return EnsoIndices.from_training(
            self.op.obs_coords, self.op.n_latent, self.std, self.segments, self.segment_weights
        )
