"""Reading attribute values that came over the wire: only well-typed values count."""

from __future__ import annotations

import math
from typing import Any


def as_count(value: Any) -> int | None:
    """An integer count (``bool`` is not one), else ``None``."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def as_number(value: Any) -> float | None:
    """A finite number (``bool`` is not one) as a float, else ``None``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None
