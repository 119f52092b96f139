"""Sensitivity sweeps (config ``sweeps:``): what they run (:mod:`.plan`), the one filter job of a filter-only sweep
(:mod:`.filter`) and the per-sweep summary table (:mod:`.summary`)."""
