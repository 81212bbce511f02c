"""`python -m airlake`: the command-line interface."""

from __future__ import annotations

from airlake.cli import main

raise SystemExit(main())
