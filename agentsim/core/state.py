"""World state as checkpoints store it: JSON for the structure, numpy arrays kept aside (a .npz beside it)."""

from __future__ import annotations

from typing import Any

import numpy as np


def split_arrays(state: Any, prefix: str = "") -> tuple[Any, dict[str, np.ndarray]]:
    """Replace every numpy array in a nested dict/list by {"__array__": key}; return the arrays by key."""
    arrays: dict[str, np.ndarray] = {}

    def walk(x: Any, path: str) -> Any:
        if isinstance(x, np.ndarray):
            arrays[path] = x
            return {"__array__": path}
        if isinstance(x, dict):
            return {k: walk(v, f"{path}/{k}") for k, v in x.items()}
        if isinstance(x, list | tuple):
            return [walk(v, f"{path}/{i}") for i, v in enumerate(x)]
        return x

    return walk(state, prefix), arrays


def join_arrays(state: Any, arrays: dict[str, np.ndarray]) -> Any:
    if isinstance(state, dict):
        if set(state) == {"__array__"}:
            return arrays[state["__array__"]]
        return {k: join_arrays(v, arrays) for k, v in state.items()}
    if isinstance(state, list):
        return [join_arrays(v, arrays) for v in state]
    return state


def same_state(a: Any, b: Any) -> bool:
    ja, aa = split_arrays(a)
    jb, ab = split_arrays(b)
    return ja == jb and aa.keys() == ab.keys() and all(aa[k].dtype == ab[k].dtype and np.array_equal(aa[k], ab[k]) for k in aa)
