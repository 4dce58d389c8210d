"""Benchmarks: each runs with one command (`python -m bench.<name>`) and reports ratios against
baselines measured in the same run."""
