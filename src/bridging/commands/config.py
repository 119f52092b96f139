"""``bridging config``: validate config files, print the resolved config, regenerate the defaults and schema.

The defaults come from the typed settings (:mod:`bridging.settings`), not from a file: the command runs from any
directory. ``--write`` regenerates the checkout's generated copies (config/config.default.yaml and the JSON schema).
"""

from __future__ import annotations

from pathlib import Path

import yaml

from ..errors import ConfigError
from ._options import add_config_option, load_settings

DEFAULT_YAML = Path("config/config.default.yaml")
SCHEMA_JSON = Path("workflow/schemas/config.schema.json")


def register(sub) -> None:
    p = sub.add_parser("config", help="validate / print / regenerate the configuration")
    p.add_argument(
        "files", nargs="*", metavar="FILE", help="config files merged in order over the defaults (as --config)"
    )
    add_config_option(p)
    p.add_argument("--write", action="store_true", help="regenerate config/config.default.yaml and the JSON schema")
    p.add_argument("--root", default=".", help="project checkout for --write (default: the current directory)")
    p.set_defaults(func=run)


def run(args) -> int:
    # pydantic loads only when the command runs: `bridging --help` imports every command module
    from ..settings import render_default_yaml, render_schema

    if args.write:
        root = Path(args.root)
        if not (root / "pyproject.toml").is_file() or not (root / DEFAULT_YAML).parent.is_dir():
            raise ConfigError(f"--write: {root.resolve()} is not the project's checkout (give --root)")
        (root / DEFAULT_YAML).write_text(render_default_yaml())
        (root / SCHEMA_JSON).parent.mkdir(parents=True, exist_ok=True)
        (root / SCHEMA_JSON).write_text(render_schema())
        print(f"wrote {root / DEFAULT_YAML} and {root / SCHEMA_JSON}")
        return 0
    args.config = [*args.files, *args.config]
    cfg = load_settings(args)
    print(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False, allow_unicode=True), end="")
    return 0
