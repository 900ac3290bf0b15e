"""Laptop tooling of the data-quality agent: the backtest (``edp quality backtest``)."""
