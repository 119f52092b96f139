"""Where a run's files live: one layout of ``<run.results_dir>/<run.name>/`` for the workflow and the command line.

The Snakemake rules (``workflow/rules/*.smk``, through ``LAYOUT`` in ``common.smk``) name their inputs and outputs
with it, and the stage commands (``bridging assimilate`` …) take their default paths from it, so a command run
without path options reads and writes exactly the files of the rule it stands for. Paths are strings joined with
``/`` as the rules have always written them; a name may be a Snakemake wildcard (``layout.store("{source}")``).

The run folder (``RUN``)::

    catalog.json, catalog.csv               the catalog of the run's outputs (intake-esm)
    catalog/catalog.json, catalog.csv       the input catalog
    weights/<source>.nc                     regrid weights per source
    stores/<source>.zarr                    analysis-ready stores: operational models, the reanalysis, and the
                                            decoded bridging_<model> and free_run_<model> stores
    idealized/<idealized>_reference.zarr    the idealized model's long reference run
    pseudo_obs/<idealized>.zarr             its pseudo-observations
    models/<model>/autoencoder.pt, …        trained models with their metrics and figures
    latent/<model>/<kind>.zarr              latent stores (kind: operational, reanalysis)
    assimilation/<model>.zarr, _statistics.json   the filter run
    free_run/<model>.zarr, _statistics.json       its control
    diagnostics/sources/<source>/…          per-source statistics, indices and maps
    diagnostics/<model>/…                   per-model comparison, acceptance, figures, explainability
    sweeps/<sweep>/filter/<model>.json, <model>/<group>.zarr   a sweep's filter job: its manifest and filter stores
    sweeps/<sweep>/<value>/stores/…, diagnostics/…             one value of a sweep, laid out as a run folder
    sweeps/<sweep>/summary.csv, .md, .html, .png  the sweep's summary table and figure
    logs/, benchmarks/, provenance/

Every zarr store ``X.zarr`` a rule writes has a sentinel ``X.zarr.done.json`` beside it (:func:`sentinel`): the
rule's declared output, written after the store is complete (JSON: the store path, the rule's config hash, the
package version). Snakemake keeps its bookkeeping (the ``.snakemake_timestamp`` it puts into a ``directory()``
output) with the sentinel, so the store itself holds only zarr's files and opens without warnings. Rules name
sentinels as inputs and outputs; scripts get the stores' paths back with :func:`store_of`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

#: what a store's sentinel adds to the store's path
SENTINEL_SUFFIX = ".done.json"
#: the filter runs: the assimilation and its control without analysis (the `kind` of the filter stage)
FILTER_KINDS = ("assimilation", "free_run")
#: the decoded stores of a model: the bridging model (decoded analysis) and the decoded free run
DECODED_KINDS = ("bridging", "free_run")
#: the latent stores of a model, one per record the autoencoder encodes
LATENT_KINDS = ("operational", "reanalysis")


def sentinel(store: str) -> str:
    """The sentinel of a store path (the rules' input or output that stands for the store)."""
    return f"{store}{SENTINEL_SUFFIX}"


def is_sentinel(path) -> bool:
    return str(path).endswith(SENTINEL_SUFFIX)


def store_of(path) -> str:
    """The store a sentinel stands for; any other path unchanged."""
    path = str(path)
    return path[: -len(SENTINEL_SUFFIX)] if is_sentinel(path) else path


def _check(value: str, allowed: tuple[str, ...], what: str) -> str:
    if value not in allowed:
        raise ValueError(f"{what} must be one of {allowed}, not {value!r}")
    return value


@dataclass(frozen=True)
class RunLayout:
    """The files of one run, under ``results_dir/run_name``."""

    results_dir: str
    run_name: str

    @classmethod
    def of(cls, config) -> RunLayout:
        """The layout of a config: a :class:`~bridging.settings.Config` or its dict form (Snakemake's ``config``)."""
        run = config["run"] if isinstance(config, Mapping) else config.run
        if isinstance(run, Mapping):
            return cls(str(run["results_dir"]), str(run["name"]))
        return cls(str(run.results_dir), str(run.name))

    @property
    def root(self) -> str:
        """The run folder (``RUN`` in the rules)."""
        return f"{self.results_dir}/{self.run_name}"

    def path(self, *parts: str) -> str:
        """A path inside the run folder."""
        return "/".join((self.root, *parts))

    # -------------------------------------------------------------------------------------------------- inputs
    def catalog(self, suffix: str = "json") -> str:
        """The input catalog: its JSON (``suffix="json"``) or the CSV it points to (``"csv"``)."""
        return self.path("catalog", f"catalog.{_check(suffix, ('json', 'csv'), 'catalog suffix')}")

    # -------------------------------------------------------------------------------------------------- outputs
    def results_catalog(self, suffix: str = "json", part: str = "stores") -> str:
        """The intake-esm catalogs of the run's outputs (JSON, or its CSV table): ``catalog.json`` in the run folder
        for the zarr stores, ``diagnostics/catalog.json`` for the diagnostics netCDF files."""
        name = f"catalog.{_check(suffix, ('json', 'csv'), 'results catalog suffix')}"
        folder = {"stores": (), "diagnostics": ("diagnostics",)}[_check(part, ("stores", "diagnostics"), "part")]
        return self.path(*folder, name)

    def weights(self, source: str) -> str:
        return self.path("weights", f"{source}.nc")

    def store(self, source: str) -> str:
        """The analysis-ready store of a source (operational model, reanalysis, or a decoded store's name)."""
        return self.path("stores", f"{source}.zarr")

    def decoded(self, kind: str, model: str) -> str:
        """The decoded store of a model's filter run: ``stores/bridging_<model>.zarr`` (the bridging model) or
        ``stores/free_run_<model>.zarr``."""
        return self.store(f"{_check(kind, DECODED_KINDS, 'decoded kind')}_{model}")

    def idealized_reference(self, idealized: str) -> str:
        return self.path("idealized", f"{idealized}_reference.zarr")

    def pseudo_obs(self, idealized: str) -> str:
        return self.path("pseudo_obs", f"{idealized}.zarr")

    # -------------------------------------------------------------------------------------------------- models
    def model_dir(self, model: str) -> str:
        """The folder of a model's trained networks, their metrics and figures."""
        return self.path("models", model)

    def model_file(self, model: str, name: str) -> str:
        """A file of :meth:`model_dir` (``autoencoder.pt``, ``forecast_metrics.json`` …)."""
        return self.path("models", model, name)

    def latent_dir(self, model: str) -> str:
        return self.path("latent", model)

    def latent(self, model: str, kind: str) -> str:
        """A latent store of a model: ``kind`` is ``operational`` or ``reanalysis``."""
        return self.path("latent", model, f"{_check(kind, LATENT_KINDS, 'latent kind')}.zarr")

    # -------------------------------------------------------------------------------------------------- the filter
    def filter_store(self, model: str, kind: str) -> str:
        """The store of a filter run: ``kind`` is ``assimilation`` or ``free_run``."""
        return self.path(_check(kind, FILTER_KINDS, "filter kind"), f"{model}.zarr")

    def filter_statistics(self, model: str, kind: str) -> str:
        """The JSON statistics beside :meth:`filter_store`."""
        return self.path(_check(kind, FILTER_KINDS, "filter kind"), f"{model}_statistics.json")

    def assimilation(self, model: str) -> str:
        return self.filter_store(model, "assimilation")

    def free_run(self, model: str) -> str:
        return self.filter_store(model, "free_run")

    # -------------------------------------------------------------------------------------------------- diagnostics
    def diagnostics(self, *parts: str) -> str:
        """The diagnostics folder, or a path inside it."""
        return self.path("diagnostics", *parts)

    def source_diagnostics(self, source: str, name: str) -> str:
        """A per-source diagnostics output (``statistics.json``, ``indices.nc``, ``maps.nc``)."""
        return self.diagnostics("sources", source, name)

    def model_diagnostics(self, model: str, name: str) -> str:
        """A per-model diagnostics output (``comparison.json``, ``explain.json`` …)."""
        return self.diagnostics(model, name)

    def figure(self, model: str, name: str) -> str:
        """A per-model figure, ``diagnostics/<model>/figures/<name>.png``."""
        return self.diagnostics(model, "figures", f"{name}.png")

    # -------------------------------------------------------------------------------------------------- sweeps
    def sweep(self, sweep: str, *parts: str) -> str:
        """A sweep's folder, ``sweeps/<sweep>/``, or a path inside it."""
        return self.path("sweeps", sweep, *parts)

    def sweep_point(self, sweep: str, value: str) -> RunLayout:
        """The layout of one value of a sweep: a run folder at ``sweeps/<sweep>/<value>/`` (its decoded stores under
        ``stores/``, its diagnostics under ``diagnostics/``), so the per-value outputs mirror the main run's."""
        return RunLayout(self.path("sweeps", sweep), value)

    def sweep_filter(self, sweep: str, model: str) -> str:
        """The manifest of a sweep's filter job for a model (its filter stores lie in ``filter/<model>/``)."""
        return self.sweep(sweep, "filter", f"{model}.json")

    def sweep_summary(self, sweep: str, suffix: str) -> str:
        """The sweep's summary: the table as ``csv``, ``md`` or ``html``, the figure as ``png``."""
        return self.sweep(sweep, f"summary.{_check(suffix, ('csv', 'md', 'html', 'png'), 'sweep summary suffix')}")

    # -------------------------------------------------------------------------------------------------- records
    def log(self, name: str) -> str:
        return self.path("logs", f"{name}.log")

    def benchmark(self, name: str) -> str:
        return self.path("benchmarks", f"{name}.tsv")

    def provenance(self, name: str) -> str:
        return self.path("provenance", name)
