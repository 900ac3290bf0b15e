"""edp.observability."""
