"""edp.local."""
