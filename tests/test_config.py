"""The typed config: defaults in one place, strict validation naming the key, generated files in sync."""

from __future__ import annotations

import json

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
