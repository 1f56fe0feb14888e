"""The Porto service benchmark's bookkeeping and weight rule, on made-up answers (no server, no real data)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from benchmarks.bench_porto_service import Row, UploadTally, batches, check_weights, km_combinations, upload_trip


def _row(tid: str, n: int) -> Row:
    return Row(tid, 1_000, [[-8.6 + 1e-4 * i, 41.15] for i in range(n)])


def test_batches_keep_order_and_the_point_limit() -> None:
    rows = [_row(str(i), 30) for i in range(10)]
    out = batches(rows, size=4, max_points=100)
    assert [len(b) for b in out] == [3, 3, 3, 1]  # 4 x 30 points would pass 100
    assert [r.trip_id for b in out for r in b] == [str(i) for i in range(10)]
    assert upload_trip(rows[0])["times"][:3] == [1_000, 1_015.0, 1_030.0]


def test_pieces_of_a_split_trace_count_for_their_row() -> None:
    rows = [_row("a", 10), _row("b", 10), _row("c", 10), _row("d", 1)]
    tally = UploadTally(not_sent={"d": "1 GPS fix(es)"})
    tally.add_answer(201, {"accepted": [{"id": 1, "trace_id": "a", "n_points": 10},
                                        {"id": 2, "trace_id": "b#0", "n_points": 4},
                                        {"id": 3, "trace_id": "b#2", "n_points": 3}],
                           "rejected": [{"trace_id": "b#1", "index": 1, "reason": "too_short"},
                                        {"trace_id": "c", "index": 2, "reason": "off_network"}]}, rows[:3])
    out = tally.outcome(rows)
    assert out["by_outcome"] == {"stored whole": 1, "split at stops, some pieces stored, others rejected: too_short": 1,
                                 "rejected: off_network": 1, "not sent: 1 GPS fix(es)": 1}
    assert (out["stored_trips"], out["rejected_pieces"], out["split"]) == (3, 2, 1)
    assert tally.stored_whole("a") and not tally.stored_whole("b")


def test_an_upload_with_nothing_stored_rejects_every_row() -> None:
    rows = [_row("a", 10), _row("b", 10)]
    tally = UploadTally()
    tally.add_answer(422, {"code": "no_trips_accepted", "details": {
        "rejected": [{"trace_id": "a", "index": 0, "reason": "too_cyclic"}, {"truncated": True}],
        "rejected_by_reason": {"too_cyclic": 2}}}, rows)
    assert tally.outcome(rows)["rejected_whole"] == 2
    with pytest.raises(RuntimeError, match="413"):
        tally.add_answer(413, {"code": "payload_too_large"}, rows)


def _feature(name: str, w: float | None, se: float | None, anchor_w: float = -1.0,
             status: str = "learned") -> dict[str, Any]:
    seconds = None if w is None else -w * 72.0 / -anchor_w
    return {"name": name, "status": status, "weight": w, "standard_error": se, "seconds": seconds}


def test_the_weight_rule() -> None:
    ok = [_feature("km_residential", -1.0, 0.1), _feature("km_primary", -0.5, 0.1),
          _feature("turn_left", -2.0, 0.5), _feature("km_speed_le30", 3.0, 0.5),
          _feature("km_motorway", None, None, status="absent")]
    res = check_weights(ok, [])
    assert res["passed"], res["problems"]
    assert res["features"][2]["seconds_ours"] == pytest.approx(144.0)
    assert not check_weights(ok)["passed"]  # the kinds of road unknown: not checked, not passed

    too_big = check_weights([*ok, _feature("turn_uturn", -10.0, 0.5)], [])  # 720 s ± 36 s per U-turn
    assert not too_big["passed"] and "turn_uturn" in too_big["problems"][0]
    weak = check_weights([*ok, _feature("turn_uturn", -5.0, 0.5)], [])  # 360 s ± 36 s: within 2 SE of 300 s
    assert weak["passed"] and weak["weakly_supported"]

    loose_anchor = [_feature("km_residential", -1.0, 0.5), *ok[1:]]
    assert any("(b)" in p for p in check_weights(loose_anchor, [])["problems"])
    wrong_seconds = [*ok[:1], {**ok[1], "seconds": 1.0}]
    assert not check_weights(wrong_seconds, [])["passed"]


def test_a_kind_of_road_is_its_class_plus_its_bins() -> None:
    names = ["km_primary", "km_speed_le30", "km_motorway", "turn_left", "segment"]
    features = np.array([[0.2, 0.2, 0, 1, 1],  # into state 0: 200 m of primary at <= 30 km/h
                         [0.2, 0.2, 0, 0, 1],  # into state 0 again
                         [0, 0, 0.5, 0, 1],  # into state 1: 500 m of motorway
                         [0.1, 0, 0, 0, 1]])  # into state 2: 100 m of primary
    kinds = km_combinations(names, features, np.array([0, 0, 1, 2]), np.array([200.0, 500.0, 100.0]), {0: 3})
    assert [k["features"] for k in kinds] == [["km_primary", "km_speed_le30"], ["km_motorway"], ["km_primary"]]
    assert kinds[0]["km_driven"] == pytest.approx(0.6) and kinds[1]["km_network"] == pytest.approx(0.5)

    weights = [_feature("km_residential", -1.0, 0.1), _feature("km_primary", -1.0, 0.1),
               _feature("km_speed_le30", 0.5, 0.1), _feature("km_motorway", 0.5, 0.1)]  # a km of motorway: a gain
    res = check_weights(weights, kinds)
    assert [k["verdict"] for k in res["kinds"]] == ["ok", "FAIL", "ok"]
    assert res["kinds"][0]["seconds_per_km"] == pytest.approx(36.0)
    assert res["kinds"][0]["se_bound"] == pytest.approx(14.4)
    assert res["features"][3]["verdict"] == "see kinds"  # km_motorway alone: a road at 30-50 km/h, 1 lane
