"""Offline forecaster: quantile forecasts per series, model selection by backtest, inventory
policy, published to gold with a run manifest. Never imported by the API."""
