"""``python -m edp_stream_load [flags]``: run the stream-load job."""

import logging

from edp_stream_load.pipeline import run

if __name__ == "__main__":
    logging.getLogger().setLevel(logging.INFO)
    run()
