"""ENSO Bridge: bridge idealized and operational ENSO models through latent data assimilation.

The library holds all logic; Snakemake rule scripts and the ``bridging`` CLI are thin adapters over it.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("enso-bridge")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
