"""One handle that carries the engine's tables, parameters and state into compiled code.

Every numpy array passed from Python to a Numba function is wrapped in a runtime record on the
way in (a small malloc and free per array, per call). The engine's tables and state are some
forty arrays; passing them one by one would cost forty such records per audio block. Bundled
once into a Numba StructRef, they cross the call boundary as a single reference count instead:
a block call then wraps only its own three arrays (input, stems, events). The bundle holds the
very same arrays as the Python named tuples, so resetting or reading them from Python works on
what the compiled code sees.
"""

from __future__ import annotations

from numba import njit, types
from numba.experimental import structref
from numba.extending import overload


@structref.register
class EngineBundleType(types.StructRef):
    pass


class EngineBundle(structref.StructRefProxy):
    """Python-side handle; only compiled code reads its fields (tables, params, state)."""


structref.define_boxing(EngineBundleType, EngineBundle)


def _new_bundle(tables, params, state):
    raise NotImplementedError("compiled code only")


@overload(_new_bundle)
def _new_bundle_typed(tables, params, state):
    bundle_type = EngineBundleType([("tables", tables), ("params", params), ("state", state)])

    def impl(tables, params, state):
        b = structref.new(bundle_type)
        b.tables = tables
        b.params = params
        b.state = state
        return b
    return impl


@njit(cache=True)
def bundle(tables, params, state):
    """An EngineBundle of three named tuples (of arrays and scalars), sharing their memory."""
    return _new_bundle(tables, params, state)
