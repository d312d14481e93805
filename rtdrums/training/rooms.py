"""Renders that sound like real recordings: rooms, microphones, processing and other sounds.

vary(render, seed) turns a dry close-mic Render (rtdrums.training.render) into one with the variation of
a real recording. Everything is drawn from `seed` (draw), so the same seed gives the same audio.
The stems still sum to the mix (float32, added in STEMS order) and every onset stays where it was.

Stages, in order:
 1. other sounds: synthesized bass notes and chords (harmonic partials, exponential decay) are
    added to the residual stem (toms and cymbals are already there from the groove);
 2. room: each stem is convolved with its own room impulse response (pyroomacoustics' image-source
    model in a shoebox room; one microphone; each drum at its own place in the kit, the kit somewhere
    in the room), blended with the dry stem: (1 - room_mix) * dry + room_mix * wet. Each stem's
    response starts at its own direct-path arrival, so a drum's onset is where its direct sound
    arrives: onsets stay exact. The wet stems share one gain that gives the wet mix the RMS of the
    dry mix. Responses are computed once per (seed, rate) and cached (room_irs);
 3. EQ on every stem: high-pass and low-pass (2nd-order Butterworth) and a tilt (low shelf at
    TILT_LOW_HZ by -tilt/2, high shelf at TILT_HIGH_HZ by +tilt/2);
 4. compression: one gain envelope, computed from the mix (peak detector with attack and release,
    threshold relative to the mix's peak, ratio), multiplies every stem;
 5. level: all stems scaled so that the mix peaks at LEVEL_REF_DB + level_db dBFS;
 6. background noise (coloured, 1/f^colour power) into the residual, noise_db below the mix RMS;
 7. soft clipping of the mix, ceiling * tanh(mix / ceiling); the distortion (clipped mix minus the
    sum of the stems) goes into the residual.

Parameter ranges (each drawn uniformly; see RANGES):

| parameter              | range          | meaning                                               |
|------------------------|----------------|-------------------------------------------------------|
| room_length_m          | 3 - 12         | shoebox length                                        |
| room_width_m           | 2.5 - 9        | width (at most the length)                            |
| room_height_m          | 2.4 - 5        | height                                                |
| rt60_s                 | 0.15 - 0.9     | reverberation time; wall absorption by Sabine's law   |
| mic_distance_m         | 0.5 - 4        | microphone distance from the kit centre (horizontal)  |
| mic_azimuth_deg        | 0 - 360        | microphone direction around the kit                   |
| mic_height_m           | 1 - 2.5        | microphone height (overhead to room mic)              |
| position_jitter_m      | 0 - 0.1        | each drum moved this far from its place in the kit    |
| room_mix               | 0 - 1          | 0: close mics only, 1: the room microphone only       |
| highpass_hz            | 20 - 150       | low cut                                               |
| lowpass_hz             | 6000 - 20000   | high cut (at most 0.45 x sample rate)                 |
| tilt_db                | -6 - +6        | high shelf minus low shelf gain                       |
| comp_threshold_db      | -30 - 0        | compressor threshold re the mix peak (0: none)        |
| comp_ratio             | 1 - 8          | compression ratio                                     |
| comp_attack_ms         | 0.5 - 20       | compressor attack                                     |
| comp_release_ms        | 30 - 300       | compressor release                                    |
| level_db               | -20 - +20      | mix peak re LEVEL_REF_DB (-15 dBFS) before clipping   |
| clip_ceiling           | 0.5 - 1        | soft-clip ceiling (full scale 1)                      |
| noise_db               | -60 - -25      | background noise RMS re the mix RMS                   |
| noise_colour           | 0 - 2          | 0 white, 1 pink, 2 brown                              |
| tonal_per_10s          | 0 - 20         | bass notes and chords per 10 s                        |
| tonal_db               | -30 - -6       | their peak re the dry mix peak                        |

Drums sit at KIT_POSITIONS (metres from the kit centre: x to the drummer's right, y away from the
drummer, z up): the kick low and forward, the hi-hat high at the left, toms and cymbals (the
residual) high at the right, so each stem gets its own response and the farthest drum from an
overhead is usually the kick.

Seeds: trigger tuning uses TRAIN_SEED + take index, the learned trigger MODEL_SEED + groove index
(fewer than 500 000 takes each), evaluation EVAL_SEED + groove index: the rooms and variations
evaluated on are never the ones trained on.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, fields
from functools import lru_cache

import numpy as np
from numba import njit

from .render import STEMS, Render

RANGES: dict[str, tuple[float, float]] = {
    "room_length_m": (3.0, 12.0),
    "room_width_m": (2.5, 9.0),
    "room_height_m": (2.4, 5.0),
    "rt60_s": (0.15, 0.9),
    "mic_distance_m": (0.5, 4.0),
    "mic_azimuth_deg": (0.0, 360.0),
    "mic_height_m": (1.0, 2.5),
    "position_jitter_m": (0.0, 0.1),
    "room_mix": (0.0, 1.0),
    "highpass_hz": (20.0, 150.0),
    "lowpass_hz": (6000.0, 20000.0),
    "tilt_db": (-6.0, 6.0),
    "comp_threshold_db": (-30.0, 0.0),
    "comp_ratio": (1.0, 8.0),
    "comp_attack_ms": (0.5, 20.0),
    "comp_release_ms": (30.0, 300.0),
    "level_db": (-20.0, 20.0),
    "clip_ceiling": (0.5, 1.0),
    "noise_db": (-60.0, -25.0),
    "noise_colour": (0.0, 2.0),
    "tonal_per_10s": (0.0, 20.0),
    "tonal_db": (-30.0, -6.0),
}
LEVEL_REF_DB = -15.0
TILT_LOW_HZ, TILT_HIGH_HZ = 250.0, 4000.0
KIT_POSITIONS = {"kick": (0.0, 0.45, 0.3), "snare": (-0.25, 0.15, 0.65),
                 "hihat": (-0.55, 0.3, 0.95), "residual": (0.35, 0.5, 1.1)}
KIT_CENTRE = (0.0, 0.3, 0.0)
WALL_MARGIN_M = 0.3          # sources and microphone keep this far from every wall
MAX_ORDER = 20               # image-source reflection order cap (long, large rooms)
SOUND_SPEED = 343.0
TRAIN_SEED = 0               # + take index: trigger tuning takes
MODEL_SEED = 500_000         # + groove index: learned-trigger takes
EVAL_SEED = 1_000_000        # + groove index: `rtdrums eval --rooms`
DEFAULT_ROOMS = 0.0          # `rtdrums train --rooms`: dry until the learned trigger is measured with
                             # rooms (docs/rooms.md: 0.5 cost dry F on two kits)


@dataclass(frozen=True)
class Variation:
    """One drawn recording condition (every field within RANGES, kit_x_m/kit_y_m place the kit)."""
    room_length_m: float
    room_width_m: float
    room_height_m: float
    rt60_s: float
    mic_distance_m: float
    mic_azimuth_deg: float
    mic_height_m: float
    position_jitter_m: float
    room_mix: float
    highpass_hz: float
    lowpass_hz: float
    tilt_db: float
    comp_threshold_db: float
    comp_ratio: float
    comp_attack_ms: float
    comp_release_ms: float
    level_db: float
    clip_ceiling: float
    noise_db: float
    noise_colour: float
    tonal_per_10s: float
    tonal_db: float
    kit_x_m: float
    kit_y_m: float


def draw(seed: int) -> Variation:
    """The variation of a seed: every parameter uniform within RANGES."""
    rng = np.random.default_rng([int(seed), 17])
    v = {k: float(rng.uniform(lo, hi)) for k, (lo, hi) in RANGES.items()}
    v["room_width_m"] = min(v["room_width_m"], v["room_length_m"])
    margin = 1.0                                  # the kit stands at least 1 m from the walls
    v["kit_x_m"] = float(rng.uniform(margin, v["room_length_m"] - margin))
    v["kit_y_m"] = float(rng.uniform(margin, v["room_width_m"] - margin))
    return Variation(**v)


def _geometry(v: Variation, seed: int) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
    """Room size, each stem's source position and the microphone position."""
    rng = np.random.default_rng([int(seed), 18])
    room = np.array([v.room_length_m, v.room_width_m, v.room_height_m])
    lo, hi = np.full(3, WALL_MARGIN_M), room - WALL_MARGIN_M
    kit = np.array([v.kit_x_m, v.kit_y_m, 0.0])
    sources = {}
    for stem in STEMS:
        jitter = rng.normal(size=3)
        jitter *= v.position_jitter_m / max(np.linalg.norm(jitter), 1e-9)
        sources[stem] = np.clip(kit + np.array(KIT_POSITIONS[stem]) + jitter, lo, hi)
    a = np.deg2rad(v.mic_azimuth_deg)
    centre = kit + np.array(KIT_CENTRE)
    mic = centre + np.array([v.mic_distance_m * np.cos(a), v.mic_distance_m * np.sin(a), 0.0])
    mic[2] = v.mic_height_m
    return room, sources, np.clip(mic, lo, hi)


