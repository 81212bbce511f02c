"""Airlake: a serverless air-quality data platform.

The domain package shared by the Lambda handlers, the Glue jobs, the training jobs and the
local runtime. Importing it needs no credentials and no environment variables.
"""

from __future__ import annotations

__version__ = "0.1.0"
