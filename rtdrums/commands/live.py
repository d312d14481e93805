"""Run the engine on an audio interface: stems to output channels, MIDI triggers, recording.

Examples:
  rtdrums live --input-device Scarlett --input-channels 1 --record ~/takes
  rtdrums live --host-api jack --route kick=1,snare=2,hihat=3,residual=4,dry=5
  rtdrums live --config stage.toml --block 64
Settings come from defaults, then --config FILE (TOML), then flags. Ctrl-C (or SIGTERM)
stops cleanly and prints a summary; recordings are closed and valid.
"""

from __future__ import annotations

import sys

help = "run live on an audio interface: stems out, MIDI triggers, recording"


def add_arguments(p) -> None:
    p.add_argument("--config", metavar="FILE", help="TOML settings file (flags override it)")
    p.add_argument("--preset", help="preset name or folder (default: the shipped 'default')")
    g = p.add_argument_group("audio")
    g.add_argument("--host-api", help="restrict devices to one host API, e.g. jack, alsa")
    g.add_argument("-i", "--input-device", help="index or part of the name (rtdrums devices)")
    g.add_argument("--input-channels", metavar="CH",
                   help="input channel, or a stereo pair mixed to mono: 1 or 1,2 (from 1)")
    g.add_argument("-o", "--output-device", help="index or part of the name")
    g.add_argument("--route", action="append", metavar="OUT=CH",
                   help="route kick/snare/hihat/residual/input (dry)/sampler/mix to output "
                        "channels with an optional gain in dB, e.g. kick=1,snare=2,dry=5+6,mix=7@-6; "
                        "'none' for no outputs (default: the stems on the first outputs)")
    g.add_argument("--rate", type=int, help="sample rate in Hz (default 48000)")
    g.add_argument("--block", type=int, help="block size in samples (default 128; 64 works)")
    g.add_argument("--client-name", help="JACK client name (default rtdrums)")
    g.add_argument("--backend", choices=["portaudio", "jack", "auto"],
                   help="default auto: jack with --host-api jack (one native JACK client, MIDI in "
                        "the audio cycle: docs/jack-client.md), else portaudio")
    m = p.add_argument_group("MIDI")
    m.add_argument("--midi-port", help="send to this existing port (default: a virtual port)")
    m.add_argument("--midi-backend", choices=["auto", "jack", "alsa"],
                   help="default auto: JACK when the audio runs on JACK, else ALSA")
    m.add_argument("--no-midi", action="store_true", help="send no MIDI")
    m.add_argument("--midi-path", choices=["native", "callback", "thread"], help=__import__("argparse").SUPPRESS)
    r = p.add_argument_group("recording")
    r.add_argument("--record", metavar="DIR", help="record into a new session folder inside DIR")
    r.add_argument("--no-record", action="store_true", help="do not record (overrides the file)")
    r.add_argument("--record-format", choices=["wav", "flac"], help="default wav (32-bit float)")
    p.add_argument("--duration", type=float, help="stop after this many seconds")
    p.add_argument("--stats-json", metavar="FILE", help="write the final statistics as JSON")
    p.add_argument("--view", choices=["auto", "full", "plain", "off"],
                   help="terminal view (default auto: full on a terminal, else a line every 5 s)")
    from ..dsp.adapt import add_switches
    add_switches(p)


def run(args) -> int:
    from ..host.config import resolve
    from ..host.notice import notice_if_slow
    from ..host.session import LiveSession
    from ..host.view import LiveView

    from ..dsp.adapt import check_save_target
    from ..preset import load_preset

    cfg = resolve(args)
    cfg.adapt = args.adapt
    if args.save_adapted is not None:
        check_save_target(args.save_adapted, args.adapt if args.adapt is not None
                          else load_preset(cfg.preset).adapt.enabled)
    session = LiveSession(cfg)
    with notice_if_slow("preparing the engine (the first run after an install or update "
                        "compiles it for this machine: about a minute)"):
        session.prepare()
    view = LiveView(session, sys.stdout, cfg.view)
    stats = session.run(view)
    print(view.summary(stats), flush=True)
    if args.stats_json:
        import json
        with open(args.stats_json, "w") as f:
            json.dump(stats, f, indent=2)
    if args.save_adapted is not None and session.engine is not None:
        from ..preset import save_preset
        folder = save_preset(session.engine.adapted_preset("live"), args.save_adapted)
        print(f"adapted templates ({session.engine.adapted_updates} column updates) saved to {folder}")
    rec = stats["recording"]
    if stats["callback_errors"]:
        return 1
    return 0 if rec is None or rec["error"] is None else 3
