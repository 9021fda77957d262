"""Cost estimates from model and tokens, with the optional ``tcc-otel[cost]`` extra
(``genai-prices``). Without it, or for a model it does not know, there is no estimate."""

from __future__ import annotations

import functools
from typing import Any

from tcc_otel._log import logger

try:
    import genai_prices as _prices
except ImportError:  # the extra is not installed: estimates are simply absent
    _prices = None


def available() -> bool:
    """Whether estimates can be made (``genai-prices`` is installed)."""
    return _prices is not None


@functools.lru_cache(maxsize=1024)
def estimate(model: str, uncached: int, cached: int, completion: int) -> float | None:
    """USD for one LLM call of ``model``, or ``None`` when the model is unknown."""
    if _prices is None:
        return None
    usage: Any = _prices.Usage(
        input_tokens=uncached + cached, cache_read_tokens=cached, output_tokens=completion
    )
    try:
        return float(_prices.calc_price(usage, model).total_price)
    except LookupError:
        logger.debug("no price known for model %r; no cost estimate", model)
        return None
    except Exception:  # a pricing bug must never cost the span
        logger.debug("estimating the cost of %r failed", model, exc_info=True)
        return None
