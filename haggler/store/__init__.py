"""Persistence: runs, episodes and turns in SQLite, and their export."""

from haggler.store.export import export_jsonl
from haggler.store.records import EpisodeRecord, EpisodeSummary, RunRecord, TurnRecord
from haggler.store.sqlite import Store

__all__ = ["EpisodeRecord", "EpisodeSummary", "RunRecord", "Store", "TurnRecord", "export_jsonl"]
