"""Input data: readers of CMIP6 Omon and ORAS5 files (readers), their plausibility screening (plausibility), and the
intake-esm catalog of the files found under the configured roots (catalog). Writers of the same layouts, for tests
and the demo data, are :mod:`bridging.fixtures`."""