def _pyroomacoustics():
    """pyroomacoustics, imported without letting it import sounddevice (it tries, for playback):
    that would initialise PortAudio, and its JACK client, in every process that renders a room,
    and PortAudio then aborts the interpreter at exit if that JACK server has gone."""
    if "sounddevice" in sys.modules:
        import pyroomacoustics
        return pyroomacoustics
    sys.modules["sounddevice"] = None               # `import sounddevice` raises ImportError
    try:
        import pyroomacoustics
    finally:
        if sys.modules.get("sounddevice", 0) is None:
            del sys.modules["sounddevice"]
    return pyroomacoustics


@lru_cache(maxsize=32)
def room_irs(seed: int, sample_rate: int) -> dict[str, np.ndarray]:
    """Each stem's room impulse response (float64), starting at its direct-path arrival, scaled so
    that the nearest source's direct path has gain 1. Cached per (seed, rate)."""
    pra = _pyroomacoustics()

    v = draw(seed)
    room_dim, sources, mic = _geometry(v, seed)
    try:
        absorption, order = pra.inverse_sabine(v.rt60_s, room_dim, c=SOUND_SPEED)
    except ValueError:                            # rt60 too long for the room: most reflective walls
        absorption, order = 0.02, MAX_ORDER
    room = pra.ShoeBox(room_dim, fs=int(sample_rate), materials=pra.Material(float(absorption)),
                       max_order=int(min(order, MAX_ORDER)), air_absorption=False)
    for stem in STEMS:
        room.add_source(sources[stem])
    room.add_microphone(mic)
    room.compute_rir()
    half = pra.constants.get("frac_delay_length") // 2
    out, direct = {}, {}
    for k, stem in enumerate(STEMS):
        ir = np.asarray(room.rir[0][k], np.float64)
        dist = np.linalg.norm(sources[stem] - mic)
        at = int(round(dist / SOUND_SPEED * sample_rate)) + half
        at = at - 2 + int(np.argmax(np.abs(ir[at - 2:at + 3])))
        out[stem], direct[stem] = ir[at:], abs(ir[at])
    top = max(direct.values())
    return {s: ir / top for s, ir in out.items()}


