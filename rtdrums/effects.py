"""Effect chains per output, built with pedalboard: settings, streaming, cost per block.

The `[effects]` table of a settings file holds an ordered chain per output (docs/effects.md):

    [[effects.snare]]
    name = "NoiseGate"
    threshold_db = -30
    [[effects.snare]]
    name = "Compressor"
    ratio = 4
    [[effects.kick]]
    vst3 = "/usr/lib/vst3/Some.vst3"   # a VST3 plugin by path; other keys are its parameters

`parse_effects` checks names, parameters and values (one-line UserErrors); `EffectChains` builds
the chains for a sample rate and block size and runs them block by block with their state kept
(pedalboard's reset=False), which is what live does per callback and offline per block: the
same chains over the same blocks give the same samples. Only plugins whose output does not depend
on how the stream is cut into blocks are offered (tests/test_effects.py checks each).
"""

from __future__ import annotations

import inspect
import math
import time
from pathlib import Path

import numpy as np

from .errors import UserError
from .outputs import OUTPUTS

# the drums and the residual (the first PARTS outputs) sum to the mix, which is formed again after
# their chains
MIX, PARTS = OUTPUTS.index("mix"), 4
BUDGET_FRACTION = 0.5        # all chains together may take this share of a block's time (median)

# pedalboard's built-in plugins that give the same samples whole or in blocks of any size
BUILTIN = ("Bitcrush", "Chorus", "Clipping", "Compressor", "Delay", "Distortion", "Gain",
           "HighShelfFilter", "HighpassFilter", "Invert", "LadderFilter", "Limiter",
           "LowShelfFilter", "LowpassFilter", "NoiseGate", "PeakFilter", "Phaser", "Reverb")
# built-ins that buffer audio and return blocks of another length than they were given
NOT_STREAMING = {"BrickwallLimiter": "Limiter", "GSMFullRateCompressor": None,
                 "MP3Compressor": None, "PitchShift": None, "Resample": None}


def _class(name: str):
    import pedalboard
    return getattr(pedalboard, name)


def plugin_parameters(name: str) -> list[str]:
    """The settable parameters of a built-in plugin, e.g. NoiseGate -> attack_ms, ratio, ..."""
    return [k for k, v in inspect.getmembers(_class(name))
            if isinstance(v, property) and k not in ("is_effect", "is_instrument")]


def _where(output: str, i: int) -> str:
    return f"[[effects.{output}]] #{i + 1}"


def _builtin(name: str, params: dict, where: str):
    if name in NOT_STREAMING:
        alt = NOT_STREAMING[name]
        raise UserError(f"{where}: {name} buffers audio and returns blocks of another length, so "
                        f"it cannot run on a live output" + (f"; use {alt}" if alt else "")
                        + f" (usable: {', '.join(BUILTIN)})")
    if name not in BUILTIN:
        raise UserError(f"{where}: unknown effect {name!r}; use one of {', '.join(BUILTIN)}, "
                        f"or vst3 = \"/path/to/plugin.vst3\"")
    known = plugin_parameters(name)
    cls = _class(name)
    kwargs = {}
    for k, v in params.items():
        if k not in known:
            raise UserError(f"{where}: {name} has no parameter {k!r} (its parameters: "
                            f"{', '.join(known)})")
        if name == "LadderFilter" and k == "mode":
            modes = list(cls.Mode.__members__)
            if v not in modes:
                raise UserError(f"{where}: LadderFilter mode must be one of {', '.join(modes)}, "
                                f"got {v!r}")
            v = cls.Mode.__members__[v]
        else:
            v = _number(v, f"{where}: {name} {k}")
        kwargs[k] = v
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as e:
        raise UserError(f"{where}: bad value for {name}: {str(e).splitlines()[0]}") from None


