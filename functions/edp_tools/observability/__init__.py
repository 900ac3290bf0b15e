"""Laptop tooling for observability: the metric docs table and the local dashboards."""
