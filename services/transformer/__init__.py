"""Reacts to bronze events and builds silver and gold Delta tables with DuckDB."""