def vary(render: Render, seed: int) -> Render:
    """The render as a recording in the room and chain of `seed` (see the module docstring)."""
    from scipy.signal import fftconvolve, sosfilt

    v, rate = draw(seed), render.sample_rate
    rng = np.random.default_rng([int(seed), 19])
    irs = room_irs(int(seed), rate)
    n = len(render.mix) + max(len(ir) for ir in irs.values()) // 2
    dry = {s: np.zeros(n) for s in STEMS}
    for s in STEMS:
        dry[s][:len(render.mix)] = render.stems[s]
    dry_peak = float(np.max(np.abs(render.mix))) or 1.0
    dry["residual"] += _tonal(n, rate, v, dry_peak, rng)
    if v.room_mix > 0:
        wet = {s: fftconvolve(dry[s], irs[s])[:n] for s in STEMS}
        g = _rms(sum(dry.values())) / max(_rms(sum(wet.values())), 1e-12)
        stems = {s: (1 - v.room_mix) * dry[s] + v.room_mix * g * wet[s] for s in STEMS}
    else:
        stems = dry
    sos = _eq(v, rate)
    stems = {s: sosfilt(sos, x) for s, x in stems.items()}
    mix = sum(stems.values())
    gain = compressor_gain(mix, rate, v.comp_threshold_db, v.comp_ratio, v.comp_attack_ms,
                           v.comp_release_ms)
    mix = mix * gain
    target = 10 ** ((LEVEL_REF_DB + v.level_db) / 20)
    scale = gain * (target / max(float(np.max(np.abs(mix))), 1e-12))
    stems = {s: x * scale for s, x in stems.items()}
    mix = sum(stems.values())
    stems["residual"] += _noise(n, v.noise_colour, rng) * (_rms(mix) * 10 ** (v.noise_db / 20))
    mix = sum(stems.values())
    c = v.clip_ceiling
    stems["residual"] += c * np.tanh(mix / c) - mix
    out = {s: stems[s].astype(np.float32) for s in STEMS}
    mixed = out["kick"] + out["snare"] + out["hihat"] + out["residual"]
    return Render(rate, mixed, out, list(render.onsets))


