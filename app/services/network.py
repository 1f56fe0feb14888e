"""Loading the road network named by the settings, with a disk cache under ``data_dir``.

Parsing OSM XML with osmnx takes seconds (minutes for a large city); the built network
saved as ``.npz`` reloads in a fraction of a second. The cache lives in
``<data_dir>/cache`` (the Docker volume), is keyed by the source file's content hash,
and is rebuilt whenever it cannot be read or its fingerprint no longer matches (e.g. after
a change of the feature code). The worker process reuses it, so a training job does not
parse the OSM file again. Loaded networks are also memoized per process.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from app.settings import Settings

if TYPE_CHECKING:
    from maxent_irl.roads import RoadNetwork

__all__ = ["bundled_default_path", "load_network", "network_label"]

log = logging.getLogger(__name__)

_REPO_DATA = Path(__file__).resolve().parent.parent / "data"
_memo: dict[str, RoadNetwork] = {}
_lock = threading.Lock()


def bundled_default_path() -> Path:
    """The embedded default network's OSM file (the roads layer's, else the repository's copy)."""
    from maxent_irl.roads import DEFAULT_OSM_PATH

    path = Path(DEFAULT_OSM_PATH)
    return path if path.is_file() else _REPO_DATA / path.name


def _source(settings: Settings) -> tuple[str | Path, str]:
    """``(source, name)`` of the configured network."""
    if settings.is_default_network:
        return bundled_default_path(), "andorra"
    raw = settings.network.strip()
    path = Path(raw).expanduser()
    if path.is_file():
        return path, path.name.split(".")[0]
    return raw, raw  # a place name for osmnx (needs internet)


def _cache_file(settings: Settings, source: str | Path, name: str) -> Path:
    h = hashlib.sha256()
    if isinstance(source, Path):
        h.update(source.read_bytes())
    else:
        h.update(source.encode())
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in name)[:40] or "network"
    return settings.data_dir / "cache" / f"{safe}-{h.hexdigest()[:16]}.npz"


def _build(settings: Settings) -> RoadNetwork:
    from maxent_irl.roads import RoadNetwork

    source, name = _source(settings)
    if isinstance(source, Path) and source.suffix == ".npz":
        return RoadNetwork.from_npz(source)
    return RoadNetwork.load_cached(source, _cache_file(settings, source, name), name=name)


def load_network(settings: Settings) -> RoadNetwork:
    """The :class:`RoadNetwork` of ``settings.network`` ('default', a file, or a place name)."""
    key = settings.network.strip()
    with _lock:
        net = _memo.get(key)
        if net is None:
            t0 = time.perf_counter()
            net = _build(settings)
            log.info(
                "network %s: %d segments, %d turns, fingerprint %s (%.2f s)",
                net.name,
                net.mdp.n_states,
                net.mdp.n_transitions,
                net.fingerprint,
                time.perf_counter() - t0,
            )
            _memo[key] = net
    return net


def network_label(net: RoadNetwork) -> str:
    """``name@fingerprint``: what the ``X-RouteIRL-Network`` header names."""
    return f"{net.name}@{net.fingerprint}"
