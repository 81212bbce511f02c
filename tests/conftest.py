"""Settings for the whole test run."""

from __future__ import annotations

import os
import sys

# Spark's Python workers start `python3` from PATH unless told otherwise, which may be another
# interpreter with other library versions than the driver's (and the hot path's). Pin them to
# this interpreter before any test starts the run's one SparkSession.
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
