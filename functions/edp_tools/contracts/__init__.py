"""Laptop tooling: see :mod:`edp_tools`."""
