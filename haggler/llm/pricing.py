"""List prices of hosted models, from litellm's price map, looked up once per model.

A backend that does not go through litellm for its calls (`haggler.llm.openai_backend`) still
prices them as litellm would: tokens times the model's price per token, cached prompt tokens at
the cache-read price where the map has one. Self-hosted and unlisted models cost nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

__all__ = ["Price", "list_price"]


@dataclass(frozen=True, slots=True)
class Price:
    """Dollars per token."""

    prompt: float
    completion: float
    cached_prompt: float | None = None

    def cost(self, prompt_tokens: int, completion_tokens: int, cached_tokens: int = 0) -> float:
        cached = min(cached_tokens, prompt_tokens) if self.cached_prompt is not None else 0
        return (
            (prompt_tokens - cached) * self.prompt
            + cached * (self.cached_prompt or 0.0)
            + completion_tokens * self.completion
        )


@cache
def list_price(model: str) -> Price | None:
    """The price of `model` (`provider/name`) in litellm's map; None if it has none.

    Imports litellm on first use (seconds, once per process): the price map is its data.
    """
    from haggler.llm.litellm_backend import _litellm

    provider, _, name = model.partition("/")
    prices = _litellm().model_cost
    entry = prices.get(model)
    if entry is None:
        # The map names most models without their provider, e.g. "gpt-4o" for openai/gpt-4o.
        bare = prices.get(name)
        if bare is not None and bare.get("litellm_provider") == provider:
            entry = bare
    if entry is None and name.startswith("ft:"):
        # A fine-tuned model (ft:BASE:org::id) is priced as litellm prices it: as ft:BASE.
        entry = prices.get("ft:" + name.split(":")[1])
    if not entry:
        return None
    prompt, completion = entry.get("input_cost_per_token"), entry.get("output_cost_per_token")
    if prompt is None and completion is None:
        return None
    return Price(
        prompt=float(prompt or 0.0),
        completion=float(completion or 0.0),
        cached_prompt=_float_or_none(entry.get("cache_read_input_token_cost")),
    )


def _float_or_none(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None
