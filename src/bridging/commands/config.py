"""``bridging config``: validate config files, print the resolved config, regenerate the defaults and schema."""

from __future__ import annotations

from pathlib import Path

import yaml

DEFAULT_YAML = Path("config/config.default.yaml")
SCHEMA_JSON = Path("workflow/schemas/config.schema.json")


def register(sub) -> None:
    p = sub.add_parser("config", help="validate / print / regenerate the configuration")
    p.add_argument("files", nargs="*", help="config files merged in order (default: config/config.default.yaml)")
    p.add_argument("--write", action="store_true", help="regenerate config/config.default.yaml and the JSON schema")
    p.add_argument("--root", default=".", help="project root for --write")
    p.set_defaults(func=run)


def run(args) -> int:
    # pydantic loads only when the command runs: `bridging --help` imports every command module
    from ..settings import load_config, render_default_yaml, render_schema

    if args.write:
        root = Path(args.root)
        (root / DEFAULT_YAML).write_text(render_default_yaml())
        (root / SCHEMA_JSON).parent.mkdir(parents=True, exist_ok=True)
        (root / SCHEMA_JSON).write_text(render_schema())
        print(f"wrote {root / DEFAULT_YAML} and {root / SCHEMA_JSON}")
        return 0
    files = args.files or [str(DEFAULT_YAML)]
    cfg = load_config(*files)
    print(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False, allow_unicode=True), end="")
    return 0
