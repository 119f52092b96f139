"""ENSO diagnostics of ENSO Bridge: indices, statistics, events, maps, the comparison table, figures, explainability.

Kept import-light: the Snakefile reads :data:`FIGURES` at parse time.
"""

# The comparison figures of one experiment (RUN/diagnostics/<model>/figures/<name>.png), in report order.
FIGURES = (
    "pdfs",
    "moments",
    "seasonal_variance",
    "events",
    "maps_std",
    "maps_regression",
    "maps_eof",
    "maps_composites",
    "maps_residual_std",
)
