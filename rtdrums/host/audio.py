"""PortAudio through sounddevice: loading it, listing devices, checking a configuration.

Devices are named by index or by a case-insensitive part of "name, host API" (as
`rtdrums devices` prints them); channels are counted from 1, as on an interface's front panel.
Every problem the user can fix becomes one UserError line that lists what exists.
"""

from __future__ import annotations

import ctypes
import sys
from ctypes.util import find_library

from ..errors import UserError

COMMON_RATES = (44100, 48000, 88200, 96000)
BLOCK_SIZES = (32, 64, 128, 256, 512, 1024, 2048)
NO_PORTAUDIO = ("the PortAudio library was not found: install it "
                "(Debian/Ubuntu: apt-get install libportaudio2; macOS: brew install portaudio)")

_client_name_buf = None        # PortAudio keeps the pointer we pass: keep the buffer alive


def load_sounddevice(jack_client_name: str | None = "rtdrums"):
    """Import sounddevice (which initialises PortAudio) with the JACK client named as asked."""
    global _client_name_buf
    if "sounddevice" not in sys.modules:
        libname = find_library("portaudio")
        if not libname:
            raise UserError(NO_PORTAUDIO)
        if jack_client_name:
            try:
                lib = ctypes.CDLL(libname)
                _client_name_buf = ctypes.create_string_buffer(jack_client_name.encode())
                lib.PaJack_SetClientName(_client_name_buf)   # must precede Pa_Initialize
            except (OSError, AttributeError):
                pass                                         # a PortAudio built without JACK
    try:
        import sounddevice
    except OSError:
        raise UserError(NO_PORTAUDIO) from None
    return sounddevice


def devices(sd) -> list[dict]:
    """All devices as dicts: index, name, hostapi (name), max_input_channels, ... ."""
    apis = sd.query_hostapis()
    out = []
    for d in sd.query_devices():
        d = dict(d)
        d["hostapi_name"] = apis[d["hostapi"]]["name"]
        out.append(d)
    return out


def _label(d: dict) -> str:
    return f"[{d['index']}] {d['name']} ({d['hostapi_name']}, {d['max_input_channels']} in, " \
           f"{d['max_output_channels']} out)"


def host_api_index(sd, name: str | None) -> int | None:
    """Index of the host API whose name contains `name` (e.g. 'jack', 'alsa'); None for any."""
    if not name:
        return None
    apis = sd.query_hostapis()
    hits = [i for i, a in enumerate(apis) if name.lower() in a["name"].lower()]
    if not hits:
        names = ", ".join(a["name"] for a in apis) or "none"
        raise UserError(f"no host API matches {name!r}; available: {names}")
    return hits[0]


def find_device(sd, spec: str | int | None, kind: str, host_api: str | None = None) -> dict:
    """The device for `spec` (index, or part of "name, host API"; None = the default).

    kind is 'input' or 'output'. Raises UserError listing the candidate devices.
    """
    api = host_api_index(sd, host_api)
    devs = devices(sd)
    key = f"max_{kind}_channels"
    usable = [d for d in devs if d[key] > 0 and (api is None or d["hostapi"] == api)]
    listing = "; ".join(_label(d) for d in usable) or "none"
    if spec is None or spec == "":
        if api is not None:
            idx = sd.query_hostapis(api)[f"default_{kind}_device"]
        else:
            idx = sd.default.device[0 if kind == "input" else 1]
            if idx is None or idx < 0:
                idx = sd.query_hostapis(sd.default.hostapi)[f"default_{kind}_device"]
        hit = [d for d in usable if d["index"] == idx] or usable[:1]
        if not hit:
            raise UserError(f"no {kind} device found; {kind} devices: {listing} (is the "
                            f"interface connected and powered? For JACK, start jackd first; "
                            f"`rtdrums devices` lists what PortAudio sees)")
        return hit[0]
    s = str(spec).strip()
    if s.isdigit():
        hit = [d for d in devs if d["index"] == int(s)]
        if not hit or hit[0][key] == 0:
            raise UserError(f"no {kind} device with index {s}; {kind} devices: {listing}")
        return hit[0]
    low = s.lower()
    hit = [d for d in usable if d["name"].lower() == low]
    hit = hit or [d for d in usable if low in f"{d['name']}, {d['hostapi_name']}".lower()]
    if not hit:
        raise UserError(f"no {kind} device matches {s!r}; {kind} devices: {listing}")
    if len(hit) > 1 and len({d["hostapi"] for d in hit}) > 1 and api is None:
        raise UserError(f"{s!r} matches several {kind} devices: "
                        + "; ".join(_label(d) for d in hit)
                        + " (give the index, or --host-api)")
    return hit[0]


def check_channels(dev: dict, channels: list[int], kind: str) -> None:
    """Channels are 1-based; all must exist on the device."""
    n = dev[f"max_{kind}_channels"]
    bad = [c for c in channels if not 1 <= c <= n]
    if bad:
        raise UserError(f"{kind} channel {bad[0]} is out of range: {dev['name']} has "
                        f"{kind} channels 1..{n}")


def supported_rates(sd, in_dev: dict, in_ch: int, out_dev: dict, out_ch: int) -> list[int]:
    """The common sample rates this device pair accepts."""
    ok = []
    for r in COMMON_RATES:
        try:
            sd.check_input_settings(in_dev["index"], channels=in_ch, dtype="float32", samplerate=r)
            sd.check_output_settings(out_dev["index"], channels=out_ch, dtype="float32",
                                     samplerate=r)
            ok.append(r)
        except Exception:
            pass
    return ok


def check_block(block: int) -> None:
    """Raise UserError unless the engine's block size is one the host runs (either backend)."""
    if block not in BLOCK_SIZES:
        raise UserError(f"block size {block} is not supported; use one of "
                        + ", ".join(map(str, BLOCK_SIZES)))


def check_stream(sd, in_dev: dict, in_ch: int, out_dev: dict, out_ch: int, rate: int,
                 block: int) -> None:
    """Raise UserError if the rate or block size cannot work, listing what can."""
    check_block(block)
    if in_dev["hostapi"] != out_dev["hostapi"]:
        raise UserError(f"input and output must use the same host API: {in_dev['name']} is "
                        f"{in_dev['hostapi_name']}, {out_dev['name']} is {out_dev['hostapi_name']}")
    try:
        sd.check_input_settings(in_dev["index"], channels=in_ch, dtype="float32", samplerate=rate)
        sd.check_output_settings(out_dev["index"], channels=out_ch, dtype="float32",
                                 samplerate=rate)
    except Exception as e:
        rates = supported_rates(sd, in_dev, in_ch, out_dev, out_ch)
        raise UserError(f"sample rate {rate} Hz does not work with {in_dev['name']} / "
                        f"{out_dev['name']} ({str(e).strip()}); supported: "
                        f"{', '.join(map(str, rates)) or 'none of ' + ', '.join(map(str, COMMON_RATES))}"
                        ) from None
