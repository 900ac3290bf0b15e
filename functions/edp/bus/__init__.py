"""edp.bus."""
