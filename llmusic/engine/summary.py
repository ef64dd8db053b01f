"""What a generate run produced: valid rates per genre and style, requests, tokens, cost, time."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from rich.console import Console
from rich.table import Table

from llmusic.engine.runner import RunStats
from llmusic.run_dir import VALID_STATUSES, rates_by


def summarize(records: Sequence[dict], stats: RunStats, identity: dict, is_llm: bool) -> dict:
    attempts = [a for r in records for a in r["attempts"]]
    costs = [r["cost"] for r in records if r["cost"] is not None]
    status = Counter(r["status"] for r in records)
    n_valid = sum(status[s] for s in VALID_STATUSES)
    return {
        "backend": identity,
        "is_llm": is_llm,
        "songs": len(records),
        "valid": n_valid,
        "valid_rate": n_valid / len(records) if records else 0.0,
        "status": dict(status),
        # Reasons are "<key>: <detail>"; the stable keys are what is worth counting.
        "failure_reasons": dict(Counter(str(r["reason"]).split(":", 1)[0] for r in records
                                        if r["status"] not in VALID_STATUSES).most_common()),
        "attempts": len(attempts),
        "attempt_status": dict(Counter(a["status"] for a in attempts)),
        "requests": stats.requests,
        "transport_retries": stats.transport_retries,
        "cache_hits": stats.cache_hits,
        "fresh_replies": stats.fresh_replies,
        "tokens": {"prompt": sum(r["usage"]["prompt_tokens"] for r in records),
                   "completion": sum(r["usage"]["completion_tokens"] for r in records)},
        "cost_usd": sum(costs) if costs else None,  # every reply these songs used, cached ones included
        "cost_usd_this_run": stats.cost_usd_this_run,
        "elapsed_s": round(stats.elapsed_s, 3),
        "per_genre": rates_by(records, "genre"),
        "per_style": rates_by(records, "style"),
    }


def print_summary(summary: dict, console: Console | None = None) -> None:
    console = console or Console()
    for key, title in (("per_genre", "genre"), ("per_style", "style")):
        table = Table(title=f"valid rate per {title}")
        for column in (title, "songs", "valid", "rate"):
            table.add_column(column, justify="left" if column == title else "right")
        for name, row in summary[key].items():
            table.add_row(name, str(row["songs"]), str(row["valid"]), f"{row['valid_rate']:.1%}")
        console.print(table)
    cost = summary["cost_usd"]
    console.print(
        f"songs {summary['songs']}  valid {summary['valid']} ({summary['valid_rate']:.1%})  "
        f"attempts {summary['attempts']}  requests {summary['requests']} "
        f"(retries {summary['transport_retries']}, cache hits {summary['cache_hits']})  "
        f"tokens {summary['tokens']['prompt']}+{summary['tokens']['completion']}  "
        f"cost {'n/a' if cost is None else f'${cost:.4f}'} (this run ${summary['cost_usd_this_run']:.4f})  "
        f"elapsed {summary['elapsed_s']:.1f}s"
    )
