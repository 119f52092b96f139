"""The comparison figures of one experiment (:data:`FIGURES`), drawn from its comparison and per-source outputs.

The figures live by idea: index statistics in :mod:`.index_plots`, maps in :mod:`.map_plots` (one panel as
:mod:`.geomap` draws it), the shared look and the legibility rule in :mod:`.figstyle`; the explainability figures
in :mod:`.explain_plots`, the filter-health figure in :mod:`.filter_health`.
"""

from __future__ import annotations

from ..settings import PlottingSection
from . import FIGURES
from .index_plots import plot_event_frequencies, plot_index_pdfs, plot_moments, plot_propagation, plot_seasonal_variance
from .map_plots import MAP_KINDS, map_annotations, map_rows, panel_counts, plot_map_rows

__all__ = ["FIGURES", "plot_all", "plot_propagation"]

MAP_ROLES = ("operational", "free_run", "bridging", "reanalysis")
MAP_LABELS = {"operational": "operational", "free_run": "free run", "bridging": "bridging", "reanalysis": "reanalysis"}


def plot_all(model: str, comparison: dict, sources: dict, figures: dict, plotting: PlottingSection) -> None:
    """Every figure named in ``figures`` (name → path) for one experiment."""
    unknown = set(figures) - set(FIGURES)
    if unknown:
        raise ValueError(f"unknown figures {sorted(unknown)}; known: {FIGURES}")
    if "pdfs" in figures:
        plot_index_pdfs(sources, figures["pdfs"], plotting, title=f"Index PDFs, bridging {model}")
    if "moments" in figures:
        plot_moments(comparison, figures["moments"], plotting)
    if "seasonal_variance" in figures:
        plot_seasonal_variance(comparison, figures["seasonal_variance"], plotting)
    if "events" in figures:
        plot_event_frequencies(comparison, figures["events"], plotting)
    labels = {role: MAP_LABELS[role] for role in MAP_ROLES if role in sources and sources[role].maps is not None}
    maps = {MAP_LABELS[role]: sources[role].maps for role in labels}
    notes = map_annotations(comparison, labels)
    for kind in MAP_KINDS:
        name = f"maps_{kind}"
        if name not in figures:
            continue
        rows = map_rows(kind, next(iter(maps.values())))
        extra = panel_counts(rows, maps)
        merged = {k: "\n".join(x for x in (notes.get(k), extra.get(k)) if x) for k in set(notes) | set(extra)}
        plot_map_rows(
            maps,
            rows,
            figures[name],
            plotting,
            annotations=merged,
            title=f"{kind.replace('_', ' ')} maps, bridging {model}",
        )
