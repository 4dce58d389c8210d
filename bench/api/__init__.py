"""API benchmark: the real API (`python -m services.api`) over gold built from three years of
generated history, against a bare FastAPI endpoint returning a constant, under a concurrent
load generator on loopback.

Run with `python -m bench.api` (or `make bench-api`); see bench/README.md.
"""
