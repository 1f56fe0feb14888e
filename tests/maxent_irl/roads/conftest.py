"""Shared fixtures: the small Monaco network for unit tests, Andorra (the default) for the must-show checks.

Both are built once per session; Monaco takes ~0.3 s, Andorra ~2 s.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
if str(ROOT) not in sys.path:  # --import-mode=importlib does not put the rootdir on sys.path
    sys.path.insert(0, str(ROOT))

from maxent_irl.roads import RoadNetwork  # noqa: E402

DATA = ROOT / "data"
MONACO_OSM = DATA / "monaco_drive.osm.bz2"
ANDORRA_OSM = DATA / "andorra_drive.osm.bz2"
GPX_FILE = DATA / "andorra_for_map_matching.gpx"


@pytest.fixture(scope="session")
def monaco() -> RoadNetwork:
    return RoadNetwork.load(MONACO_OSM, name="monaco")


@pytest.fixture(scope="session")
def andorra() -> RoadNetwork:
    return RoadNetwork.default(cache_dir=False)
