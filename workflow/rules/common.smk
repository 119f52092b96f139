# Shared helpers: config validation, paths, the params/code-input conventions every rule follows.
import copy
import os
import re
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError

PROJECT = Path(workflow.basedir)
sys.path.insert(0, str(PROJECT / "src"))
# Rule scripts import the library of THIS checkout (not whatever copy happens to be installed), so a job runs
# exactly the code its `src()` inputs name; the variable reaches script subprocesses and SLURM jobs (--export=ALL).
# OpenMP threads that spin while waiting steal the cores of concurrent jobs (torch slows down 10-50x on 2 cores);
# the policy must be in the environment before a job imports torch. (Both set here, not required from the user,
# hence no envvars directive.)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.update(
    PYTHONPATH=os.pathsep.join([str(PROJECT / "src")] + [p for p in os.getenv("PYTHONPATH", "").split(os.pathsep) if p])
)

from bridging.codegraph import closure_parts  # noqa: E402
from bridging.errors import ConfigError  # noqa: E402
from bridging.layout import RunLayout, sentinel  # noqa: E402
from bridging.provenance import write_provenance  # noqa: E402
from bridging.settings import read_config_files, validate_config  # noqa: E402
from bridging.settings.da import source_models  # noqa: E402
from bridging.sweeps.plan import plan_sweeps  # noqa: E402

# The files in merge order (the Snakefile's, then --configfile's), re-read to refuse duplicate keys and to name the
# file that set a bad key.
_CONFIGFILES = [f for f in workflow.configfiles if f not in workflow.overwrite_configfiles] + list(
    workflow.overwrite_configfiles
)
try:
    _validated = validate_config(
        config,
        origin="Snakemake config (config/config.default.yaml + overlays)",
        sources=read_config_files(_CONFIGFILES),
    )
except ConfigError as err:
    raise WorkflowError(str(err))
# Normalised values (tuples as lists, defaults filled) so params compare equal between runs.
config.clear()
config.update(_validated.model_dump(mode="json"))

# Every path of the run folder comes from the layout the CLI commands use too (src/bridging/layout.py). A rule
# that writes a zarr store declares its sentinel (done(store)) as output, and the rules that read it take the
# sentinel as input: Snakemake's bookkeeping stays out of the store (scripts resolve stores with StorePaths).
LAYOUT = RunLayout.of(config)
RUN = LAYOUT.root
OPERATIONAL = [m["name"] for m in config["data"]["operational"]]
REANALYSIS = config["data"]["reanalysis"]["name"]
SOURCES = OPERATIONAL + [REANALYSIS]
IDEALIZED = config["idealized"]["model"]
ENV = "../../envs/bridging.yaml"


def hierarchy_models(*source_lists):
    """The idealized models other than idealized.model that lists of da.observations.sources name (sorted)."""
    return sorted({m for sources in source_lists for m in source_models(sources)} - {IDEALIZED})


def other_pseudo_obs(*source_lists):
    """The pseudo-observation stores of those models: the filter's inputs besides idealized.model's."""
    return [done(LAYOUT.pseudo_obs(m)) for m in hierarchy_models(*source_lists)]


def done(store):
    """The sentinel of a store path: the input or output that stands for the store in a rule."""
    return sentinel(store)


def _alternatives(names):
    return "|".join(re.escape(n) for n in names)


wildcard_constraints:
    model=_alternatives(OPERATIONAL),
    source=_alternatives(SOURCES),


def cfg(*keys):
    """The config subtree at keys, for a rule's params: only what the rule uses, so only its edits re-run it."""
    node = config
    for key in keys:
        node = node[key]
    return copy.deepcopy(node)


def cfg_except(*keys, exclude=()):
    """The config subtree at keys without the entries a job does not use (so editing those does not re-run it)."""
    return {k: v for k, v in cfg(*keys).items() if k not in exclude}


def operational_cfg(name):
    return next(m for m in config["data"]["operational"] if m["name"] == name)


# The rerun contract: a job lists as `code` inputs every library file its script runs, so editing one re-runs the
# job and its downstream. The lists are derived from the code (script_imports), not written by hand; the test
# tests/test_rerun_contract.py checks every rule against the import closure of its script.
# The settings package is not listed, on purpose: a changed default changes the params of the rules that use it,
# which re-runs exactly those (listing it would re-run every rule after any settings edit). _CORE is listed always.
_CORE = ("__init__.py", "errors.py", "runtime.py", "atomic.py")
_NOT_CODE_INPUTS = ("settings",)


def src(*parts):
    """The library files a job runs, listed as its inputs, so editing them re-runs the job and its downstream.

    Each part is a module or package under src/bridging ('da', 'stores.py', 'idealized/cf23.py').
    """
    files = []
    for part in (*_CORE, *parts):
        path = PROJECT / "src" / "bridging" / part
        if path.is_dir():
            files.extend(sorted(str(p.relative_to(PROJECT)) for p in path.rglob("*.py")))
        elif path.is_file():
            files.append(str(path.relative_to(PROJECT)))
        else:
            raise WorkflowError(f"src(): no module src/bridging/{part}")
    return sorted(set(files))


def script_imports(script):
    """The library modules scripts/<script>.py runs, as src() parts: every bridging module it imports, directly or
    through other modules, at module level or inside functions (bridging.codegraph), except the settings package."""
    return closure_parts(PROJECT / "scripts" / f"{script}.py", PROJECT / "src", exclude=_NOT_CODE_INPUTS)


def log(name):
    return LAYOUT.log(name)


