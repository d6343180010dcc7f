"""Allow `python -m mlops`."""

from __future__ import annotations

from mlops.cli import main

raise SystemExit(main())
