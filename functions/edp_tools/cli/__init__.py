"""edp_tools.cli."""
