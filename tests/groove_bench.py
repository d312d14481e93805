"""Calibration by a groove against calibration by a soundcheck, on one kit (docs/calibration.md).

    PYTHONPATH=$PWD:tests python tests/groove_bench.py KIT_DIR [--threshold | --learned] [--only PATH] [--work DIR]

Writes the soundcheck takes of the JACK test (12 strokes of kick, snare and closed hi-hat, 8 of
open and pedal hi-hat, soft to loud) and a groove take (the shipped pattern at 100 bpm, every note
up to 8 ms off, seeded) rendered with the kit, trains `rtdrums calibrate --takes` and
`rtdrums calibrate --groove --takes` from them under /usr/bin/time -v (wall, peak RSS), and prints
the onset F (50 ms) of each preset on the four validation grooves rendered with the kit (30 s
each, pooled per drum) as a Markdown table. --threshold: the fast training of the JACK tests
(`--trigger threshold --tune-grooves` the two training grooves); --learned: `--trigger learned`
for both; neither: each path's default (soundcheck: learned, groove: threshold). --only soundcheck
or groove: one path.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from rtdrums.training.kits import load_kit
from rtdrums.training.render import shipped_grooves
from test_calibrate import CALIBRATE, ENV, TUNE, _f_scores, _write_takes
from test_calibrate_groove import groove_take

SOUNDCHECK = {"kick": 12, "snare": 12, "hihat": 12, "hihat_open": 8, "hihat_pedal": 8}


def timed(args: list[str]) -> tuple[float, float]:
    """(wall s, peak RSS GB) of one command; its failure stops the bench."""
    r = subprocess.run(["/usr/bin/time", "-v", *CALIBRATE, *map(str, args)], capture_output=True, text=True,
                       env=ENV)
    if r.returncode != 0:
        sys.exit(r.stderr[-2000:])
    wall = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", r.stderr)
    h, m, s = (float(g) if g else 0.0 for g in wall.groups())
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", r.stderr)[1])
    return 3600 * h + 60 * m + s, rss / 1024 ** 2


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("kit", type=Path)
    ap.add_argument("--threshold", action="store_true")
    ap.add_argument("--learned", action="store_true")
    ap.add_argument("--only", choices=("soundcheck", "groove"))
    ap.add_argument("--pattern", type=Path, help="the groove take's pattern (default: the shipped one)")
    ap.add_argument("--bpm", type=float, help="its tempo (default: its own)")
    ap.add_argument("--work", type=Path)
    a = ap.parse_args()
    work = a.work or Path(tempfile.mkdtemp(prefix="groove-bench-"))
    kit = load_kit(a.kit)
    training = ["--trigger", "threshold", "--tune-grooves", *TUNE] if a.threshold else \
        (["--trigger", "learned"] if a.learned else [])
    how = "threshold, 2 tuning grooves" if a.threshold else ("learned" if a.learned else "default")
    sc, gr = work / "soundcheck", work / "groove"
    if a.only != "groove":
        _write_takes(kit, sc, SOUNDCHECK)
    if a.only != "soundcheck":
        groove_take(kit, gr / "groove", bpm=a.bpm, pattern=a.pattern)
    rows = []
    for label, takes, extra in (("soundcheck (`calibrate --takes`)", sc, []),
                                ("groove (`calibrate --groove --takes`)", gr, ["--groove"])):
        if a.only and a.only != takes.name:
            continue
        out = work / f"preset-{takes.name}"
        wall, rss = timed([*extra, "--takes", takes, "--out", out, *training])
        f = _f_scores(out, kit, shipped_grooves("validation"), 30.0)
        rows.append(f"| {kit.name} | {label} | {how} | "
                    f"{f['kick']:.3f} | {f['snare']:.3f} | {f['hihat']:.3f} | {wall:.0f} s | {rss:.2f} GB |")
        print(rows[-1], flush=True)
    print("\n| kit | path | training | F kick | F snare | F hi-hat | training wall | peak RSS |")
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
