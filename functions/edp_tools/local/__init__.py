"""edp_tools.local."""
