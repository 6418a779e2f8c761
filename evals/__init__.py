"""Metrics, ratings and reports read from the store.

Empty until the self-play issue, which adds per-round prices, deal rates and their intervals.
"""
