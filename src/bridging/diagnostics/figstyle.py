"""The look every figure of the run shares, and the rule that keeps its text legible in the HTML report.

The Snakemake report shows a figure scaled to the width of its content pane, beside the list of items: 820–1000 px
in a 1400-px window, measured in headless Chromium (``bridging.reportcheck``); :data:`REPORT_WIDTH_PX` is the
narrow end. A figure narrower than the pane is shown at its own size. A figure taller than the window loses its
top (the report centres it vertically), so figures stay about as tall as they are wide. Text of ``s`` points in a figure saved ``w`` inches wide therefore shows at
``s / 72 · min(dpi, REPORT_WIDTH_PX / w)`` pixels, whatever the dpi. :data:`RC` sets every text to at least
:data:`MIN_FONT_PT` and the figures keep within :data:`MAX_WIDTH_IN`, which gives at least :data:`MIN_TEXT_PX`;
:func:`save_figure` measures it on every figure it writes and warns when a figure falls short.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.text import Text  # noqa: E402

from ..atomic import atomic_output  # noqa: E402

log = logging.getLogger(__name__)

#: width (px) of the report's content pane showing a figure, the narrow end (Chromium, 1400-px window)
REPORT_WIDTH_PX = 800
#: the smallest text (px) a figure may show at that width
MIN_TEXT_PX = 10.0
#: the widest figure (inches, before the tight bounding box) whose smallest text (MIN_FONT_PT) stays legible
MAX_WIDTH_IN = 11.0
MIN_FONT_PT = 11.0
RC = {
    "font.size": 11,
    "axes.titlesize": 11,
    "axes.labelsize": 12,
    "xtick.labelsize": MIN_FONT_PT,
    "ytick.labelsize": MIN_FONT_PT,
    "legend.fontsize": MIN_FONT_PT,
    "legend.title_fontsize": MIN_FONT_PT,
    "figure.titlesize": 14,
    "figure.labelsize": 12,
}
plt.rcParams.update(RC)

# One colour per role in every figure.
ROLE_STYLE = {
    "reanalysis": {"color": "black", "linestyle": "-", "linewidth": 2.0},
    "idealized": {"color": "0.45", "linestyle": "--", "linewidth": 1.8},
    "operational": {"color": "tab:red", "linestyle": "-", "linewidth": 1.6},
    "free_run": {"color": "tab:orange", "linestyle": ":", "linewidth": 1.6},
    "bridging": {"color": "tab:blue", "linestyle": "-", "linewidth": 2.2},
    "pseudo_obs": {"color": "tab:green", "linestyle": "-.", "linewidth": 1.4},
}
PLOT_ORDER = ("reanalysis", "idealized", "pseudo_obs", "operational", "free_run", "bridging")
INDEX_TITLES = {"nino3": "Niño 3", "nino34": "Niño 3.4", "nino4": "Niño 4", "wp_thermocline": "WP thermocline"}
FIELD_TITLES = {"sst": "SST", "thermocline_depth": "thermocline depth (D20)"}
FIELD_UNITS = {"sst": "°C", "thermocline_depth": "m"}


@contextmanager
def legible():
    """Matplotlib settings of :data:`RC` for figures drawn inside (e.g. where another module changed rcParams)."""
    with plt.rc_context(RC):
        yield


def smallest_text_px(fig, dpi: float, width_px: float | None = None) -> float:
    """The smallest visible text of ``fig`` in pixels as the report shows it (``width_px``: the saved width;
    default the figure's tight bounding box at ``dpi``)."""
    renderer = fig.canvas.get_renderer()
    if width_px is None:
        width_px = (fig.get_tightbbox(renderer).width + 0.2) * dpi  # savefig's default pad_inches = 0.1
    sizes = [t.get_fontsize() for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]
    if not sizes:
        return float("inf")
    scale = min(1.0, REPORT_WIDTH_PX / width_px)
    return min(sizes) / 72.0 * dpi * scale


def save_figure(fig, path, dpi: int) -> float:
    """Write atomically (a half-written PNG never replaces a good one), release the figure's memory and return its
    smallest text in report pixels (a warning when below :data:`MIN_TEXT_PX`)."""
    try:
        fig.canvas.draw()
        px = smallest_text_px(fig, dpi)
        if px < MIN_TEXT_PX:
            log.warning(
                "%s: smallest text %.1f px at the report's %d-px width (legible: ≥ %g px)",
                path,
                px,
                REPORT_WIDTH_PX,
                MIN_TEXT_PX,
            )
        with atomic_output(path) as tmp:
            fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format=str(path).rsplit(".", 1)[-1])
    finally:
        plt.close(fig)
    return px
