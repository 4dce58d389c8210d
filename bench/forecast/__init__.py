"""Forecast benchmark on the public car-parts panel (`python -m bench.forecast`)."""
