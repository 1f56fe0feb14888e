"""RoadNetwork.load_cached: one process builds, the others wait for its cache; the cache file is never half-written."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

from maxent_irl.roads import RoadNetwork
from tests.maxent_irl.roads.osm_files import CENTER, N_ARM, W_ARM, crossroads, write

ROOT = Path(__file__).resolve().parents[3]

# Each child counts its builds in a shared file, waits until every child is ready (so they ask
# for the cache at the same moment), and builds slowly, so the others must find the lock held.
CHILD = textwrap.dedent(
    """
    import json, logging, os, sys, time
    from pathlib import Path
    sys.path.insert(0, {root!r})
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    from maxent_irl.roads import RoadNetwork

    load = RoadNetwork.load.__func__

    def slow_load(cls, *args, **kwargs):
        with open({marks!r}, "a") as f:
            f.write(f"build {{os.getpid()}}\\n")
        time.sleep(1.5)
        return load(cls, *args, **kwargs)

    RoadNetwork.load = classmethod(slow_load)
    Path({ready!r}, str(os.getpid())).touch()
    while len(os.listdir({ready!r})) < {n}:
        time.sleep(0.01)
    net = RoadNetwork.load_cached({source!r}, {cache!r})
    print(json.dumps({{"fingerprint": net.fingerprint, "restricted": len(net.restricted_turns)}}))
    """
)


def test_concurrent_processes_build_once_and_share_the_cache(tmp_path: Path) -> None:
    ext = crossroads()
    ext.restriction(1, W_ARM, CENTER, N_ARM, restriction="no_left_turn")
    source = write(ext, tmp_path / "city.osm.pbf")
    cache = tmp_path / "cache" / "city.npz"
    marks, ready = tmp_path / "builds.txt", tmp_path / "ready"
    ready.mkdir()
    n = 3
    code = CHILD.format(root=str(ROOT), marks=str(marks), ready=str(ready), n=n, source=str(source), cache=str(cache))
    procs = [
        subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(n)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err[-2000:] for _, err in outs]
    results = [json.loads(out.strip().splitlines()[-1]) for out, _ in outs]
    assert marks.read_text().count("build") == 1  # one builder ...
    assert sum("another process is building" in err for _, err in outs) == n - 1  # ... the others waited
    assert len({r["fingerprint"] for r in results}) == 1 and results[0]["restricted"] == 1
    assert RoadNetwork.from_npz(cache).fingerprint == results[0]["fingerprint"]
    assert sorted(p.name for p in cache.parent.iterdir()) == ["city.npz", "city.npz.lock"]  # no temp file left


def test_a_cache_from_before_restrictions_is_rebuilt(tmp_path: Path) -> None:
    ext = crossroads()
    ext.restriction(2, W_ARM, CENTER, N_ARM, restriction="no_left_turn")
    source = write(ext, tmp_path / "city.osm.pbf")
    plain = RoadNetwork.load(write(crossroads(), tmp_path / "plain.osm.pbf"))
    cache = tmp_path / "city.npz"
    plain.save(cache)
    with np.load(cache) as z:  # what an earlier version wrote: no restricted_turns
        old = {k: z[k] for k in z.files if k != "restricted_turns"}
    np.savez_compressed(cache, **old)
    assert RoadNetwork.from_npz(cache).fingerprint == plain.fingerprint  # still loads on its own
    net = RoadNetwork.load_cached(source, cache)
    assert len(net.restricted_turns) == 1
    assert RoadNetwork.from_npz(cache).fingerprint == net.fingerprint != plain.fingerprint


def test_an_unwritable_cache_directory_is_not_fatal(tmp_path: Path) -> None:
    source = write(crossroads(), tmp_path / "city.osm.pbf")
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    net = RoadNetwork.load_cached(source, blocker / "city.npz")
    assert net.n_states == 16
