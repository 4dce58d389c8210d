"""Ingest benchmark: the ingestor's CSV and workbook paths against pyarrow, pandas and openpyxl.

Run with `python -m bench.ingest` (or `make bench-ingest`); see bench/README.md.
"""
