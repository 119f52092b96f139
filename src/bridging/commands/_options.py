"""Options and defaults shared by the stage commands: ``--config``, ``--model``, ``--device``, the validated config
and the paths of the run folder (:class:`~bridging.layout.RunLayout`, the layout the Snakemake rules use).

Not a command: the leading underscore keeps it out of the subcommands the CLI registers (every other module of
:mod:`bridging.commands`).
"""

from __future__ import annotations

from pathlib import Path

from ..atomic import set_zarr_format
from ..errors import ConfigError
from ..layout import RunLayout
from ..runtime import limit_threads

DEVICES = ("auto", "cpu", "cuda")


def add_config_option(p) -> None:
    """``--config FILE [FILE ...]``, repeatable: YAML files merged in order over the defaults. The defaults are the
    typed settings' own (:mod:`bridging.settings`, of which config/config.default.yaml is a generated copy), so a
    command needs no file of the checkout and runs from any directory."""
    p.add_argument(
        "--config",
        nargs="+",
        action="extend",
        default=[],
        metavar="FILE",
        help="config files merged in order over the defaults (repeatable)",
    )


def add_model_option(p) -> None:
    p.add_argument("--model", required=True, help="operational model name (data.operational[].name)")


def add_device_option(p) -> None:
    p.add_argument("--device", choices=DEVICES, help="default: compute.device")


def load_settings(args):
    """The validated config of ``--config`` (the defaults, from the code, when none is given); its
    ``outputs.zarr_format`` becomes the format of the stores the command writes."""
    # The settings package imports pydantic; `bridging --help` imports every command module, so it loads here.
    from ..settings import Config, load_config

    cfg = load_config(*args.config) if args.config else Config()
    set_zarr_format(cfg.outputs.zarr_format)
    return cfg


def load_model_settings(args):
    """The config of a command for one operational model (``--model``), with ``--device`` applied to
    ``compute.device`` and torch's threads limited to ``compute.torch_threads``."""
    cfg = load_settings(args)
    names = [m.name for m in cfg.data.operational]
    if args.model not in names:
        raise ConfigError(f"--model {args.model}: not one of data.operational {names}")
    if getattr(args, "device", None):
        cfg.compute.device = args.device
    limit_threads(cfg.compute.torch_threads)
    return cfg


def run_paths(args, defaults: dict[str, str]) -> dict[str, Path]:
    """``defaults`` (key → path of the run layout), each replaced by the option of the same name when it is given."""
    return {key: Path(getattr(args, key, None) or default) for key, default in defaults.items()}


def layout(cfg) -> RunLayout:
    return RunLayout.of(cfg)
