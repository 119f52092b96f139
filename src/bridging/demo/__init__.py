"""The embedded demo data set: synthetic CESM2-, GFDL-CM4- and ORAS5-layout files with documented ENSO biases
(:mod:`bridging.demo.generate`), built from the fields of :mod:`bridging.demo.fields`."""

from .generate import generate_demo_data, load_statistics, plan_sources

__all__ = ["generate_demo_data", "load_statistics", "plan_sources"]
