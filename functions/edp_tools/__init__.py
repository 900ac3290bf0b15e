"""Laptop tooling of the platform: everything that is not deployed.

The production package :mod:`edp` is what Cloud Run, the collector image and the Beam job run;
this package holds what only a developer's machine or CI runs, and imports :mod:`edp` freely
(never the other way round: ``tests/test_import_boundary.py`` enforces it, and the function
archive Terraform uploads does not contain this folder).

- ``edp_tools.cli``        the ``edp`` command.
- ``edp_tools.local``      the local stack: Pub/Sub emulator, throwaway PostgreSQL, functions.
- ``edp_tools.cdc``        the local stand-in of Debezium Server (pgoutput reader) and the shop
                           simulator that writes orders, payments, shipments and stock.
- ``edp_tools.load``       the local stream loader (stands in for the Beam job).
- ``edp_tools.warehouse``  the DuckDB warehouse adapter (the laptop's BigQuery).
- ``edp_tools.contracts``  ``edp schemas build``: artefacts compiled from ``schemas/``.
- ``edp_tools.generator``  synthetic e-commerce traffic.
- ``edp_tools.demo``       ``edp demo``: replay end to end and write the report.
- ``edp_tools.bench``      ``nox -s bench``.
"""
