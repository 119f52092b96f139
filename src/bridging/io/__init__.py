"""Input data: readers of CMIP6 Omon and ORAS5 files (readers), writers of their real layouts (layouts), and the
intake-esm catalog of the files found under the configured roots (catalog)."""