def bench(name):
    return LAYOUT.benchmark(name)


# The per-source diagnostics outputs one model's comparison reads (the idealized source names come from
# diagnostics.smk; input functions run after every file is included).
def source_diagnostics(role, source):
    """The named inputs of one source's diagnostics outputs: <role>_statistics, <role>_indices (and _maps)."""
    out = {
        f"{role}_statistics": LAYOUT.source_diagnostics(source, "statistics.json"),
        f"{role}_indices": LAYOUT.source_diagnostics(source, "indices.nc"),
    }
    if role not in ("idealized", "pseudo_obs"):
        out[f"{role}_maps"] = LAYOUT.source_diagnostics(source, "maps.nc")
    return out


def comparison_sources(wildcards):
    return {
        **source_diagnostics("operational", wildcards.model),
        **source_diagnostics("free_run", f"free_run_{wildcards.model}"),
        **source_diagnostics("bridging", f"bridging_{wildcards.model}"),
        **source_diagnostics("reanalysis", REANALYSIS),
        **source_diagnostics("idealized", IDEALIZED_SOURCE),
        **source_diagnostics("pseudo_obs", PSEUDO_OBS_SOURCE),
    }


# The enabled sweeps (sweeps.smk), planned at load: a sweep the workflow cannot run yet is an error naming it.
try:
    SWEEPS = plan_sweeps(config)
except ConfigError as err:
    raise WorkflowError(str(err))


RETRAINING_SWEEPS = [name for name, plan in SWEEPS.items() if plan.retrains]


def sweep_filter_models(wildcards):
    """The models and latent store the sweep's filter job runs on: the main run's, or for a retraining sweep (λ) each
    value's own (lists in the sweep's order); and the pseudo-observations of every model its values assimilate."""
    plan = SWEEPS[wildcards.sweep]
    sources = [config["da"]["observations"]["sources"]]
    sources += [p.values["da.observations.sources"] for p in plan.points if "da.observations.sources" in p.values]
    if not plan.retrains:
        return {
            "latent_store": done(LAYOUT.latent(wildcards.model, "operational")),
            "forecast_model": LAYOUT.model_file(wildcards.model, "forecast.pt"),
            "autoencoder": LAYOUT.model_file(wildcards.model, "autoencoder.pt"),
            "other_pseudo_obs": other_pseudo_obs(*sources),
        }
    points = [LAYOUT.sweep_point(wildcards.sweep, v) for v in plan.labels]
    return {
        "latent_store": [done(p.latent(wildcards.model, "operational")) for p in points],
        "forecast_model": [p.model_file(wildcards.model, "forecast.pt") for p in points],
        "autoencoder": [p.model_file(wildcards.model, "autoencoder.pt") for p in points],
        "other_pseudo_obs": other_pseudo_obs(*sources),
    }


def sweep_point_autoencoder(wildcards):
    """The autoencoder that decodes a sweep value: the main run's, or the value's own (retraining sweeps)."""
    run = LAYOUT.sweep_point(wildcards.sweep, wildcards.value) if SWEEPS[wildcards.sweep].retrains else LAYOUT
    return run.model_file(wildcards.model, "autoencoder.pt")


def sweep_section(name):
    """A params function: the config section ``name`` with the sweep value's settings applied."""
    return lambda wc: SWEEPS[wc.sweep].section(config, wc.value, name)


def sweep_comparison_sources(wildcards):
    """The comparison's sources: the sweep value's bridging model, every other source the main run's."""
    point = LAYOUT.sweep_point(wildcards.sweep, wildcards.value)
    bridging = f"bridging_{wildcards.model}"
    return {
        **comparison_sources(wildcards),
        "bridging_statistics": point.source_diagnostics(bridging, "statistics.json"),
        "bridging_indices": point.source_diagnostics(bridging, "indices.nc"),
        "bridging_maps": point.source_diagnostics(bridging, "maps.nc"),
    }


def sweep_summary_inputs(wildcards):
    """Every model's filter manifest and every (model, value) comparison and propagation test, in the order the
    summary lists them."""
    labels = SWEEPS[wildcards.sweep].labels
    return {
        "manifests": [LAYOUT.sweep_filter(wildcards.sweep, m) for m in OPERATIONAL],
        "comparisons": [
            LAYOUT.sweep_point(wildcards.sweep, v).model_diagnostics(m, "comparison.json")
            for m in OPERATIONAL
            for v in labels
        ],
        "propagation": [
            LAYOUT.sweep_point(wildcards.sweep, v).model_diagnostics(m, "propagation.json")
            for m in OPERATIONAL
            for v in labels
        ],
        "indices": [
            LAYOUT.sweep_point(wildcards.sweep, v).source_diagnostics(f"bridging_{m}", "indices.nc")
            for m in OPERATIONAL
            for v in labels
        ],
        "autoencoder_metrics": (
            [
                LAYOUT.sweep_point(wildcards.sweep, v).model_file(m, "autoencoder_metrics.json")
                for m in OPERATIONAL
                for v in labels
            ]
            if SWEEPS[wildcards.sweep].retrains
            else []
        ),
    }


# The report's sections, in this order for the report(...) outputs of every rule file (the report sorts
# categories by name).
REPORT_CATEGORIES = {
    "evidence": "1. Evidence: comparison tables",
    "diagnostics": "2. ENSO diagnostics",
    "explain": "3. Explainability",
    "filter": "4. Filter health",
    "training": "5. Training and forecast gate",
    "sweeps": "6. Sensitivity sweeps",
}
