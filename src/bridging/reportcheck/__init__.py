"""The report check: the Snakemake HTML report rendered in headless Chromium, every section and item screenshotted,
and what a reader would stumble on reported (``make report-check``; ``python -m bridging.reportcheck``)."""

from .check import check_report

__all__ = ["check_report"]
