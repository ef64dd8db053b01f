"""Token prices: what a run cost, per request and in total."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


class PriceTable:
    """USD per million input and output tokens, per model; Batch API requests cost `batch_discount`
    times as much. A model matches its longest listed prefix, so the dated snapshot the server names
    ("gpt-4o-2024-08-06") is priced as its family ("gpt-4o")."""

    def __init__(self, usd_per_1m: Mapping[str, Sequence[float]], batch_discount: float = 0.5) -> None:
        self.usd_per_1m = {str(m): (float(p[0]), float(p[1])) for m, p in dict(usd_per_1m).items()}
        self.batch_discount = float(batch_discount)

    def rates(self, model: str | None) -> tuple[float, float] | None:
        if not model:
            return None
        matches = [m for m in self.usd_per_1m if model == m or model.startswith(m + "-")]
        return self.usd_per_1m[max(matches, key=len)] if matches else None

    def cost(self, model: str | None, prompt_tokens: int, completion_tokens: int, batch: bool = False) -> float | None:
        """USD for one request, or None when the model has no listed price (a local server)."""
        rates = self.rates(model)
        if rates is None:
            return None
        usd = (prompt_tokens * rates[0] + completion_tokens * rates[1]) / 1e6
        return usd * self.batch_discount if batch else usd
