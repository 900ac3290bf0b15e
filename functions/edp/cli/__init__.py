"""edp.cli."""
