"""The hot path's I/O edges and per-stage pipelines.

Domain logic lives in `airlake.calibration`, `airlake.windows`, `airlake.classification` and
`airlake.alerts` (pure functions over plain data). This package holds what touches the outside:
the state store, the output publishers, the lake writer, the settings, and the stage functions
that the Lambda handlers, the local runtime and the tests all call.
"""
