"""The ``bridging`` command line: one subcommand per workflow stage, over the same functions the rule scripts call.

Each module in :mod:`bridging.commands` defines ``register(subparsers)``; importing a command module must stay cheap
(heavy imports go inside the handler), so ``bridging --help`` is instant.

Errors: a problem with the input or the settings prints one line naming the file or key and exits 2; an error the
program does not anticipate prints one line and the path of a log file holding the traceback, and exits 1; Ctrl-C
exits 130. ``-v`` prints the traceback instead.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import logging
import os
import pkgutil
import sys
import tempfile
import traceback

from pydantic import ValidationError

from . import __version__, commands
from .errors import BridgingError
from .runtime import configure_logging


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bridging", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="STAGE")
    sub.required = True
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        module.register(sub)
    return parser


def _write_crash_log(command: str, argv) -> str:
    """The traceback of the exception being handled, with the command line, in a file of the temporary folder."""
    stamp = datetime.datetime.now().strftime("%Y%m%dT%H%M%S")
    fd, path = tempfile.mkstemp(prefix=f"bridging-{command}-{stamp}-", suffix=".log")
    with os.fdopen(fd, "w") as fh:
        fh.write(f"bridging {__version__}: {' '.join(['bridging', *map(str, argv)])}\n\n{traceback.format_exc()}")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    configure_logging(level=logging.DEBUG if args.verbose else logging.INFO)
    try:
        result = args.func(args)
    except BridgingError as err:
        if args.verbose:
            traceback.print_exc()
        print(f"bridging {args.command}: error: {err}", file=sys.stderr)
        return 2
    except ValidationError as err:  # settings built from command-line values
        # the settings package (loaded by the command that raised this) stays out of the start-up of every command
        from .settings import format_validation_error

        if args.verbose:
            traceback.print_exc()
        print(
            f"bridging {args.command}: error: {format_validation_error(err, 'command-line options')}", file=sys.stderr
        )
        return 2
    except KeyboardInterrupt:
        if args.verbose:
            traceback.print_exc()
        print(f"bridging {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        if args.verbose:
            traceback.print_exc()
            print(f"bridging {args.command}: unexpected error: {type(err).__name__}: {err}", file=sys.stderr)
            return 1
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        try:
            where = f"traceback in {_write_crash_log(args.command, argv)}"
        except OSError:
            where = "no log file could be written"
        print(
            f"bridging {args.command}: unexpected error: {type(err).__name__}: {first} ({where}; -v prints it)",
            file=sys.stderr,
        )
        return 1
    return int(result or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
