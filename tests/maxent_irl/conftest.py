"""Fixtures of the core tests."""

from __future__ import annotations

import pytest

from maxent_irl import RouteMDP
from tests.maxent_irl.helpers import cyclic_mdp


@pytest.fixture
def cyclic() -> RouteMDP:
    return cyclic_mdp()
