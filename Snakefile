# ENSO Bridge: bridging idealized and operational ENSO models through latent data assimilation.
# Rules live in workflow/rules/*.smk; each runs a thin script in scripts/ over the bridging library in src/.
from pathlib import Path

from snakemake.utils import min_version

min_version("9.19")


configfile: "config/config.default.yaml"


# A git-ignored local overlay; --configfile on the command line overrides both.
if Path("config/config.yaml").exists():

    configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/demo.smk"
include: "workflow/rules/catalog.smk"
include: "workflow/rules/ingest.smk"
include: "workflow/rules/idealized.smk"
include: "workflow/rules/models.smk"
include: "workflow/rules/assimilation.smk"
include: "workflow/rules/diagnostics.smk"
include: "workflow/rules/results.smk"
include: "workflow/rules/sweeps.smk"


# Everything: stores, models, the bridging and free-run stores, diagnostics with figures and explainability maps,
# and the catalog of the outputs. `make run` then renders the Snakemake HTML report from the outputs marked report(...).
rule all:
    default_target: True
    input:
        rules.diagnostics.input,
        rules.results_catalog.output,


localrules:
    all,


# Provenance of every successful run (resolved config, package versions, git commit) in results/<run>/provenance/.
# Written by the run itself, not by a job: a job whose params were the whole config would re-run after every edit.
onsuccess:
    write_provenance(config, LAYOUT.provenance("config.resolved.yaml"), LAYOUT.provenance("versions.json"), PROJECT)
