"""Strict JSON has no NaN or infinity; Python's json reads and writes them unless told not to."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
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


def write_json(path: Path, value: Any) -> None:
    """Write `value` as strict JSON: a NaN or infinite number (a metric that could not be
    computed, say) is written as null, not as the NaN only some parsers accept."""
    strict = replace_nonfinite(value, lambda _: None)
    text = json.dumps(strict, ensure_ascii=False, indent=1, allow_nan=False)
    path.write_text(text, encoding="utf-8")
