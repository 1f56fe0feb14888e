"""Storage: schema on start, WAL + synchronous=FULL, trips/jobs/models round trips, atomic completion."""

from __future__ import annotations

import json
import sqlite3

import pytest

from app.storage import FAILED, INTERRUPTED, RUNNING, SCHEMA_VERSION, SUCCEEDED, NewTrip, Storage


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
    assert storage.trips.version() == 1  # one insert call
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


def test_trips_are_deleted_tagged_and_selected(storage: Storage):
    from app.storage import TripSelection

    def trip(path: list[int], start: float | None, tag: str | None) -> NewTrip:
        times = None if start is None else [start, start + 10.0]
        return NewTrip(points=[[1.0, 2.0], [1.1, 2.1]], path=path, times=times, tag=tag)

    ids = storage.trips.insert("net", [trip([1, 2], 100.0, "a"), trip([2, 3], 200.0, "b"), trip([3, 4], None, "a")])
    storage.trips.insert("other", [trip([1, 2], 150.0, "a")])
    before = storage.trips.version()
    assert storage.trips.paths("net", TripSelection(tags=("a",)))[0] == [ids[0], ids[2]]
    assert storage.trips.paths("net", TripSelection(ids=(ids[1], 999)))[0] == [ids[1]]
    assert storage.trips.paths("net", TripSelection(since=150.0, until=250.0))[0] == [ids[1]]
    # without GPS times a trip counts from its upload (now, far after 250)
    assert storage.trips.paths("net", TripSelection(since=1e9))[0] == [ids[2]]
    assert storage.trips.paths("net", TripSelection(tags=("a",), since=50.0, until=150.0))[0] == [ids[0]]
    assert storage.trips.count_selected("net", TripSelection(tags=())) == 0
    assert storage.trips.get(ids[0]).tag == "a" and storage.trips.get(ids[0]).start_time == 100.0
    assert storage.trips.page("net", 10, 0, tag="b")[1] == 1
    assert storage.trips.delete(ids[1]) and not storage.trips.delete(ids[1])
    assert storage.trips.get(ids[1]) is None and storage.trips.version() == before + 1
    assert storage.trips.delete_tagged("net", "a") == 2 and storage.trips.count("net") == 0
    assert storage.trips.count("other") == 1  # other networks keep theirs


def test_a_version_1_database_is_migrated(tmp_path):
    """A database written by the previous schema gets the new columns, its trips' start times, and works on."""
    path = tmp_path / "old.sqlite3"
    con = sqlite3.connect(path)
    con.executescript("""
        CREATE TABLE trips (id INTEGER PRIMARY KEY AUTOINCREMENT, network TEXT NOT NULL, trace_id TEXT,
            source TEXT NOT NULL, created_at TEXT NOT NULL, n_points INTEGER NOT NULL, points TEXT NOT NULL,
            times TEXT, path TEXT NOT NULL, origin INTEGER NOT NULL, destination INTEGER NOT NULL);
        INSERT INTO trips (network, trace_id, source, created_at, n_points, points, times, path, origin, destination)
            VALUES ('net', 'x', 'upload', '2026-01-01T00:00:00.000Z', 2, '[[0,0],[0,1]]', '[17.5, 27.5]', '[1,2]',
                    1, 2);
        PRAGMA user_version = 1;
    """)
    con.close()
    storage = Storage(path)
    try:
        trip = storage.trips.get(1)
        assert trip is not None and trip.start_time == 17.5 and trip.tag is None
        assert storage.db.con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
        storage.trips.insert("net", [NewTrip(points=[[0, 0], [0, 1]], path=[2, 3], tag="t")])
        assert storage.trips.count("net") == 2 and storage.trips.version() == 1
    finally:
        storage.close()
    Storage(path).close()  # opening it again changes nothing
