"""The project's papers: LICENSE and CITATION.cff agree with pyproject.toml, CITATION.cff is valid CFF 1.2.0, the
README's paths are those of the run layout, and its "Using the results" snippet runs and gives the workflow's
Niño 3.4 index."""

from __future__ import annotations

import json
import re
import tomllib

import jsonschema
import numpy as np
import pytest
import yaml

from bridging.da.checkpoint import sidecar_dir
from bridging.diagnostics.indices import indices_from_file
from bridging.diagnostics.synthetic import synthetic_store
from bridging.layout import DECODED_KINDS, FILTER_KINDS, LATENT_KINDS, RunLayout
from bridging.resume import resume_path_for
from bridging.stores import write_store


@pytest.fixture(scope="module")
def pyproject(project_root) -> dict:
    return tomllib.loads((project_root / "pyproject.toml").read_text())


def test_license_is_the_mit_license_pyproject_names(project_root, pyproject):
    assert pyproject["project"]["license"] == {"text": "MIT"}
    text = (project_root / "LICENSE").read_text()
    assert text.startswith("MIT License\n") and "Copyright (c) 2026 ENSO Bridge developers" in text
    assert 'THE SOFTWARE IS PROVIDED "AS IS"' in text


def test_citation_cff_is_valid_and_matches_pyproject(project_root, pyproject):
    cff = yaml.safe_load((project_root / "CITATION.cff").read_text())
    schema = json.loads((project_root / "tests/schemas/citation-file-format-1.2.0.json").read_text())
    jsonschema.validate(cff, schema)  # raises on any error
    assert cff["cff-version"] == "1.2.0" and cff["license"] == "MIT"
    assert cff["version"] == pyproject["project"]["version"]
    assert cff["authors"] == [{"name": "ENSO Bridge developers"}]
    assert str(cff["date-released"]) == "2026-12-05" and "\n" not in cff["abstract"].strip()


def _layout_paths() -> set[str]:
    """Every path of the run layout (relative to the run folder), placeholders for the names, and their folders."""
    layout = RunLayout("results", "<run>")
    m, s = "<model>", "<source>"
    paths = {
        layout.catalog("json"), layout.catalog("csv"), *(layout.results_catalog(x, part) for x in ("json", "csv") for part in ("stores", "diagnostics")),
        layout.weights(s), layout.store(s),
        layout.idealized_reference("<idealized>"), layout.pseudo_obs("<idealized>"),
        *(layout.decoded(k, m) for k in DECODED_KINDS), *(layout.latent(m, k) for k in LATENT_KINDS),
        *(layout.filter_store(m, k) for k in FILTER_KINDS), *(layout.filter_statistics(m, k) for k in FILTER_KINDS),
        *(layout.model_file(m, f) for f in ("autoencoder.pt", "forecast.pt", "autoencoder_metrics.json",
                                            "forecast_metrics.json", "autoencoder_curves.png", "forecast_curves.png")),
        *(layout.model_diagnostics(m, f) for f in ("summary.html", "comparison.md", "comparison.csv", "comparison.json",
                                                   "tests.html", "acceptance.json", "acceptance.html", "propagation.json",
                                                   "explain.json")),
        *(layout.source_diagnostics(s, f) for f in ("statistics.json", "indices.nc", "maps.nc")),
        layout.figure(m, "<figure>"), layout.log("<job>"), layout.benchmark("<job>"), layout.provenance("<file>"),
        str(resume_path_for(layout.model_file(m, "autoencoder.pt"))),
        str(resume_path_for(layout.model_file(m, "forecast.pt"))),
        str(sidecar_dir(layout.assimilation(m))) + "/",
        layout.sweep_point("<sweep>", "<value>").root + "/",
        *(layout.sweep_summary("<sweep>", x) for x in ("csv", "md", "html", "png")), layout.sweep_filter("<sweep>", m),
    }  # fmt: skip
    folders = {"/".join(p.split("/")[:k]) + "/" for p in paths for k in range(3, p.count("/") + 1)}
    return {p.removeprefix("results/<run>/") for p in paths | folders}


def _readme_paths(readme: str) -> list[str]:
    """The run-folder paths the README names: the first column of the outputs table (siblings given by a bare name
    share the first one's folder; {a,b} alternatives expanded) and every `results/<run>/…` path."""
    table = readme.split("## What `make run` leaves in `results/demo/`")[1].split("\n## ")[0]
    found = []
    for row in re.findall(r"^\| (`[^|]*) \|", table, flags=re.M):
        cells = re.findall(r"`([^`]+)`", row)
        folder = cells[0].rsplit("/", 1)[0] + "/" if "/" in cells[0].rstrip("/") else ""
        for cell in cells:
            full = cell if "/" in cell.rstrip("/") or cell.endswith("/") else folder + cell
            found.append(full)
    found += [p.removeprefix("results/<run>/") for p in re.findall(r"`(results/<run>/[^`]+)`", readme)]
    expanded = []
    for path in found:
        head, _, rest = path.partition("{")
        options, _, tail = rest.partition("}")
        expanded += [head + o + tail for o in options.split(",")] if rest else [path]
    return expanded


def test_readme_paths_are_the_run_layout(project_root):
    readme = (project_root / "README.md").read_text()
    known = _layout_paths()
    named = _readme_paths(readme)
    assert len(named) > 20
    # report.html: Snakemake's report (`make run` writes it with --report), not an output of a rule
    stale = [p for p in named if p not in known | {"report.html"} and p.replace("*", "<figure>") not in known]
    assert not stale, f"README paths that the run layout does not produce: {stale}"
    for checkpoint in (".autoencoder.resume.pt", ".<model>.zarr.resume/"):
        assert any(p.endswith(checkpoint) for p in named), checkpoint


def test_using_the_results_snippet_gives_the_workflow_nino34(project_root, tmp_path, monkeypatch):
    readme = (project_root / "README.md").read_text()
    section = readme.split("## Using the results")[1].split("\n## ")[0]
    snippet = re.search(r"```python\n(.*?)```", section, flags=re.S).group(1)
    assert len(snippet.strip().splitlines()) == 5
    path = re.search(r'xr\.open_zarr\("([^"]+)"\)', snippet).group(1)
    monkeypatch.chdir(tmp_path)
    write_store(synthetic_store(n_years=12, n_members=2, seed=3, source_id="bridging_DEMO-CESM2"), path)
    scope: dict = {}
    exec(compile(snippet, "README.md", "exec"), scope)  # noqa: S102 - the README's own code
    ours = indices_from_file(path)["nino34"].transpose("member", "time")
    theirs = scope["nino34"].transpose("member", "time")
    np.testing.assert_allclose(theirs.values, ours.values, atol=1e-4)
    assert (
        'intake.open_esm_datastore("results/demo/catalog.json").to_dataset_dict()' in section
    )  # run by test_operations
