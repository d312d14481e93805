"""The `rtdrums` command: one subcommand per module in rtdrums.commands."""

from __future__ import annotations

import argparse
import importlib
import sys

from . import __version__
from .errors import UserError

# name -> module in rtdrums.commands; each module has `help`, `add_arguments(parser)` and `run(args)`.
COMMANDS = ["demo", "separate", "train", "calibrate", "bench", "devices", "live", "eval"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rtdrums",
        description="Real-time drum decomposition: kick/snare/hi-hat stems and MIDI triggers "
        "from one microphone, live or from files.",
    )
    parser.add_argument("--version", action="version", version=f"rtdrums {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"rtdrums.commands.{name}")
        p = sub.add_parser(name, help=module.help, description=module.__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(p)
        p.set_defaults(run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    try:
        return args.run(args) or 0
    except UserError as e:
        print(f"rtdrums {args.command}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"rtdrums {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
