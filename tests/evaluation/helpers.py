"""Shared settings of the evaluation tests: the small Monaco network and flags for quick fits."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MONACO = ROOT / "data" / "monaco_drive.osm.bz2"
#: Small enough for a few seconds per fit, large enough for every model to run each step.
FAST = ["--no-progress", "--test-fraction", "0.5", "--action-trips", "60", "--action-warm-trips", "30",
        "--action-max-iter", "30", "--mmp-iter", "40", "--mmp-batch", "40", "--destination-trips", "80",
        "--destinations", "4"]
