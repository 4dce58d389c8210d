"""Transform benchmark: full rebuild, one incremental daily export, and DuckDB run directly on
bronze with the same SQL.

Run with `python -m bench.transform` (or `make bench-transform`); see bench/README.md.
"""
