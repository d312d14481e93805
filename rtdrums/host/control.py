"""A do-nothing stand-in for `rtdrums live` in the JACK graph: the bench's `control` path.

The same clients as the PortAudio host, doing nothing: a PortAudio duplex stream (client NAME,
ports in_N/out_N, as the host opens it) whose compiled callback only writes zeros, and an idle
python-rtmidi JACK MIDI port NAME-midi:out. The xruns a take with it makes over the player alone
are what the client layout costs, whatever the host computes (docs/jack-client.md).

    python -m rtdrums.host.control --client-name rtbench --block 128 [--inputs 1] [--outputs 4]
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

import numpy as np
from numba import carray, cfunc, types

from . import audio, midi

READY = "rtdrums live: running (control: do-nothing clients)"


@cfunc(types.int32(types.voidptr, types.voidptr, types.uint64, types.voidptr, types.uint64,
                   types.voidptr), cache=True, nogil=True)
def _zeros(inp, outp, frames, time_info, status, user):
    """PaStreamCallback: silence on every output channel (userData -> int64 channel count)."""
    n_out = carray(user, (1,), dtype=np.int64)[0]
    out = carray(outp, (frames * n_out,), dtype=np.float32)
    out[:] = 0.0
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m rtdrums.host.control", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--client-name", default="rtdrums")
    p.add_argument("--rate", type=int, default=48000)
    p.add_argument("--block", type=int, default=128)
    p.add_argument("--inputs", type=int, default=1)
    p.add_argument("--outputs", type=int, default=4)
    a = p.parse_args(argv)
    sd = audio.load_sounddevice(a.client_name)
    dev_in = audio.find_device(sd, None, "input", "jack")
    dev_out = audio.find_device(sd, None, "output", "jack")
    out = midi.MidiOutput("jack", None, f"{a.client_name}-midi")
    n_out = np.array([a.outputs], np.int64)
    stop = threading.Event()
    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, lambda *_: stop.set())
    stream = sd._StreamBase("duplex", device=(dev_in["index"], dev_out["index"]),
                            channels=(a.inputs, a.outputs), samplerate=a.rate, blocksize=a.block,
                            dtype="float32", latency="low",
                            callback=sd._ffi.cast("PaStreamCallback *", _zeros.address),
                            userdata=sd._ffi.cast("void *", n_out.ctypes.data))
    try:
        with stream:
            print(READY, flush=True)
            while not stop.wait(0.1):
                pass
    finally:
        out.close()
    print("rtdrums live: stopped (control)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
