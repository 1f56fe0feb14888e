"""Fixtures of the evaluation tests: the small Monaco network, built once per session."""

from __future__ import annotations

import pytest

from maxent_irl.roads import RoadNetwork
from tests.evaluation.helpers import MONACO


@pytest.fixture(scope="session")
def monaco() -> RoadNetwork:
    return RoadNetwork.load(MONACO, name="monaco")
