"""Strict JSON has no NaN or infinity; Python's json reads and writes them unless told not to."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any


def replace_nonfinite(value: Any, replacement: Callable[[float], Any]) -> Any:
    """`value` (dicts, lists and tuples of JSON values) with each NaN or infinite float replaced
    by `replacement(that float)`; tuples come back as lists, as JSON writes them."""
    if isinstance(value, float) and not math.isfinite(value):
        return replacement(value)
    if isinstance(value, dict):
        return {k: replace_nonfinite(v, replacement) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [replace_nonfinite(v, replacement) for v in value]
    return value
