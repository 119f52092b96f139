"""One results layout: the run folder's paths, and the stage commands defaulting to exactly the rules' files."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest
from workflow_helpers import ROOT, TINY, snakemake

from bridging.cli import build_parser
from bridging.commands import assimilate
from bridging.layout import RunLayout, is_sentinel, sentinel, store_of
from bridging.settings import load_config

MODELS = ("DEMO-CESM2", "DEMO-GFDL-CM4")


def test_the_run_folder_layout():
    """The paths the rules and commands have always used (README, docs/architecture.md)."""
    run = RunLayout("results", "demo")
    assert run.root == "results/demo"
    assert run.catalog() == "results/demo/catalog/catalog.json"
    assert run.catalog("csv") == "results/demo/catalog/catalog.csv"
    assert run.weights("M") == "results/demo/weights/M.nc"
    assert run.store("M") == "results/demo/stores/M.zarr"
    assert run.decoded("bridging", "M") == "results/demo/stores/bridging_M.zarr"
    assert run.decoded("free_run", "M") == "results/demo/stores/free_run_M.zarr"
    assert run.idealized_reference("cf23") == "results/demo/idealized/cf23_reference.zarr"
    assert run.pseudo_obs("cf23") == "results/demo/pseudo_obs/cf23.zarr"
    assert run.model_file("M", "autoencoder.pt") == "results/demo/models/M/autoencoder.pt"
    assert run.latent("M", "operational") == "results/demo/latent/M/operational.zarr"
    assert run.assimilation("M") == "results/demo/assimilation/M.zarr"
    assert run.free_run("M") == "results/demo/free_run/M.zarr"
    assert run.filter_statistics("M", "free_run") == "results/demo/free_run/M_statistics.json"
    assert run.source_diagnostics("M", "maps.nc") == "results/demo/diagnostics/sources/M/maps.nc"
    assert run.model_diagnostics("M", "explain.json") == "results/demo/diagnostics/M/explain.json"
    assert run.figure("M", "events") == "results/demo/diagnostics/M/figures/events.png"
    assert run.log("ingest_M") == "results/demo/logs/ingest_M.log"
    assert run.benchmark("ingest_M") == "results/demo/benchmarks/ingest_M.tsv"
    assert run.provenance("versions.json") == "results/demo/provenance/versions.json"
    # wildcards pass through, as the rules use them
    assert run.store("{kind}_{model}") == "results/demo/stores/{kind}_{model}.zarr"
    with pytest.raises(ValueError, match="filter kind"):
        run.filter_store("M", "bridging")


def test_a_store_and_its_sentinel():
    """Rules name a store by its sentinel beside it; scripts get the store back (and other paths unchanged)."""
    store = RunLayout("results", "demo").store("M")
    assert sentinel(store) == "results/demo/stores/M.zarr.done.json"
    assert is_sentinel(sentinel(store)) and not is_sentinel(store)
    assert store_of(sentinel(store)) == store
    assert store_of("results/demo/models/M/autoencoder.pt") == "results/demo/models/M/autoencoder.pt"


def test_every_store_a_rule_writes_is_a_sentinel_output(jobs):
    """No rule declares a zarr store as a directory() output (Snakemake would put its timestamp file inside)."""
    outputs = [path for job in jobs for path in job["output"]]
    assert not [p for p in outputs if p.endswith(".zarr")]
    stores = {store_of(p) for p in outputs if is_sentinel(p)}
    run = RunLayout("results", "test")
    for model in MODELS:
        assert {run.store(model), run.decoded("bridging", model), run.latent(model, "reanalysis")} <= stores
        assert {run.assimilation(model), run.free_run(model)} <= stores
    assert {run.idealized_reference("cf23"), run.pseudo_obs("cf23")} <= stores


def test_layout_of_a_config_and_of_its_dict_form():
    cfg = load_config(str(ROOT / "config/test.yaml"))
    assert RunLayout.of(cfg) == RunLayout.of(cfg.model_dump(mode="json")) == RunLayout("results", "test")


def _dry_run_jobs() -> list[dict]:
    """Every job of the tiny DAG (rule, wildcards, input and output paths) as Snakemake plans it."""
    proc = snakemake(ROOT, "-n", "--forceall", "all", *TINY, timeout=300)
    jobs = []
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", proc.stdout + proc.stderr):
        m = re.match(r"(?:local)?rule (\w+):", block)
        if not m:
            continue
        job = {"rule": m.group(1), "input": [], "output": [], "wildcards": {}}
        for line in block.splitlines()[1:]:
            key, _, value = line.strip().partition(": ")
            if key in ("input", "output"):
                job[key] = [v.strip() for v in value.split(", ")]
            elif key == "wildcards":
                job[key] = dict(item.split("=", 1) for item in value.split(", "))
        jobs.append(job)
    return jobs


@pytest.fixture(scope="module")
def jobs() -> list[dict]:
    return _dry_run_jobs()


def _job(jobs, rule, **wildcards) -> dict:
    found = [j for j in jobs if j["rule"] == rule and all(j["wildcards"].get(k) == v for k, v in wildcards.items())]
    assert len(found) == 1, (rule, wildcards, len(found))
    return found[0]


# (command, extra CLI options, rule, rule wildcards, the command's path keys read, the outputs it writes)
COMMANDS = [
    ("train_autoencoder", [], "train_autoencoder", {},
     ["operational_store", "reanalysis_store", "pseudo_obs"],
     lambda p: [p["out_dir"] / n for n in ("autoencoder.pt", "autoencoder_metrics.json", "autoencoder_curves.png")]),
    ("encode", [], "encode", {},
     ["autoencoder", "operational_store", "reanalysis_store", "pseudo_obs"],
     lambda p: [p["out_dir"] / "operational.zarr", p["out_dir"] / "reanalysis.zarr"]),
    ("train_forecast", [], "train_forecast", {},
     ["autoencoder", "operational_store", "reanalysis_store"],
     lambda p: [p["out_dir"] / f"forecast{n}" for n in (".pt", "_metrics.json", "_curves.png", "_gate.png")]),
    ("assimilate", [], "assimilate", {},
     ["latent", "operational_store", "forecast_model", "autoencoder", "pseudo_obs"],
     lambda p: [p["out"], p["statistics"]]),
    ("assimilate", ["--free-run"], "free_run", {},
     ["latent", "operational_store", "forecast_model", "autoencoder", "pseudo_obs"],
     lambda p: [p["out"], p["statistics"]]),
    ("decode", [], "decode", {"kind": "bridging"}, ["assimilation", "autoencoder", "operational_store"],
     lambda p: [p["out"]]),
    ("decode", ["--free-run"], "decode", {"kind": "free_run"}, ["assimilation", "autoencoder", "operational_store"],
     lambda p: [p["out"]]),
]  # fmt: skip


@pytest.mark.parametrize(("command", "extra", "rule", "wildcards", "reads", "writes"), COMMANDS)
@pytest.mark.parametrize("model", MODELS)
def test_commands_default_to_the_rules_files(jobs, command, extra, rule, wildcards, reads, writes, model, monkeypatch):
    monkeypatch.chdir(ROOT)
    argv = [command.replace("_", "-"), "--model", model, "--config", "config/test.yaml", *extra]
    args = build_parser().parse_args(argv)
    cfg = load_config("config/test.yaml")
    paths = importlib.import_module(f"bridging.commands.{command}").resolve_paths(args, cfg)
    job = _job(jobs, rule, model=model, **wildcards)
    # the rules name each store by its sentinel (bridging.layout.sentinel); the command reads and writes the store
    inputs, outputs = {store_of(p) for p in job["input"]}, sorted(store_of(p) for p in job["output"])
    assert {str(paths[k]) for k in reads} <= inputs, (paths, job["input"])
    assert sorted(str(p) for p in writes(paths)) == outputs
    if command == "train_forecast":  # reads the latent stores from its latent folder
        assert {str(paths["latent_dir"] / f"{k}.zarr") for k in ("operational", "reanalysis")} <= inputs


def test_options_replace_the_defaults(monkeypatch, tmp_path):
    monkeypatch.chdir(ROOT)
    argv = ["assimilate", "--model", MODELS[0], "--out", str(tmp_path / "x.zarr"), "--latent", "l.zarr"]
    args = build_parser().parse_args(argv)
    paths = assimilate.resolve_paths(args, load_config("config/config.default.yaml"))
    assert paths["out"] == tmp_path / "x.zarr" and paths["latent"] == Path("l.zarr")
    assert paths["statistics"] == tmp_path / f"{MODELS[0]}_statistics.json"  # beside the store, as documented
    assert paths["autoencoder"] == Path(f"results/demo/models/{MODELS[0]}/autoencoder.pt")


def test_assimilate_reads_the_other_models_of_a_hierarchy(monkeypatch, tmp_path):
    monkeypatch.chdir(ROOT)
    overlay = tmp_path / "hierarchy.yaml"
    overlay.write_text("da:\n  observations:\n    sources: [cf23_ep, cfy22_cp, xro]\n")
    cfg = load_config("config/config.default.yaml", overlay)
    args = build_parser().parse_args(["assimilate", "--model", MODELS[0]])
    paths = assimilate.resolve_paths(args, cfg)
    assert paths["other_pseudo_obs"] == [
        Path("results/demo/pseudo_obs/cfy22.zarr"),
        Path("results/demo/pseudo_obs/xro.zarr"),
    ]
    assert assimilate.resolve_paths(args, load_config("config/config.default.yaml"))["other_pseudo_obs"] == []
