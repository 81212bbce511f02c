"""Machine learning for Airlake: calibration regressions and event classifiers.

`runtime` (standard library only) is what the hot path imports; everything else (features,
training, validation, backtests, export) is the cold path and uses pandas and scikit-learn.
"""

from __future__ import annotations
