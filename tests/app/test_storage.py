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
    con = storage.db.con
    assert con.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal"
    assert con.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"trips", "jobs", "models", "active_model"} <= tables
    Storage(storage.path).close()  # reopening an existing database is fine


def test_trips_round_trip(storage: Storage):
    ids = storage.trips.insert(
        "net",
        [
            NewTrip(points=[[1.0, 2.0], [1.1, 2.1]], path=[3, 4, 5], times=[0.0, 10.0], trace_id="a"),
            NewTrip(points=[[1.0, 2.0], [1.2, 2.2]], path=[7, 5], trace_id=None),
        ],
    )
    assert ids == [1, 2]
    trip = storage.trips.get(1)
    assert trip.points == [[1.0, 2.0], [1.1, 2.1]] and trip.times == [0.0, 10.0] and trip.path == [3, 4, 5]
    assert (trip.origin, trip.destination, trip.path_length) == (3, 5, 3)
    assert storage.trips.get(99) is None
    page, total = storage.trips.page("net", limit=1, offset=1)
    assert total == 2 and [t.id for t in page] == [2]
    assert storage.trips.page("other", 10, 0) == ([], 0)
    assert storage.trips.destination_counts("net", 10) == [(5, 2)]
    assert storage.trips.version("net") == 2 and storage.trips.version("other") == 0
    assert storage.trips.paths("net") == ([1, 2], [[3, 4, 5], [7, 5]])


def test_trips_are_durable_once_inserted(storage: Storage):
    """A second connection (another process in real life) sees an acknowledged trip at once."""
    storage.trips.insert("net", [NewTrip(points=[[0, 0], [0, 1]], path=[1, 2])])
    other = sqlite3.connect(storage.path)
    assert other.execute("SELECT COUNT(*) FROM trips").fetchone()[0] == 1
    other.close()


def test_job_lifecycle(storage: Storage):
    job = storage.jobs.create("train", "net", {"l1": 0.0})
    assert job.status == "queued" and storage.jobs.next_queued().id == job.id
    assert storage.jobs.start(job.id, 123)
    assert not storage.jobs.start(job.id, 456)  # only once
    storage.jobs.update_progress(job.id, {"iteration": 3})
    assert storage.jobs.get(job.id).progress == {"iteration": 3}
    assert storage.jobs.finish(job.id, FAILED, error="boom")
    assert not storage.jobs.finish(job.id, SUCCEEDED)  # first final status wins
    assert storage.jobs.get(job.id).status == FAILED


def test_interrupt_running_jobs(storage: Storage):
    a = storage.jobs.create("train", "net", {})
    b = storage.jobs.create("train", "net", {})
    storage.jobs.start(a.id, None)
    assert storage.jobs.interrupt_running("restart") == [a.id]
    assert storage.jobs.get(a.id).status == INTERRUPTED
    assert storage.jobs.get(b.id).status == "queued"


def test_models_and_activation(storage: Storage):
    m1 = storage.models.insert(network="net", network_name="n", feature_names=["a"], theta=[-1.0], options={},
                              metrics={"x": 1})
    m2 = storage.models.insert(network="net", network_name="n", feature_names=["a"], theta=[-2.0], options={},
                              metrics={}, activate=False)
    assert storage.models.active_id("net") == m1
    assert storage.models.get(m1).active and not storage.models.get(m2).active
    storage.models.activate(m2)
    assert storage.models.active_id("net") == m2
    models, total = storage.models.page("net", 10, 0)
    assert total == 2 and [m.id for m in models] == [m2, m1]
    with pytest.raises(KeyError):
        storage.models.activate(999)
    raw = storage.db.con.execute("SELECT theta, feature_names FROM models WHERE id = ?", (m1,)).fetchone()
    assert json.loads(raw[0]) == [-1.0] and json.loads(raw[1]) == ["a"]  # plain JSON, never pickle


def test_complete_training_is_atomic_and_checks_the_job(storage: Storage):
    job = storage.jobs.create("train", "net", {})
    kwargs = dict(network_name="n", feature_names=["a"], theta=[-1.0], options={}, metrics={}, activate=True)
    assert storage.jobs.complete_training(job.id, **kwargs) is None  # not running: nothing written
    assert storage.models.page(None, 10, 0)[1] == 0
    storage.jobs.start(job.id, None)
    model_id = storage.jobs.complete_training(job.id, **kwargs)
    job = storage.jobs.get(job.id)
    assert job.status == SUCCEEDED and job.model_id == model_id
    assert storage.models.active_id("net") == model_id
    assert storage.jobs.get(job.id).status != RUNNING


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
