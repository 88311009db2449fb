"""Replay of an event log: projections, rebuilt statistics, failure reproduction, and the CLI."""
