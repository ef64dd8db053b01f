"""The generation engine: plan songs, ask a backend, cache, parse, render, record, summarize."""

from llmusic.engine.cache import ReplyCache, cache_key
from llmusic.engine.cost import PriceTable
from llmusic.engine.plan import PlannedSong, Sampling, plan_grid, plan_songs
from llmusic.engine.runner import Engine, RunStats

__all__ = ["Engine", "PlannedSong", "PriceTable", "ReplyCache", "RunStats", "Sampling", "cache_key", "plan_grid",
           "plan_songs"]
