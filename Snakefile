# ENSO Bridge: bridging idealized and operational ENSO models through latent data assimilation.
# Rules live in workflow/rules/*.smk; each runs a thin script in scripts/ over the bridging library in src/.
from pathlib import Path

from snakemake.utils import min_version

min_version("9.19")


configfile: "config/config.default.yaml"


# A git-ignored local overlay; --configfile on the command line overrides both.
if Path("config/config.yaml").exists():

    configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/provenance.smk"
