"""Laptop tooling of the SQL reviewer: statistics measured on data, the DuckDB equivalence
check of rewrites, and the ``edp sql review`` command's helpers."""
