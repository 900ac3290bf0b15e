"""Stack components of ``edp dev``: every module here is imported and registers its parts.

Built in: ``core`` (Pub/Sub emulator 10, PostgreSQL 20, topology 30, warehouse tables 40) and
``functions`` (functions-framework servers, 50). Add yours as one module (see
:mod:`edp_tools.local.stack`).
"""
