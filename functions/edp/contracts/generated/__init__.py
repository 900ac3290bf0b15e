"""Artefacts generated from ``schemas/`` by ``edp schemas build`` (checked in; do not edit)."""