def varied(index: int, fraction: float) -> bool:
    """Whether take `index` of a series gets room variation: a share `fraction` of the takes,
    spread evenly (fraction 0.5: every other take, starting with the second)."""
    return int(np.floor((index + 1) * fraction + 1e-9)) > int(np.floor(index * fraction + 1e-9))


def maybe_vary(render: Render, index: int, fraction: float, seed_base: int = TRAIN_SEED) -> Render:
    """The render varied with seed seed_base + index when take `index` is one of the varied
    share `fraction` (see varied), else as it is."""
    return vary(render, seed_base + index) if fraction > 0 and varied(index, fraction) else render


def check_fraction(fraction: float, option: str = "--rooms") -> float:
    """A share of varied takes, 0..1, or a one-line UserError."""
    from ..errors import UserError

    if not 0.0 <= fraction <= 1.0:
        raise UserError(f"{option} must be a share between 0 (dry) and 1 (every take varied), "
                        f"got {fraction}")
    return float(fraction)


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x)))) if len(x) else 0.0


def _eq(v: Variation, rate: int) -> np.ndarray:
    """Second-order sections: high-pass, low-pass, low and high shelves of the tilt."""
    from scipy.signal import butter

    hp = butter(2, v.highpass_hz, "highpass", fs=rate, output="sos")
    sections = [hp]
    if v.lowpass_hz < 0.45 * rate:
        sections.append(butter(2, v.lowpass_hz, "lowpass", fs=rate, output="sos"))
    sections.append(_shelf(TILT_LOW_HZ, -v.tilt_db / 2, rate, high=False))
    if TILT_HIGH_HZ < 0.45 * rate:
        sections.append(_shelf(TILT_HIGH_HZ, v.tilt_db / 2, rate, high=True))
    return np.concatenate(sections)


def _shelf(f0: float, gain_db: float, rate: int, high: bool) -> np.ndarray:
    """A shelving biquad (Audio EQ Cookbook, slope 1) as one second-order section."""
    A, w = 10 ** (gain_db / 40), 2 * np.pi * f0 / rate
    cw, alpha = np.cos(w), np.sin(w) / 2 * np.sqrt(2)
    sa = 2 * np.sqrt(A) * alpha
    s = 1 if high else -1
    b = [A * ((A + 1) + s * (A - 1) * cw + sa), -2 * s * A * ((A - 1) + s * (A + 1) * cw),
         A * ((A + 1) + s * (A - 1) * cw - sa)]
    a = [(A + 1) - s * (A - 1) * cw + sa, 2 * s * ((A - 1) - s * (A + 1) * cw),
         (A + 1) - s * (A - 1) * cw - sa]
    return np.array([[*(np.array(b) / a[0]), 1.0, a[1] / a[0], a[2] / a[0]]])


