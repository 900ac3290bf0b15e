"""edp.contracts."""
