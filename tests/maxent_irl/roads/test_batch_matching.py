"""Matching a batch: failures come back as values in input order; the network travels to other processes."""

from __future__ import annotations

import pickle

import numpy as np

from maxent_irl.roads import MapMatcher, RoadNetwork, Trace, simulate_trips
from maxent_irl.roads.batch_matching import MatchFailure, match_all, match_on_worker


def test_a_batch_keeps_order_and_returns_failures(monaco: RoadNetwork) -> None:
    sims = simulate_trips(monaco, n_trips=3, seed=5, noise_m=5, interval_s=10)
    sea = Trace(np.asarray(sims[0].trace.points) + np.array([0.0, -0.5]), None, "sea")  # 55 km south: open sea
    tiny = Trace(np.asarray(sims[1].trace.points)[:1], None, "tiny")
    traces = [sims[0].trace, sea, tiny, sims[2].trace]
    matcher = MapMatcher(monaco)
    out = match_all(matcher, traces)
    assert [type(r).__name__ for r in out] == ["MatchResult", "MatchFailure", "MatchFailure", "MatchResult"]
    assert np.array_equal(out[0].states, matcher.match(sims[0].trace).states)
    assert isinstance(out[1], MatchFailure) and isinstance(out[2], MatchFailure)
    assert out[2].kind == "invalid_trace" and out[2].reason == "too_short"
    assert out[1].kind == "not_matched" and out[1].reason == "off_network"
    assert out[2].error().reason == "too_short" and type(out[2].error()).__name__ == "InvalidTraceError"
    # a worker's matcher gives the same answers
    again = match_on_worker(monaco, traces)
    assert np.array_equal(again[3].states, out[3].states) and again[1] == out[1]


def test_a_used_network_pickles_without_its_caches(monaco: RoadNetwork) -> None:
    monaco.router(100.0)
    monaco.geojson.segment_coordinates(0)
    copy = pickle.loads(pickle.dumps(monaco))
    assert copy.fingerprint == monaco.fingerprint and copy.n_states == monaco.n_states
    assert np.array_equal(copy.router(100.0).shortest_path(0, 5), monaco.router(100.0).shortest_path(0, 5))
    assert copy.geojson.segment_coordinates(0) == monaco.geojson.segment_coordinates(0)