def compressor_gain(x: np.ndarray, rate: int, threshold_db: float, ratio: float,
                    attack_ms: float, release_ms: float) -> np.ndarray:
    """Gain (<= 1) per sample of a feed-forward compressor on x: a peak envelope (attack, release)
    above threshold_db (relative to x's peak) is reduced by `ratio`."""
    peak = float(np.max(np.abs(x))) if len(x) else 0.0
    if peak <= 0 or ratio <= 1:
        return np.ones(len(x))
    att = np.exp(-1.0 / (attack_ms / 1000 * rate))
    rel = np.exp(-1.0 / (release_ms / 1000 * rate))
    return _gain(np.abs(x) / peak, 10 ** (threshold_db / 20), 1 - 1 / ratio, att, rel)


@njit(cache=True)
def _gain(level, threshold, slope, att, rel):
    out = np.empty(level.shape[0])
    env = 0.0
    for i in range(level.shape[0]):
        c = att if level[i] > env else rel
        env = c * env + (1 - c) * level[i]
        out[i] = (threshold / env) ** slope if env > threshold else 1.0
    return out


def _noise(n: int, colour: float, rng: np.random.Generator) -> np.ndarray:
    """Unit-RMS noise with power ~ 1/f^colour."""
    from scipy.fft import irfft, next_fast_len, rfft

    m = next_fast_len(n, real=True)
    spec = rfft(rng.standard_normal(m))
    f = np.arange(len(spec), dtype=float)
    f[0] = 1.0
    x = irfft(spec / f ** (colour / 2), m)[:n]
    return x / max(_rms(x), 1e-12)


_TABLE = 4096


def _tonal(n: int, rate: int, v: Variation, dry_peak: float, rng: np.random.Generator) -> np.ndarray:
    """Bass notes and chords: harmonic partials (amplitude 1/k) with a soft attack and an
    exponential decay, at random times; each peaks at tonal_db re the dry mix peak."""
    out = np.zeros(n)
    count = int(rng.poisson(v.tonal_per_10s * n / rate / 10))
    for _ in range(count):
        start = int(rng.integers(0, n))
        dur = float(rng.uniform(0.2, 2.0))
        m = min(n - start, int(dur * rate))
        if m <= 0:
            continue
        t = np.arange(m) / rate
        root = int(rng.integers(48, 68))
        notes = [int(rng.integers(28, 52))] if rng.random() < 0.5 else \
            [root, root + (3 if rng.random() < 0.5 else 4), root + 7]
        tone = np.zeros(m)
        for note in notes:                        # one period of the partials, read as a wavetable
            f0 = 440.0 * 2 ** ((note - 69) / 12)
            ks = np.array([k for k in range(1, 9) if k * f0 < 0.45 * rate])
            cycle = (np.sin(np.outer(2 * np.pi * np.arange(_TABLE) / _TABLE, ks)
                            + rng.uniform(0, 2 * np.pi, len(ks))) / ks).sum(axis=1)
            tone += cycle[(np.arange(m) * (f0 * _TABLE / rate)).astype(np.int64) % _TABLE]
        env = np.minimum(1.0, t / float(rng.uniform(0.005, 0.03))) * np.exp(-t / (dur / 3))
        tone *= env
        top = float(np.max(np.abs(tone)))
        if top > 0:
            out[start:start + m] += tone * (dry_peak * 10 ** (v.tonal_db / 20) / top)
    return out


def describe(v: Variation) -> dict:
    """The variation as a plain dict (for provenance and reports)."""
    return {f.name: round(getattr(v, f.name), 4) for f in fields(v)}
