"""Daily ETL: raw -> staging -> marts as SQL models (``models/``), run by :mod:`edp.etl.runner`."""
