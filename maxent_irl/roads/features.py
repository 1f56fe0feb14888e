"""Transition features of the road MDP (Ziebart et al. 2008, §"Path Features").

A transition ``(u, v) -> (v, w)`` is described by the segment it *enters*,
``(v, w)``, and by the turn made at ``v``; a path's features are the sums over its
transitions, so the first segment of a path is given (it is the origin) and every
later segment is counted once. All features are in kilometres or counts:

==========================  ======  ==========  ===============================================================
name                        unit    group       meaning (for the entered segment / the turn)
==========================  ======  ==========  ===============================================================
km_motorway                 km      road_class  length if ``highway=motorway``
km_trunk                    km      road_class  ``trunk``
km_primary                  km      road_class  ``primary``
km_secondary                km      road_class  ``secondary``
km_tertiary                 km      road_class  ``tertiary``
km_residential              km      road_class  ``residential``, ``unclassified``, ``living_street``, ``road``
km_service                  km      road_class  ``service`` and any other class
km_link                     km      road_class  any ``*_link`` ramp
km_speed_le30               km      speed       speed <= 30 km/h (OSM maxspeed, else class default)
km_speed_50_70              km      speed       50 < speed <= 70
km_speed_70_90              km      speed       70 < speed <= 90
km_speed_gt90               km      speed       speed > 90
km_lanes_2                  km      lanes       2 lanes in the direction of travel
km_lanes_3plus              km      lanes       3 or more lanes
turn_slight_right           count   turn        turn angle 25°..60° to the right
turn_right                  count   turn        60°..120° right
turn_sharp_right            count   turn        > 120° right (not back onto the same road)
turn_slight_left            count   turn        25°..60° left
turn_left                   count   turn        60°..120° left
turn_sharp_left             count   turn        > 120° left (not back onto the same road)
turn_uturn                  count   turn        U-turn: ``w == u``, back to the node we came from
segment                     count   constant    1 per transition (per entered segment)
==========================  ======  ==========  ===============================================================

A segment merged from several ways (osmnx simplification) takes the most important
of their classes, and the mean of their tagged ``maxspeed`` / ``lanes``.
Reference categories keep every weight identifiable (no two feature sets can give
the same rewards): going straight (within 25°) is the reference turn, so it costs
only ``segment``; 30-50 km/h is the reference speed and 1 lane the reference lane
count, so ``km_<class>`` is the cost of a km of that class at 30-50 km/h on one lane
and the speed / lane features are adjustments per km relative to it (a complete
set of bins in each group would sum to the segment length and be collinear).
Turn angles come from the bearings of the last / first 20 m of the two segments'
geometries, not from their end nodes, so curved roads are classified correctly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

__all__ = [
    "FEATURE_NAMES",
    "FEATURE_TABLE",
    "LANE_BINS",
    "ROAD_CLASSES",
    "SPEED_BINS_KPH",
    "TURN_TYPES",
    "FeatureSpec",
    "default_true_theta",
    "lanes_per_direction",
    "road_class",
    "transition_features",
    "turn_types",
    "weights_as_seconds",
]


class FeatureSpec(NamedTuple):
    name: str
    unit: str  # "km" or "count"
    group: str  # road_class | speed | lanes | turn | constant
    description: str


ROAD_CLASSES: tuple[str, ...] = (
    "motorway", "trunk", "primary", "secondary", "tertiary", "residential", "service", "link",
)
_CLASS_OF_HIGHWAY = {
    "motorway": "motorway", "trunk": "trunk", "primary": "primary", "secondary": "secondary",
    "tertiary": "tertiary", "residential": "residential", "unclassified": "residential",
    "living_street": "residential", "road": "residential",
}
#: Upper edges (km/h, inclusive) of the speed bins and their name suffixes.
SPEED_BINS_KPH: tuple[tuple[float, str], ...] = (
    (30.0, "le30"), (50.0, "30_50"), (70.0, "50_70"), (90.0, "70_90"), (float("inf"), "gt90"),
)
LANE_BINS: tuple[str, ...] = ("1", "2", "3plus")
#: Reference bins (no feature of their own; see the module docstring).
SPEED_REFERENCE_BIN = "30_50"
LANES_REFERENCE_BIN = "1"
_SPEED_FEATURE_BINS = tuple(sfx for _, sfx in SPEED_BINS_KPH if sfx != SPEED_REFERENCE_BIN)
_LANE_FEATURE_BINS = tuple(b for b in LANE_BINS if b != LANES_REFERENCE_BIN)
TURN_TYPES: tuple[str, ...] = (
    "slight_right", "right", "sharp_right", "slight_left", "left", "sharp_left", "uturn",
)
STRAIGHT_MAX_DEG = 25.0
SLIGHT_MAX_DEG = 60.0
NORMAL_MAX_DEG = 120.0

_CLASS_DESC = {
    "motorway": "highway=motorway", "trunk": "highway=trunk", "primary": "highway=primary",
    "secondary": "highway=secondary", "tertiary": "highway=tertiary",
    "residential": "residential, unclassified, living_street, road",
    "service": "service and any other drivable class", "link": "any *_link ramp",
}
_TURN_DESC = {
    "slight_right": "turn 25-60 deg to the right", "right": "turn 60-120 deg to the right",
    "sharp_right": "turn > 120 deg to the right (not a U-turn)", "slight_left": "turn 25-60 deg to the left",
    "left": "turn 60-120 deg to the left", "sharp_left": "turn > 120 deg to the left (not a U-turn)",
    "uturn": "U-turn: back along the segment just driven (w == u)",
}


def _build_table() -> tuple[FeatureSpec, ...]:
    rows = [FeatureSpec(f"km_{c}", "km", "road_class", f"km on {_CLASS_DESC[c]}") for c in ROAD_CLASSES]
    lo = 0.0
    for hi, suffix in SPEED_BINS_KPH:
        rng = f"> {lo:g} km/h" if np.isinf(hi) else f"{lo:g} < speed <= {hi:g} km/h"
        desc = f"km with speed {rng} (maxspeed or class default), relative to 30-50 km/h"
        if suffix != SPEED_REFERENCE_BIN:
            rows.append(FeatureSpec(f"km_speed_{suffix}", "km", "speed", desc))
        lo = hi
    rows += [
        FeatureSpec(
            f"km_lanes_{b}", "km", "lanes",
            f"km with {b.replace('plus', ' or more')} lanes in the direction, relative to 1",
        )
        for b in _LANE_FEATURE_BINS
    ]
    rows += [FeatureSpec(f"turn_{t}", "count", "turn", _TURN_DESC[t]) for t in TURN_TYPES]
    rows.append(FeatureSpec("segment", "count", "constant", "1 per entered segment (per transition)"))
    return tuple(rows)


#: One row per feature, in column order of the MDP's feature matrix.
FEATURE_TABLE: tuple[FeatureSpec, ...] = _build_table()
FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURE_TABLE)

_N_CLASS, _N_SPEED = len(ROAD_CLASSES), len(_SPEED_FEATURE_BINS)
_N_LANES, _N_TURN = len(_LANE_FEATURE_BINS), len(TURN_TYPES)
_OFF_SPEED = _N_CLASS
_OFF_LANES = _OFF_SPEED + _N_SPEED
_OFF_TURN = _OFF_LANES + _N_LANES
_COL_SEGMENT = _OFF_TURN + _N_TURN
_SPEED_COLUMN = np.array([_SPEED_FEATURE_BINS.index(s) if s in _SPEED_FEATURE_BINS else -1 for _, s in SPEED_BINS_KPH])
_LANE_COLUMN = np.array([_LANE_FEATURE_BINS.index(b) if b in _LANE_FEATURE_BINS else -1 for b in LANE_BINS])


def _first(value: Any) -> Any:
    """osmnx merges ways into list-valued attributes; like ``ox.add_edge_speeds`` we use the first.

    ``load_graph`` / ``RoadNetwork.from_graph`` sort those lists first (``highway`` by
    importance), so "the first" is the most important class and does not depend on
    Python's per-process string hashing.
    """
    if isinstance(value, list | tuple):
        return value[0] if value else None
    return value


def road_class(highway: Any) -> str:
    """Feature road class of an OSM ``highway`` value (first of a list, as osmnx does for speeds)."""
    hw = str(_first(highway) or "")
    if hw.endswith("_link"):
        return "link"
    return _CLASS_OF_HIGHWAY.get(hw, "service")


def _parse_lanes(value: Any) -> float | None:
    vals = []
    for v in value if isinstance(value, list | tuple) else [value]:
        try:
            x = float(str(v).split(";")[0].strip())
        except ValueError:
            continue
        if np.isfinite(x) and x > 0:
            vals.append(x)
    return float(np.mean(vals)) if vals else None


def lanes_per_direction(data: Mapping[str, Any]) -> int:
    """Lanes in the edge's direction of travel.

    ``lanes:forward`` / ``lanes:backward`` when tagged (``reversed`` tells which applies),
    else ``lanes`` on a one-way road, else half of ``lanes`` (at least 1) on a two-way
    road; untagged: 2 on motorways and trunks, 1 elsewhere.
    """
    direction = "lanes:backward" if bool(_first(data.get("reversed", False))) else "lanes:forward"
    if (n := _parse_lanes(data.get(direction))) is not None:
        return max(1, round(n))
    total = _parse_lanes(data.get("lanes"))
    if total is not None:
        oneway = bool(_first(data.get("oneway", False)))
        return max(1, round(total) if oneway else int(total // 2))
    return 2 if road_class(data.get("highway")) in ("motorway", "trunk") else 1


def speed_bin(speed_kph: np.ndarray) -> np.ndarray:
    """Index into :data:`SPEED_BINS_KPH` for each speed."""
    edges = np.array([hi for hi, _ in SPEED_BINS_KPH[:-1]])
    return np.searchsorted(edges, np.asarray(speed_kph, dtype=float), side="left")


def turn_types(angle_deg: np.ndarray, is_uturn: np.ndarray) -> np.ndarray:
    """Index into :data:`TURN_TYPES` for each turn, ``-1`` for straight.

    ``angle_deg`` in (-180, 180], positive = clockwise = right. A U-turn is decided by
    topology (``w == u``), not by angle, so a hairpin junction is a sharp turn.
    """
    a = np.asarray(angle_deg, dtype=float)
    mag = np.abs(a)
    right = a > 0
    out = np.full(a.shape, -1, dtype=np.int64)
    for lo, hi, r_idx, l_idx in (
        (STRAIGHT_MAX_DEG, SLIGHT_MAX_DEG, 0, 3),
        (SLIGHT_MAX_DEG, NORMAL_MAX_DEG, 1, 4),
        (NORMAL_MAX_DEG, 181.0, 2, 5),
    ):
        sel = (mag > lo) & (mag <= hi)
        out[sel & right] = r_idx
        out[sel & ~right] = l_idx
    out[np.asarray(is_uturn, dtype=bool)] = TURN_TYPES.index("uturn")
    return out


def transition_features(
    dst: np.ndarray,
    length_m: np.ndarray,
    class_idx: np.ndarray,
    speed_kph: np.ndarray,
    lanes: np.ndarray,
    turn_angle_deg: np.ndarray,
    is_uturn: np.ndarray,
) -> np.ndarray:
    """``(T, len(FEATURE_NAMES))`` features; per-segment arrays are indexed by ``dst`` (the entered segment)."""
    dst = np.asarray(dst, dtype=np.int64)
    T = dst.shape[0]
    rows = np.arange(T)
    km = np.asarray(length_m, dtype=float)[dst] / 1000.0
    F = np.zeros((T, len(FEATURE_NAMES)))
    F[rows, np.asarray(class_idx)[dst]] = km
    # speed and lane bins are dummy-coded against their reference bin (column -1 = none)
    speed_col = _SPEED_COLUMN[speed_bin(np.asarray(speed_kph)[dst])]
    has = speed_col >= 0
    F[rows[has], _OFF_SPEED + speed_col[has]] = km[has]
    lane_col = _LANE_COLUMN[np.clip(np.asarray(lanes, dtype=np.int64)[dst], 1, len(LANE_BINS)) - 1]
    has = lane_col >= 0
    F[rows[has], _OFF_LANES + lane_col[has]] = km[has]
    tt = turn_types(turn_angle_deg, is_uturn)
    turned = tt >= 0
    F[rows[turned], _OFF_TURN + tt[turned]] = 1.0
    F[:, _COL_SEGMENT] = 1.0
    return F


# Ground truth for simulated drivers, in reward units (≈ -seconds / 10). Not
# proportional to travel time: primary roads are preferred beyond their speed,
# residential streets avoided beyond theirs, left turns cost more than right ones.
_TRUE_THETA: dict[str, float] = {
    # km at the reference speed (30-50 km/h) on one lane
    "km_motorway": -6.0, "km_trunk": -6.5, "km_primary": -7.0, "km_secondary": -8.0,
    "km_tertiary": -8.5, "km_residential": -10.5, "km_service": -12.0, "km_link": -7.5,
    # per-km adjustments for other speeds and lane counts
    "km_speed_le30": -1.5, "km_speed_50_70": 1.0, "km_speed_70_90": 1.7, "km_speed_gt90": 2.1,
    "km_lanes_2": 0.3, "km_lanes_3plus": 0.5,
    "turn_slight_right": -0.3, "turn_right": -0.8, "turn_sharp_right": -1.5,
    "turn_slight_left": -0.5, "turn_left": -2.0, "turn_sharp_left": -3.0,
    "turn_uturn": -6.0, "segment": -1.5,
}


def default_true_theta(feature_names: Sequence[str] | None = None) -> np.ndarray:
    """Ground-truth weights of the simulated drivers, aligned with ``feature_names`` (default: all features).

    Every km costs at least 3.4 per km whatever its speed and lanes, and ``segment``
    < 0, so every transition has a strictly negative reward and the partition function
    converges (see the tests).
    """
    names = FEATURE_NAMES if feature_names is None else tuple(feature_names)
    unknown = [n for n in names if n not in _TRUE_THETA]
    if unknown:
        raise ValueError(f"no default weight for features {unknown}")
    return np.array([_TRUE_THETA[n] for n in names], dtype=float)


def weights_as_seconds(
    theta: Sequence[float] | np.ndarray,
    feature_names: Sequence[str],
    reference_speed_kmh: float = 50.0,
    reference_features: Sequence[str] | None = None,
) -> dict[str, float]:
    """Express learned weights as costs in seconds, like Fig. 3 of Ziebart et al. (2008).

    The weights' scale is arbitrary (it is set by the temperature), so one anchor fixes
    it: one km of a *reference road* costs what driving it at ``reference_speed_kmh``
    takes, ``3600 / reference_speed_kmh`` seconds. The reference road is the sum of
    ``reference_features`` (default: ``km_residential`` plus the speed adjustment of the
    bin containing the reference speed, if that is not the reference bin; those absent
    from ``feature_names`` are skipped).
    Then every feature's cost is ``-theta * scale``: seconds per km for ``km_*``
    features, seconds per turn / per segment for counts. Positive = a cost.

    Raises ``ValueError`` if the reference road's weight is not negative (no cost to anchor on).
    """
    th = np.asarray(theta, dtype=float)
    names = list(feature_names)
    if th.shape != (len(names),):
        raise ValueError(f"theta has shape {th.shape} but there are {len(names)} feature names")
    if not (np.isfinite(reference_speed_kmh) and reference_speed_kmh > 0):
        raise ValueError(f"reference_speed_kmh must be positive, got {reference_speed_kmh}")
    if reference_features is None:
        sbin = int(speed_bin(np.array([reference_speed_kmh]))[0])
        reference_features = ("km_residential", f"km_speed_{SPEED_BINS_KPH[sbin][1]}")
        reference_features = [f for f in reference_features if f in names]
    missing = [f for f in reference_features if f not in names]
    if missing or not reference_features:
        raise ValueError(f"reference features {missing or '(none)'} not among feature_names")
    ref_reward = float(sum(th[names.index(f)] for f in reference_features))
    if not ref_reward < 0:
        raise ValueError(f"the reference road {list(reference_features)} has reward {ref_reward:g} >= 0: cannot anchor")
    scale = (3600.0 / reference_speed_kmh) / -ref_reward
    return {n: float(-w * scale) + 0.0 for n, w in zip(names, th, strict=True)}  # + 0.0: no -0.0