def _number(v, what: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise UserError(f"{what}: expected a finite number, got {v!r}")
    return float(v)


def _vst3(path: str, params: dict, where: str):
    import pedalboard
    p = Path(str(path)).expanduser()
    if not p.exists():
        raise UserError(f"{where}: VST3 plugin not found: {p}; give the path of a .vst3 bundle")
    try:
        plugin = pedalboard.load_plugin(str(p))
    except Exception as e:           # pedalboard raises ImportError (and others) with a report
        why = " ".join(str(e).split())
        raise UserError(f"{where}: cannot load the VST3 plugin {p}: {why}") from None
    known = list(plugin.parameters)
    for k, v in params.items():
        if k not in known:
            raise UserError(f"{where}: the plugin {p.name} has no parameter {k!r} (its parameters: "
                            f"{', '.join(known)})")
        try:
            setattr(plugin, k, v)
        except (ValueError, TypeError) as e:
            raise UserError(f"{where}: bad value {k} = {v!r} for {p.name}: "
                            f"{str(e).splitlines()[0]}") from None
    return plugin


def make_plugin(spec: dict, where: str):
    """One plugin from its settings entry: {'name': ..., params} or {'vst3': path, params}."""
    params = {k: v for k, v in spec.items() if k not in ("name", "vst3")}
    if "vst3" in spec:
        return _vst3(spec["vst3"], params, where)
    if "name" not in spec:
        raise UserError(f"{where}: give the effect's name = \"...\" (one of {', '.join(BUILTIN)}) "
                        f"or vst3 = \"/path/to/plugin.vst3\"")
    return _builtin(str(spec["name"]), params, where)


def parse_effects(table, where: str = "[effects]") -> dict[str, list[dict]]:
    """Check an [effects] table: {output: [entry, ...]}; builds each plugin once to check values."""
    if not isinstance(table, dict):
        raise UserError(f"{where}: expected chains like [[effects.snare]] name = \"NoiseGate\"")
    out: dict[str, list[dict]] = {}
    for output, chain in table.items():
        if output not in OUTPUTS:
            raise UserError(f"{where}: unknown output {output!r} (outputs: {', '.join(OUTPUTS)})")
        if isinstance(chain, dict):
            chain = [chain]
        if not isinstance(chain, list) or not all(isinstance(e, dict) for e in chain):
            raise UserError(f"{where}: write the chain of {output} as [[effects.{output}]] tables")
        for i, spec in enumerate(chain):
            make_plugin(spec, _where(output, i))
        if chain:
            out[output] = [dict(e) for e in chain]
    return out


def load_effects(path: str | Path) -> dict[str, list[dict]]:
    """The [effects] table of a live settings file (the whole file is checked)."""
    from .host.config import load_toml
    effects = load_toml(path).get("effects")
    if not effects:
        raise UserError(f"{path} has no [effects] table; see docs/effects.md for an example")
    return effects


class EffectChains:
    """The chains of a settings' [effects] table at one sample rate and block size.

    `apply(outs, n)` runs each chain in place on its column of a block of outputs (columns as
    OUTPUTS, rtdrums.outputs.form_outputs), then forms the mix again from the drums and the residual
    after their chains, then runs the mix's chain. pedalboard releases the interpreter lock while
    it processes, but returns a new array per call (a small allocation per chain and block,
    measured in docs/effects.md).
    """

    def __init__(self, spec: dict[str, list[dict]], sample_rate: int, block: int):
        import pedalboard
        self.sample_rate, self.block = int(sample_rate), int(block)
        self.spec = spec
        self.boards: dict[str, object] = {}
        for output, chain in spec.items():
            plugins = []
            for i, e in enumerate(chain):
                where = _where(output, i)
                _check_frequencies(e, self.sample_rate, where)
                plugins.append(make_plugin(e, where))
            self.boards[output] = pedalboard.Pedalboard(plugins)
        order = sorted(self.boards, key=OUTPUTS.index)
        self.cols = [(OUTPUTS.index(o), self.boards[o]) for o in order if o != "mix"]
        self.mix_board = self.boards.get("mix")
        self.remix = any(c < PARTS for c, _ in self.cols)
        self.inbuf = np.zeros(self.block, np.float32)

    def __bool__(self) -> bool:
        return bool(self.boards)

    def names(self) -> dict[str, str]:
        """output -> 'NoiseGate > Compressor'."""
        return {o: " > ".join(e.get("name") or Path(str(e["vst3"])).stem for e in c)
                for o, c in self.spec.items()}

    def reset(self) -> None:
        for b in self.boards.values():
            b.reset()

    def apply(self, outs: np.ndarray, n: int) -> None:
        """The chains on outs[:n] (block x len(OUTPUTS)), in place."""
        for col, board in self.cols:
            self._one(col, board, outs[:n, col], outs)
        if self.remix:
            np.sum(outs[:n, :PARTS], axis=1, out=outs[:n, MIX])
        if self.mix_board is not None:
            self._one(MIX, self.mix_board, outs[:n, MIX], outs)

    def _one(self, col: int, board, src: np.ndarray, outs: np.ndarray) -> None:
        """One output's block through its chain, into column col of outs."""
        buf = self.inbuf[:len(src)]
        buf[:] = src                                      # a contiguous copy of the column
        outs[:len(src), col] = board.process(buf, self.sample_rate, reset=False)

    def time_chain(self, output: str, x: np.ndarray) -> np.ndarray:
        """Microseconds per block of `output`'s share of `apply` (copies included) over x, block
        by block; the chain keeps the state this leaves."""
        col = OUTPUTS.index(output)
        board = self.boards[output]
        x = np.ascontiguousarray(x, np.float32)
        scratch = np.zeros((self.block, len(OUTPUTS)), np.float32)
        times = np.empty(len(x) // self.block)
        for i in range(len(times)):
            chunk = x[i * self.block:(i + 1) * self.block]
            t0 = time.perf_counter_ns()
            self._one(col, board, chunk, scratch)
            times[i] = time.perf_counter_ns() - t0
        return times / 1e3

    def run(self, outputs: np.ndarray) -> np.ndarray:
        """Whole outputs (n x len(OUTPUTS), as live forms them) through the chains in blocks of
        `block`, as live runs them; in place, returned."""
        for s in range(0, len(outputs), self.block):
            e = min(len(outputs), s + self.block)
            self.apply(outputs[s:e], e - s)
        return outputs

    def costs(self, blocks: int = 300) -> dict[str, float]:
        """Median microseconds per block of each chain, on decaying noise bursts (drum-like),
        then every chain is reset: the stream starts from a clean state."""
        rng = np.random.default_rng(0)
        period = max(self.block * 8, 2048)
        t = np.arange(blocks * self.block)
        x = (0.3 * rng.standard_normal(len(t)) * np.exp(-(t % period) / (period / 6))).astype(np.float32)
        out = {o: float(np.median(self.time_chain(o, x)[blocks // 10:])) for o in self.boards}
        self.reset()
        return out

    def check_budget(self, costs: dict[str, float], fraction: float = BUDGET_FRACTION) -> None:
        """Refuse chains that together take more than `fraction` of the block's time."""
        budget = fraction * 1e6 * self.block / self.sample_rate
        total = sum(costs.values())
        if total > budget:
            each = ", ".join(f"{o} {c:.0f} us" for o, c in costs.items())
            raise UserError(f"the effect chains take {total:.0f} us per block of {self.block} "
                            f"({each}) but may take at most {budget:.0f} us ({fraction:.0%} of "
                            f"{1e3 * self.block / self.sample_rate:.2f} ms); use fewer or lighter "
                            f"effects, or a larger --block")


def _check_frequencies(spec: dict, sample_rate: int, where: str) -> None:
    nyq = sample_rate / 2
    for k, v in spec.items():
        if k.endswith("_hz") and isinstance(v, (int, float)) and not 0 < v < nyq \
                and k != "rate_hz":
            raise UserError(f"{where}: {k} = {v} must lie between 0 and {nyq:g} Hz (half the "
                            f"sample rate {sample_rate})")
