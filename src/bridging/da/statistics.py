"""Statistics of a filter run: innovations against the predicted spread, ensemble spreads, and the consistency of
decoded fields at the observation points with the analysis observables.

Why consistency is watched: a filter whose observed block y tracks the observations can still let the latent block
z drift off the autoencoder's manifold; only decoded fields compared with the analysis y reveal it. Every month
records the innovations, the forecast spread of the observables and (for the first members) moments of decoded vs
analysis observables; per-decade innovation ratios E[d²]/(spread² + R) and consistency correlations are logged as
the run goes and written with the result.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

DECADE_MONTHS = 120
#: the summed moments of decoded (a) vs analysis (b) observables, in this order
CONSISTENCY_MOMENTS = ("sum_decoded", "sum_analysis", "sum_decoded_sq", "sum_analysis_sq", "sum_cross")


def _safe_ratio(num, den):
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def consistency_from_moments(moments: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Correlation and slope (decoded regressed on analysis) from summed moments (..., 5) over ``count`` pairs."""
    sa, sb, saa, sbb, sab = np.moveaxis(np.asarray(moments, dtype=np.float64), -1, 0)
    cov = sab / count - sa * sb / count**2
    var_a = saa / count - (sa / count) ** 2
    var_b = sbb / count - (sb / count) ** 2
    corr = _safe_ratio(cov, np.sqrt(np.clip(var_a, 0, None) * np.clip(var_b, 0, None)))
    slope = _safe_ratio(cov, var_b)
    return corr, slope


#: CF attributes of the per-month statistics of :func:`monthly_statistics` in the filter store (all dimensionless:
#: observables in units of their training standard deviation)
MONTHLY_STATISTICS_ATTRS = {
    "innovation_mean": "mean over observables of the standardised innovation d = (y_obs - H mean(x_f)) / std(y)",
    "innovation_variance": "mean over observables of the squared standardised innovation",
    "predicted_variance": "mean over observables of the standardised forecast spread squared plus observation-error "
    "variance (what the innovation variance should be)",
    "innovation_ratio": "innovation_variance / predicted_variance (about 1 for a consistent filter)",
    "spread_latent": "root-mean-square ensemble spread of the latent block after the month's cycle",
    "spread_obs": "root-mean-square ensemble spread of the standardised observable block after the month's cycle",
    "withheld_innovation_variance": "as innovation_variance, over the observables the analysis did not use",
    "withheld_predicted_variance": "as predicted_variance, over the observables the analysis did not use",
    "withheld_innovation_ratio": "withheld_innovation_variance / withheld_predicted_variance: a check on pseudo-"
    "observations the filter never saw (about 1 when the ensemble spread is right there too)",
    "consistency_correlation": "correlation of decoded vs analysis observables of the checked members",
    "consistency_slope": "regression slope of decoded on analysis observables of the checked members (about 1 "
    "when consistent)",
}


def monthly_statistics_attrs(name: str) -> dict[str, str]:
    return {"long_name": MONTHLY_STATISTICS_ATTRS[name], "units": "1"}


