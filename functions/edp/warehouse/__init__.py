"""edp.warehouse."""
