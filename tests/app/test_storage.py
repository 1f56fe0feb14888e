"""Storage: schema on start, WAL + synchronous=FULL, trips/jobs/models round trips, atomic completion."""

from __future__ import annotations

import json
import sqlite3

import pytest

from app.storage import FAILED, INTERRUPTED, RUNNING, SUCCEEDED, NewTrip, Storage


@pytest.fixture
def storage(tmp_path):
    s = Storage(tmp_path / "sub" / "db.sqlite3")
    yield s
    s.close()


def test_schema_and_pragmas(storage: Storage):
    con = storage.con
    assert con.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal"
    assert con.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"trips", "jobs", "models", "active_model"} <= tables
    Storage(storage.path).close()  # reopening an existing database is fine


def test_trips_round_trip(storage: Storage):
    ids = storage.insert_trips(
        "net",
        [
            NewTrip(points=[[1.0, 2.0], [1.1, 2.1]], path=[3, 4, 5], times=[0.0, 10.0], trace_id="a"),
            NewTrip(points=[[1.0, 2.0], [1.2, 2.2]], path=[7, 5], trace_id=None),
        ],
    )
    assert ids == [1, 2]
    trip = storage.get_trip(1)
    assert trip.points == [[1.0, 2.0], [1.1, 2.1]] and trip.times == [0.0, 10.0] and trip.path == [3, 4, 5]
    assert (trip.origin, trip.destination, trip.path_length) == (3, 5, 3)
    assert storage.get_trip(99) is None
    page, total = storage.list_trips("net", limit=1, offset=1)
    assert total == 2 and [t.id for t in page] == [2]
    assert storage.list_trips("other", 10, 0) == ([], 0)
    assert storage.destination_counts("net", 10) == [(5, 2)]
    assert storage.trips_version("net") == 2 and storage.trips_version("other") == 0
    assert storage.training_paths("net") == ([1, 2], [[3, 4, 5], [7, 5]])


def test_trips_are_durable_once_inserted(storage: Storage):
    """A second connection (another process in real life) sees an acknowledged trip at once."""
    storage.insert_trips("net", [NewTrip(points=[[0, 0], [0, 1]], path=[1, 2])])
    other = sqlite3.connect(storage.path)
    assert other.execute("SELECT COUNT(*) FROM trips").fetchone()[0] == 1
    other.close()


def test_job_lifecycle(storage: Storage):
    job = storage.create_job("train", "net", {"l1": 0.0})
    assert job.status == "queued" and storage.next_queued_job().id == job.id
    assert storage.start_job(job.id, 123)
    assert not storage.start_job(job.id, 456)  # only once
    storage.update_progress(job.id, {"iteration": 3})
    assert storage.get_job(job.id).progress == {"iteration": 3}
    assert storage.finish_job(job.id, FAILED, error="boom")
    assert not storage.finish_job(job.id, SUCCEEDED)  # first final status wins
    assert storage.get_job(job.id).status == FAILED


def test_interrupt_running_jobs(storage: Storage):
    a = storage.create_job("train", "net", {})
    b = storage.create_job("train", "net", {})
    storage.start_job(a.id, None)
    assert storage.interrupt_running_jobs("restart") == [a.id]
    assert storage.get_job(a.id).status == INTERRUPTED
    assert storage.get_job(b.id).status == "queued"


def test_models_and_activation(storage: Storage):
    m1 = storage.insert_model(network="net", network_name="n", feature_names=["a"], theta=[-1.0], options={},
                              metrics={"x": 1})
    m2 = storage.insert_model(network="net", network_name="n", feature_names=["a"], theta=[-2.0], options={},
                              metrics={}, activate=False)
    assert storage.active_model_id("net") == m1
    assert storage.get_model(m1).active and not storage.get_model(m2).active
    storage.activate_model(m2)
    assert storage.active_model_id("net") == m2
    models, total = storage.list_models("net", 10, 0)
    assert total == 2 and [m.id for m in models] == [m2, m1]
    with pytest.raises(KeyError):
        storage.activate_model(999)
    raw = storage.con.execute("SELECT theta, feature_names FROM models WHERE id = ?", (m1,)).fetchone()
    assert json.loads(raw[0]) == [-1.0] and json.loads(raw[1]) == ["a"]  # plain JSON, never pickle


def test_complete_training_is_atomic_and_checks_the_job(storage: Storage):
    job = storage.create_job("train", "net", {})
    kwargs = dict(network_name="n", feature_names=["a"], theta=[-1.0], options={}, metrics={}, activate=True)
    assert storage.complete_training(job.id, **kwargs) is None  # not running: nothing written
    assert storage.list_models(None, 10, 0)[1] == 0
    storage.start_job(job.id, None)
    model_id = storage.complete_training(job.id, **kwargs)
    job = storage.get_job(job.id)
    assert job.status == SUCCEEDED and job.model_id == model_id
    assert storage.active_model_id("net") == model_id
    assert storage.get_job(job.id).status != RUNNING


def _open_at_once(path: str, barrier, results) -> None:
    barrier.wait()
    try:
        Storage(path)
        results.put("ok")
    except Exception as exc:
        results.put(repr(exc))


def test_processes_opening_a_new_database_at_once_all_succeed(tmp_path):
    """./scripts/serve starts two API processes on a fresh file: switching it to WAL must not fail either.

    SQLite refuses the switch at once ('database is locked') rather than waiting while another
    connection holds the file.
    """
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    failures = []
    for r in range(40):  # before the retry, 8 processes lost one in about a quarter of the rounds
        barrier, results = ctx.Barrier(8), ctx.Queue()
        procs = [ctx.Process(target=_open_at_once, args=(str(tmp_path / f"db{r}.sqlite3"), barrier, results))
                 for _ in range(8)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(60)
        failures += [x for x in (results.get(timeout=10) for _ in procs) if x != "ok"]
    assert not failures, failures[:3]