def monthly_statistics(
    innovation: np.ndarray,
    forecast_spread: np.ndarray,
    obs_var: np.ndarray,
    observable_std: np.ndarray,
    spread: np.ndarray,
    n_latent: int,
    moments: np.ndarray | None = None,
    consistency_count: int = 0,
    assimilated: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Per-month, per-experiment (T, B) statistics; observables in units of their training standard deviation.

    innovation_mean / innovation_variance: mean over observables of d̃ and d̃², d = y − H x̄_f;
    predicted_variance: mean over observables of (s̃² + R̃), s the forecast spread the analysis used;
    innovation_ratio: innovation_variance / predicted_variance (≈ 1 for a consistent filter);
    spread_latent / spread_obs: root-mean-square ensemble spread of the latent and observable blocks after the update;
    consistency_correlation / consistency_slope: decoded vs analysis observables of the checked members.
    With ``assimilated`` (indices of the observables the analysis used) the innovation statistics are over those, and
    the ``withheld_*`` ones over the others.
    """
    sd = np.asarray(observable_std, dtype=np.float64)
    d = innovation.astype(np.float64) / sd
    s2 = (forecast_spread.astype(np.float64) / sd) ** 2
    r = np.broadcast_to(np.asarray(obs_var, dtype=np.float64) / sd**2, d.shape[1:])  # (B, m)
    used = np.ones(d.shape[-1], bool)
    if assimilated is not None:
        used[:] = False
        used[np.asarray(assimilated)] = True
    out = {
        "innovation_mean": d[..., used].mean(-1),
        "innovation_variance": (d * d)[..., used].mean(-1),
        "predicted_variance": (s2 + r[None])[..., used].mean(-1),
    }
    out["innovation_ratio"] = _safe_ratio(out["innovation_variance"], out["predicted_variance"])
    if not used.all():
        out["withheld_innovation_variance"] = (d * d)[..., ~used].mean(-1)
        out["withheld_predicted_variance"] = (s2 + r[None])[..., ~used].mean(-1)
        out["withheld_innovation_ratio"] = _safe_ratio(
            out["withheld_innovation_variance"], out["withheld_predicted_variance"]
        )
    sp = spread.astype(np.float64)
    out["spread_latent"] = np.sqrt((sp[..., :n_latent] ** 2).mean(-1)) if n_latent else np.zeros(sp.shape[:-1])
    out["spread_obs"] = np.sqrt(((sp[..., n_latent:] / sd[: sp.shape[-1] - n_latent]) ** 2).mean(-1))
    if moments is not None:
        out["consistency_correlation"], out["consistency_slope"] = consistency_from_moments(moments, consistency_count)
    return out


def summarize(
    monthly: Mapping[str, np.ndarray],
    moments: np.ndarray | None,
    consistency_count: int,
    *,
    decade_months: int = DECADE_MONTHS,
    first_month: int = 0,
) -> list[dict]:
    """Aggregate per decade (and ``first_month`` offsets the labels): innovation ratio as a ratio of sums."""
    T = monthly["innovation_variance"].shape[0]
    rows = []
    for a in range(0, T, decade_months):
        b = min(a + decade_months, T)
        row = {
            "first_month": first_month + a,
            "months": b - a,
            "innovation_ratio": (
                monthly["innovation_variance"][a:b].sum(0) / monthly["predicted_variance"][a:b].sum(0)
            ).tolist(),
            "innovation_mean": monthly["innovation_mean"][a:b].mean(0).tolist(),
            "spread_latent": monthly["spread_latent"][a:b].mean(0).tolist(),
            "spread_obs": monthly["spread_obs"][a:b].mean(0).tolist(),
        }
        if "withheld_innovation_variance" in monthly:
            row["withheld_innovation_ratio"] = (
                monthly["withheld_innovation_variance"][a:b].sum(0) / monthly["withheld_predicted_variance"][a:b].sum(0)
            ).tolist()
        if "model_noise_factor" in monthly:
            row["model_noise_factor"] = monthly["model_noise_factor"][a:b].mean(0).tolist()
        if moments is not None:
            corr, slope = consistency_from_moments(moments[a:b].sum(0), consistency_count * (b - a))
            row["consistency_correlation"] = corr.tolist()
            row["consistency_slope"] = slope.tolist()
        rows.append(row)
    return rows


def health_warnings(
    decades: list[dict], *, ratio_max: float, consistency_min: float, assimilating: bool, baseline: float | None = None
) -> list[str]:
    """Warnings about ensemble collapse (innovations far beyond the predicted spread) and consistency drops.

    ``baseline`` is the autoencoder's own consistency on training states (``autoencoder_check``): the message says
    whether the filter lost consistency or the autoencoder never had it.
    """
    warnings = []
    for row in decades:
        span = f"months {row['first_month']}–{row['first_month'] + row['months'] - 1}"
        for b, ratio in enumerate(row["innovation_ratio"]):
            if assimilating and not ratio <= ratio_max:
                warnings.append(
                    f"{span}, experiment {b}: innovation ratio E[d²]/(spread² + R) = {ratio:.2f} > {ratio_max}: "
                    "the ensemble spread is collapsing (raise model_noise_scale or inflation)"
                )
        for b, corr in enumerate(row.get("consistency_correlation", [])):
            if not corr >= consistency_min:
                if baseline is not None and corr >= baseline - 0.1:
                    cause = (
                        f"the autoencoder itself reaches only {baseline:.3f} on training states, so it, not the "
                        "filter, limits the consistency"
                    )
                else:
                    cause = "the latent state is drifting off the autoencoder's manifold" + (
                        f" (the autoencoder reaches {baseline:.3f} on training states)" if baseline is not None else ""
                    )
                warnings.append(
                    f"{span}, experiment {b}: decoded fields at the observation points correlate {corr:.3f} "
                    f"< {consistency_min} with the analysis observables: {cause}"
                )
    return warnings


def format_values(values) -> str:
    """Per-experiment values for a log line."""
    return "[" + ", ".join(f"{v:.3g}" for v in values) + "]"


def block_summary(
    result,
    obs_var: np.ndarray,
    observable_std: np.ndarray,
    n_latent: int,
    consistency_count: int,
    assimilated: np.ndarray | None = None,
) -> dict:
    """The statistics of one finished block of months (a ``cycle.BlockResult``), as one row of :func:`summarize`."""
    monthly = monthly_statistics(
        result.innovation,
        result.forecast_spread,
        obs_var,
        observable_std,
        result.spread,
        n_latent,
        result.consistency_moments,
        consistency_count,
        assimilated,
    )
    months = result.members.shape[0]
    return summarize(
        monthly, result.consistency_moments, consistency_count, decade_months=months, first_month=result.first_month
    )[0]
