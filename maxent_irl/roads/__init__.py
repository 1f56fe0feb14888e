"""Road networks from OpenStreetMap, GPS traces, map matching and simulated drivers.

The geographic layer of routeirl; the MaxEnt core (:mod:`maxent_irl`) never imports it.

* :func:`load_graph` / :class:`RoadNetwork`: osmnx drive graph -> :class:`~maxent_irl.RouteMDP`
  (states = directed segments, transitions = turns, features in :data:`FEATURE_TABLE`).
* :func:`read_gpx` / :func:`read_geojson` / :func:`read_csv` -> :class:`Trace`;
  :func:`split_trips`, :func:`clean_trips` (-> :class:`TripRejection`).
* :class:`MapMatcher` (HMM, Newson & Krumm 2009) -> :class:`MatchResult`.
* :func:`simulate_trips`: drivers with a known ``theta`` (:func:`default_true_theta`).

Map data: © OpenStreetMap contributors, ODbL 1.0 (see ``data/README.md``).
"""

from maxent_irl.roads.exceptions import (
    GPSFormatError,
    GPSLimitError,
    InvalidTraceError,
    MapMatchingError,
    NetworkSourceError,
    RoadsError,
    UnknownSegmentError,
)
from maxent_irl.roads.features import (
    FEATURE_NAMES,
    FEATURE_TABLE,
    FeatureSpec,
    default_true_theta,
    weights_as_seconds,
)
from maxent_irl.roads.gps_io import read_csv, read_geojson, read_gpx, traces_to_geojson
from maxent_irl.roads.matching import MapMatcher, MatchResult
from maxent_irl.roads.network import DEFAULT_OSM_PATH, RoadNetwork
from maxent_irl.roads.osm import load_graph, save_graph
from maxent_irl.roads.simulate import SimulatedTrip, draw_od, simulate_gps, simulate_trips
from maxent_irl.roads.snapping import RouteGeometry, RoutePlan, Snap, plan_route, route_geometry, snap_point
from maxent_irl.roads.trace import REJECTION_REASONS, Trace, TripRejection
from maxent_irl.roads.trips import clean_paths, clean_trips, path_revisit_fraction, split_trips

__all__ = [
    "DEFAULT_OSM_PATH",
    "FEATURE_NAMES",
    "FEATURE_TABLE",
    "REJECTION_REASONS",
    "FeatureSpec",
    "GPSFormatError",
    "GPSLimitError",
    "InvalidTraceError",
    "MapMatcher",
    "MapMatchingError",
    "MatchResult",
    "NetworkSourceError",
    "RoadNetwork",
    "RoadsError",
    "RouteGeometry",
    "RoutePlan",
    "SimulatedTrip",
    "Snap",
    "Trace",
    "TripRejection",
    "UnknownSegmentError",
    "clean_paths",
    "clean_trips",
    "default_true_theta",
    "draw_od",
    "load_graph",
    "path_revisit_fraction",
    "plan_route",
    "read_csv",
    "read_geojson",
    "read_gpx",
    "route_geometry",
    "save_graph",
    "simulate_gps",
    "simulate_trips",
    "snap_point",
    "split_trips",
    "traces_to_geojson",
    "weights_as_seconds",
]
