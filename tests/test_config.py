"""The typed config: defaults in one place, strict validation naming the key, generated files in sync."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from bridging.errors import ConfigError
from bridging.settings import Config, deep_merge, load_config, render_default_yaml, render_schema, validate_config


def test_default_yaml_is_generated_from_the_models(project_root):
    committed = (project_root / "config/config.default.yaml").read_text()
    assert committed == render_default_yaml(), "run `.venv/bin/bridging config --write` and commit the result"


def test_schema_is_generated_from_the_models(project_root):
    committed = (project_root / "workflow/schemas/config.schema.json").read_text()
    assert committed == render_schema(), "run `.venv/bin/bridging config --write` and commit the result"


def test_default_yaml_round_trips(project_root):
    data = yaml.safe_load((project_root / "config/config.default.yaml").read_text())
    assert validate_config(data).model_dump(mode="json") == Config().model_dump(mode="json")


def test_test_overlay_is_valid(project_root):
    cfg = load_config(project_root / "config/config.default.yaml", project_root / "config/test.yaml")
    assert cfg.run.name != Config().run.name, "the test overlay must write to its own run folder"


def test_unknown_key_is_named():
    with pytest.raises(ConfigError, match=r"da\.inflaton: unknown key"):
        validate_config({"da": {"inflaton": 1.1}})


def test_wrong_type_is_named():
    with pytest.raises(ConfigError, match=r"autoencoder\.latent_dim"):
        validate_config({"autoencoder": {"latent_dim": "many"}})


def test_out_of_range_value_is_named():
    with pytest.raises(ConfigError, match=r"da\.inflation"):
        validate_config({"da": {"inflation": 0.5}})


def test_missing_and_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("da: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("42\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_config(scalar)


def test_yaml_is_never_executed(tmp_path):
    evil = tmp_path / "evil.yaml"
    evil.write_text("run: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(ConfigError):
        load_config(evil)


def test_deep_merge_overrides_leaves_only():
    base = {"a": {"b": 1, "c": 2}, "d": [1, 2]}
    assert deep_merge(base, {"a": {"b": 5}, "d": [3]}) == {"a": {"b": 5, "c": 2}, "d": [3]}
    assert base == {"a": {"b": 1, "c": 2}, "d": [1, 2]}


def test_schema_rejects_unknown_keys(project_root):
    schema = json.loads((project_root / "workflow/schemas/config.schema.json").read_text())
    assert schema["additionalProperties"] is False


# ---------------------------------------------------------------------------------------------------- issue 13


@pytest.mark.parametrize("name", ["..", ".", ".hidden", "a/b", "..\\\\x", ""])
def test_run_and_source_names_cannot_leave_their_folder(name):
    with pytest.raises(ConfigError, match=r"run\.name"):
        validate_config({"run": {"name": name}})
    with pytest.raises(ConfigError, match=r"data\.operational\.0\.name"):
        validate_config({"data": {"operational": [{"name": name, "source_id": "X"}]}})
    with pytest.raises(ConfigError, match=r"data\.reanalysis\.name"):
        validate_config({"data": {"reanalysis": {"name": name}}})


def test_source_names_are_unique():
    model = {"name": "ORAS5", "source_id": "CESM2"}
    with pytest.raises(ConfigError, match="reanalysis.name 'ORAS5' is also the name"):
        validate_config({"data": {"operational": [model]}})
    twice = [{"name": "CESM2", "source_id": "CESM2"}, {"name": "CESM2", "source_id": "GFDL-CM4"}]
    with pytest.raises(ConfigError, match=r"unique, \['CESM2'\]"):
        validate_config({"data": {"operational": twice}})
    with pytest.raises(ConfigError, match="bridging_/free_run_"):
        validate_config(
            {"data": {"operational": [{"name": "A", "source_id": "A"}, {"name": "bridging_A", "source_id": "B"}]}}
        )


@pytest.mark.parametrize(
    "overlay, key",
    [
        ({"da": {"inflation": float("nan")}}, r"da\.inflation"),
        ({"da": {"inflation": float("inf")}}, r"da\.inflation"),
        ({"ingest": {"isotherm": float("nan")}}, r"ingest\.isotherm"),
        ({"grid": {"lat_min": float("-inf")}}, r"grid\.lat_min"),
        ({"idealized": {"cf23": {"zeta": float("nan")}}}, r"idealized\.cf23\.zeta"),
    ],
)
def test_non_finite_numbers_are_refused(overlay, key):
    with pytest.raises(ConfigError, match=key):
        validate_config(overlay)


@pytest.mark.parametrize(
    "overlay, message",
    [
        ({"grid": {"lat_min": 20.0, "lat_max": -20.0}}, r"grid: lat_min \(20.0\) must be below lat_max"),
        ({"grid": {"lon_min": 280.0, "lon_max": 120.0}}, r"grid: lon_min \(280.0\) must be below lon_max"),
        ({"data": {"reanalysis": {"years": [2023, 1981]}}}, r"data\.reanalysis: years: first year 2023 is after"),
        (
            {"data": {"operational": [{"name": "A", "source_id": "A", "years": [2000, 1990]}]}},
            r"data\.operational\.0: years",
        ),
        (
            {"da": {"adaptive_noise": {"min_factor": 3.0, "max_factor": 2.0}}},
            r"min_factor \(3.0\) must not exceed max_factor",
        ),
        ({"autoencoder": {"latent_dim": 100}}, r"latent_dim \(100\) must be at least the number of observables \(112"),
        ({"data": {"operational": []}}, r"data\.operational: List should have at least 1 item"),
        (
            {"demo": {"reanalysis": {"first_year": 2023, "last_year": 2004}}},
            r"demo\.reanalysis\.first_year \(2023\) is after",
        ),
    ],
)
def test_cross_field_checks_at_load(overlay, message):
    with pytest.raises(ConfigError, match=message):
        validate_config(overlay)


def test_latent_dim_check_counts_the_observables_of_the_configured_layout():
    # 28 observables with every 4th node (config/test.yaml); CFY22 has three boxes
    validate_config({"pseudo_obs": {"node_stride": 4}, "autoencoder": {"latent_dim": 28}})
    with pytest.raises(ConfigError, match=r"\(28 with"):
        validate_config({"pseudo_obs": {"node_stride": 4}, "autoencoder": {"latent_dim": 27}})
    validate_config({"idealized": {"model": "cfy22"}, "autoencoder": {"latent_dim": 3}})


@pytest.mark.parametrize("model, stride, variables", [("cf23", 1, ["sst", "thermocline_depth"]), ("cf23", 3, ["sst"]),
                                                      ("cf23", 4, ["thermocline_depth", "sst"]), ("cfy22", 1, ["sst"]),
                                                      ("cfy22", 1, ["sst", "thermocline_depth"])])  # fmt: skip
def test_observable_count_matches_the_layouts(model, stride, variables):
    from bridging.idealized.pseudo_obs import observation_layout
    from bridging.settings import PseudoObsSection, n_observables

    po = PseudoObsSection(node_stride=stride, variables=variables)
    assert n_observables(model, po) == observation_layout({}, model=model, pseudo_obs=po).size


def test_duplicate_yaml_keys_are_errors_naming_the_file(tmp_path):
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text("da:\n  inflation: 1.2\nautoencoder:\n  epochs: 3\nda:\n  ensemble_size: 20\n")
    with pytest.raises(ConfigError, match=r"overlay\.yaml: duplicate key 'da' at line 5 \(first at line 1\)"):
        load_config(overlay)
    nested = tmp_path / "nested.yaml"
    nested.write_text("da:\n  inflation: 1.2\n  inflation: 1.3\n")
    with pytest.raises(ConfigError, match=r"nested\.yaml: duplicate key 'inflation' at line 3"):
        load_config(nested)


def test_error_names_the_overlay_that_set_the_key(tmp_path, project_root):
    first = tmp_path / "first.yaml"
    first.write_text("da:\n  inflation: 1.2\n")
    second = tmp_path / "second.yaml"
    second.write_text("da:\n  inflation: 0.5\ngrid:\n  lat_min: 30.0\n")
    with pytest.raises(ConfigError) as info:
        load_config(project_root / "config/config.default.yaml", first, second)
    text = str(info.value)
    assert re.search(r"da\.inflation: .*\[set in \S*second\.yaml\]", text), text
    assert re.search(r"grid: lat_min .*\[set in \S*second\.yaml\]", text), text
    third = tmp_path / "third.yaml"
    third.write_text("autoencoder:\n  latent_dim: 10\n")
    with pytest.raises(ConfigError, match=r"latent_dim \(10\).*\[set in \S*third\.yaml\]"):
        load_config(first, third)
