"""What a generate run produced: the setting that made it (prompt, parse policy, renderer: the
official code's or not), valid rates per genre and style, requests, tokens, cost, time."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from rich.console import Console
from rich.table import Table

from llmusic.constraints import ConstraintSet
from llmusic.engine.runner import RunStats
from llmusic.midi.render import Renderer
from llmusic.parse import OFFICIAL_POLICY
from llmusic.prompts import OFFICIAL_TEMPLATE_SHA256, PromptTemplate
from llmusic.run_dir import VALID_STATUSES, describe_setting, rates_by


def generation_setting(prompt: PromptTemplate, constraints: ConstraintSet, policy: str, renderer: Renderer) -> dict:
    """Which prompt (its template's hash), constraint set, parse policy and renderer made a run, and
    which of them are the paper's official code's (`official_mode`: all three)."""
    sha = prompt.template_sha256(constraints)
    official = {"prompt": sha == OFFICIAL_TEMPLATE_SHA256, "parse": policy == OFFICIAL_POLICY,
                "render": renderer.official}
    return {"prompt": prompt.name, "prompt_sha256": sha, "constraints": constraints.name, "parse_policy": policy,
            "renderer": renderer.name, "official": official, "official_mode": all(official.values())}


def summarize(records: Sequence[dict], stats: RunStats, identity: dict, is_llm: bool, setting: dict,
              damaged_cache: dict[str, str] | None = None) -> dict:
    attempts = [a for r in records for a in r["attempts"]]
    costs = [r["cost"] for r in records if r["cost"] is not None]
    status = Counter(r["status"] for r in records)
    n_valid = sum(status[s] for s in VALID_STATUSES)
    return {
        "setting": setting,
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
        # Damaged reply-cache entries found (where, why), and how many of them were asked again.
        "cache_damaged": dict(damaged_cache or {}),
        "cache_repairs": stats.cache_repairs,
        "fresh_replies": stats.fresh_replies,
        "tokens": {"prompt": sum(r["usage"]["prompt_tokens"] for r in records),
                   "completion": sum(r["usage"]["completion_tokens"] for r in records)},
        "cost_usd": sum(costs) if costs else None,  # every reply these songs used, cached ones included
        "cost_usd_this_run": stats.cost_usd_this_run,
        "elapsed_s": round(stats.elapsed_s, 3),
        "per_genre": rates_by(records, "genre"),
        "per_style": rates_by(records, "style"),
    }


def printable(text: str) -> str:
    """A label as any terminal takes it: a lone surrogate from a recording is shown escaped."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def print_summary(summary: dict, console: Console | None = None) -> None:
    console = console or Console()
    for key, title in (("per_genre", "genre"), ("per_style", "style")):
        table = Table(title=f"valid rate per {title}")
        for column in (title, "songs", "valid", "rate"):
            table.add_column(column, justify="left" if column == title else "right")
        for name, row in summary[key].items():
            table.add_row(printable(name), str(row["songs"]), str(row["valid"]), f"{row['valid_rate']:.1%}")
        console.print(table)
    cost = summary["cost_usd"]
    console.print(f"setting: {describe_setting(summary['setting'])}")
    damaged = (f", damaged cache entries {len(summary['cache_damaged'])} (asked again {summary['cache_repairs']}; "
               f"the log names them)" if summary["cache_damaged"] else "")
    console.print(
        f"songs {summary['songs']}  valid {summary['valid']} ({summary['valid_rate']:.1%})  "
        f"attempts {summary['attempts']}  requests {summary['requests']} "
        f"(retries {summary['transport_retries']}, cache hits {summary['cache_hits']}{damaged})  "
        f"tokens {summary['tokens']['prompt']}+{summary['tokens']['completion']}  "
        f"cost {'n/a' if cost is None else f'${cost:.4f}'} (this run ${summary['cost_usd_this_run']:.4f})  "
        f"elapsed {summary['elapsed_s']:.1f}s"
    )
