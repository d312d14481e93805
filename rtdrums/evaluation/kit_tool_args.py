"""The command line the per-kit diagnosis tools (drum_errors, latency_tail) share."""
from __future__ import annotations

import argparse
from pathlib import Path


def kit_tool_parser(module: str, doc: str | None,
                    grooves: str = "default: the validation split") -> argparse.ArgumentParser:
    """`python -m module` with --kit, --preset, --grooves, --seconds and --rooms."""
    p = argparse.ArgumentParser(prog=f"python -m {module}", description=doc,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kit", type=Path, nargs="+", required=True, help="Hydrogen kit folders")
    p.add_argument("--preset", default="default")
    p.add_argument("--grooves", type=Path, nargs="+", help=f"MIDI files or folders ({grooves})")
    p.add_argument("--seconds", type=float, default=15.0)
    p.add_argument("--rooms", action="store_true", help="render the grooves in eval's simulated rooms")
    return p


def check_kits(kits: list[Path]) -> None:
    """A UserError naming the first folder that is not a Hydrogen kit."""
    from ..errors import UserError

    for k in kits:
        if not (k / "drumkit.xml").exists():
            raise UserError(f"{k}: no drumkit.xml there; pass a Hydrogen kit folder")
