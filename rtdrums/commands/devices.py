"""List audio devices (host API, input/output channels, default rate) and MIDI output ports.

Audio devices come from PortAudio; a JACK server is listed only while it runs. MIDI ports are
listed for JACK and for ALSA; a backend that is not available says why.
"""

from __future__ import annotations

help = "list audio devices and MIDI ports"


def add_arguments(p) -> None:
    p.add_argument("--host-api", help="only devices of this host API (e.g. jack, alsa)")


def run(args) -> int:
    from ..host import audio, midi

    sd = audio.load_sounddevice("rtdrums-devices")
    api = audio.host_api_index(sd, args.host_api)
    devs = [d for d in audio.devices(sd) if api is None or d["hostapi"] == api]
    din, dout = sd.default.device
    print("Audio devices (use the index or part of the name with --input-device/--output-device):")
    if not devs:
        print("  none (is the interface connected? A JACK server is listed only while it runs)")
    w = max((len(d["name"]) for d in devs), default=10)
    for d in devs:
        mark = ("<" if d["index"] == din else " ") + (">" if d["index"] == dout else " ")
        print(f" {mark}{d['index']:3d}  {d['name']:<{w}}  {d['hostapi_name']:<28} "
              f"{d['max_input_channels']:3d} in {d['max_output_channels']:3d} out  "
              f"{d['default_samplerate']:.0f} Hz")
    print("  (< default input, > default output)")
    print("MIDI output ports (use --midi-port; without it rtdrums opens a virtual port):")
    for backend in midi.BACKENDS:
        ports, problem = midi.list_ports(backend)
        if problem:
            print(f"  {backend.upper()}: unavailable: {problem}")
        else:
            print(f"  {backend.upper()}: " + (", ".join(ports) if ports else "no ports"))
    return 0
