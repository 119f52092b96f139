"""Figures of the explainability stage (:mod:`bridging.explain`): the decoded fields' response to a one-std
innovation of each observable group through the Kalman gain, and the latent–observable cross-correlation."""

from __future__ import annotations

import numpy as np

from ..settings import PlottingSection
from .figstyle import MAX_WIDTH_IN, plt, save_figure
from .geomap import draw_map, symmetric_limits

GROUP_TITLES = {
    "sst_nino3": "SST at the Niño 3 nodes",
    "sst_nino4": "SST at the Niño 4 nodes",
    "thermocline_west": "thermocline depth west of 180°",
    "thermocline_east": "thermocline depth east of 150°W",
}


def plot_gain_responses(
    responses: dict,
    lat: np.ndarray,
    lon: np.ndarray,
    path,
    plotting: PlottingSection,
    channel_titles=("SST", "thermocline depth (D20)"),
    units=("°C", "m"),
    ocean_mask=None,
) -> None:
    """Maps of the decoded field response to a one-std innovation of each observable group
    (:func:`bridging.explain.gain_responses`): one row per group, one column per channel; land outlined from
    ``ocean_mask`` (lat, lon) when given.

    Each channel (column) has one symmetric colour range shared by all groups, so the groups' responses compare.
    """
    groups = list(responses)
    arrays = {g: np.asarray(responses[g], float) for g in groups}
    n_channels = arrays[groups[0]].shape[0]
    lat, lon = np.asarray(lat, float), np.asarray(lon, float)
    aspect = (lon.max() - lon.min() + 1) / max(lat.max() - lat.min() + 1, 1.0)
    panel_w = (MAX_WIDTH_IN - 1.6 * n_channels) / n_channels
    panel_h = panel_w / aspect + 0.8
    fig, axes = plt.subplots(
        len(groups),
        n_channels,
        figsize=(MAX_WIDTH_IN, panel_h * len(groups) + 0.6),
        squeeze=False,
        layout="constrained",
    )
    cmap = plt.get_cmap(plotting.anomaly_cmap).with_extremes(bad="0.8")
    for c in range(n_channels):
        vmin, vmax = symmetric_limits([arrays[g][c] for g in groups], diverging=True)
        mesh = None
        title = channel_titles[c] if c < len(channel_titles) else f"channel {c}"
        for r, g in enumerate(groups):
            ax = axes[r, c]
            drawn = draw_map(
                ax, lat, lon, arrays[g][c], cmap=cmap, vmin=vmin, vmax=vmax, ocean_mask=ocean_mask,
                xlabel=r == len(groups) - 1, ylabel=c == 0,
            )  # fmt: skip
            mesh = drawn if drawn is not None else mesh
            ax.set_title(f"{title} response to 1 std of\n{GROUP_TITLES.get(g, g.replace('_', ' '))}", loc="left")
        if mesh is not None:
            cb = fig.colorbar(mesh, ax=list(axes[:, c]), shrink=0.8, extend="both")
            cb.set_label(f"{title} response ({units[c] if c < len(units) else ''})")
    fig.suptitle("Kalman-gain response of the decoded fields")
    save_figure(fig, path, plotting.dpi)


def plot_latent_observable_correlation(
    correlation: np.ndarray,
    obs_labels,
    path,
    plotting: PlottingSection,
    title: str = "Latent–observable cross-correlation",
) -> None:
    """The (n_latent, n_obs) correlation matrix as an image; observables in layout order (SST then D20, west→east)."""
    corr = np.asarray(correlation, float)
    fig, ax = plt.subplots(figsize=(min(MAX_WIDTH_IN, 4 + 0.08 * corr.shape[1]), 6.5), layout="constrained")
    im = ax.imshow(corr, aspect="auto", cmap=plotting.anomaly_cmap, vmin=-1, vmax=1, interpolation="nearest")
    ax.set_xlabel("observable (SST, then thermocline depth; west → east)")
    ax.set_ylabel("latent variable")
    labels = list(obs_labels)
    step = max(1, int(np.ceil(len(labels) / 14)))
    ax.set_xticks(range(0, len(labels), step))
    ax.set_xticklabels(labels[::step], rotation=60, ha="right")
    ax.set_title(title)
    cb = fig.colorbar(im, ax=ax)
    cb.set_label("correlation")
    save_figure(fig, path, plotting.dpi)
