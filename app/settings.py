"""Service settings, read from ``ROUTEIRL_*`` environment variables (pydantic-settings).

Every field below is one environment variable: ``ROUTEIRL_<FIELD NAME IN CAPITALS>``.
The defaults start the service on the embedded default network with a SQLite file under
``./var``, which is what ``./scripts/serve`` relies on. docs/api.md carries the same table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["DEFAULT_NETWORK", "Settings"]

#: The value of ``ROUTEIRL_NETWORK`` that selects the network embedded in the package.
DEFAULT_NETWORK = "default"


class Settings(BaseSettings):
    """All knobs of the service; each one is documented by its ``description``."""

    model_config = SettingsConfigDict(env_prefix="ROUTEIRL_", extra="ignore", frozen=True)

    # --- where things live -------------------------------------------------------------------
    network: str = Field(
        DEFAULT_NETWORK,
        description="Road network: 'default' (embedded Andorra drive network), a path to an OpenStreetMap extract "
        "(.osm.pbf as Geofabrik or BBBike hand them out, or OSM XML .osm/.osm.bz2/.osm.gz), a GraphML file, a saved "
        "network (.npz), or a place name for osmnx (needs internet).",
    )
    data_dir: Path = Field(Path("var"), description="Directory for the database and other state; created on start.")
    database: Path | None = Field(
        None, description="SQLite database file. Default: <data_dir>/routeirl.sqlite3."
    )

    # --- HTTP --------------------------------------------------------------------------------
    host: str = Field("127.0.0.1", description="Interface ./scripts/serve and `routeirl serve` bind to.")
    port: int = Field(8000, ge=1, le=65535, description="TCP port ./scripts/serve and `routeirl serve` listen on.")
    api_key: SecretStr | None = Field(
        None, description="If set, write endpoints (POST/PUT/DELETE that change state) need it in X-API-Key."
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", description="Logging level.")
    keepalive_requests: int = Field(
        100,
        ge=0,
        description="About how many requests a keep-alive connection serves before the response says "
        "'Connection: close' (random, probability 1/N; 0 = never), so clients reconnect and spread over "
        "the API processes.",
    )
    tile_url: str = Field(
        "",
        description="Background map tiles of the web page, e.g. 'https://tile.openstreetmap.org/{z}/{x}/{y}.png' "
        "(mind the provider's usage policy). Empty: no tiles, only the road network (no internet is assumed).",
    )
    workers: int = Field(
        2,
        ge=1,
        description="API processes serving requests (uvicorn --workers; ./scripts/serve and `routeirl serve`). One of "
        "them runs the training jobs. Queries are CPU-bound, so about one per core.",
    )

    # --- limits ------------------------------------------------------------------------------
    max_body_bytes: int = Field(20_000_000, ge=1024, description="Largest request body accepted (413 above).")
    max_points_per_trip: int = Field(20_000, ge=2, description="Most GPS points in one uploaded trip (413 above).")
    max_points_per_request: int = Field(
        200_000, ge=2, description="Most GPS points in one upload, all trips together (413 above)."
    )
    max_trips_per_request: int = Field(2_000, ge=1, description="Most trips in one upload (413 above).")
    max_query_points: int = Field(
        2_000, ge=1, description="Most points in a query trace (destinations, route probability; 413 above)."
    )
    max_page_size: int = Field(500, ge=1, description="Largest `limit` of a list endpoint.")

    min_trip_points: int = Field(5, ge=2, description="Uploaded trips with fewer GPS points are rejected (too_short).")
    min_trip_length_m: float = Field(
        500.0, ge=0, description="Uploaded trips that drive less than this are rejected (too_short)."
    )

    # --- map matching and queries -----------------------------------------------------------
    snap_distance_m: float = Field(
        200.0, gt=0, description="A query point farther than this from every road is 'off the network' (422)."
    )
    max_destinations: int = Field(
        500, ge=1, description="Cap on candidate destinations: the most frequent destinations of stored trips."
    )
    precompute_mb: float = Field(
        256.0,
        ge=0,
        description="Memory budget (MB) for the precomputed log Z(segment, candidate) matrix that makes destination "
        "queries fast; above it (or 0) each query solves instead.",
    )
    default_top: int = Field(10, ge=1, description="Destinations returned when `top` is not given.")
    max_alternatives: int = Field(10, ge=0, description="Most sampled alternative routes a route query may ask for.")
    route_samples: int = Field(
        50, ge=1, description="Paths sampled to find distinct alternative routes (more finds rarer ones)."
    )

    # --- training ----------------------------------------------------------------------------
    min_training_trips: int = Field(5, ge=1, description="Fewest stored trips a training job accepts (409 below).")
    max_iter: int = Field(200, ge=1, description="Default maximum optimizer iterations of a training job.")
    default_regularization: float = Field(
        1e-3,
        ge=0,
        description="L2 penalty of a training job that gives none, on the per-trip mean log-likelihood: small enough "
        "to leave well-supported weights as they are, large enough to keep weakly supported ones finite.",
    )
    demo: Literal["auto", "always", "never"] = Field(
        "auto",
        description="Train a demo model from simulated trips when the database has no trips and no model: "
        "'auto' only on the default network, 'always' on any network, 'never' to skip.",
    )
    demo_trips: int = Field(300, ge=5, description="Number of simulated trips of the demo model.")
    demo_seed: int = Field(0, description="Random seed of the demo simulation and training split.")
    worker_threads: int | None = Field(
        None,
        ge=1,
        description="Solver threads of the training worker. Default: "
        "CPU count - 1, so one core is left for queries.",
    )
    worker_nice: int = Field(
        10, ge=0, le=19, description="Niceness added to the training worker, so queries win the CPU when it is short."
    )
    worker_poll_s: float = Field(
        1.0, gt=0, description="How often the API checks the worker and the active model (seconds)."
    )

    @property
    def database_path(self) -> Path:
        """The SQLite file actually used (``database`` or its default under ``data_dir``)."""
        return self.database if self.database is not None else self.data_dir / "routeirl.sqlite3"

    @property
    def is_default_network(self) -> bool:
        return self.network.strip().lower() == DEFAULT_NETWORK

    @property
    def demo_enabled(self) -> bool:
        return self.demo == "always" or (self.demo == "auto" and self.is_default_network)

    def worker_json(self) -> str:
        """These settings as JSON for the worker process (without the API key it does not need)."""
        return self.model_dump_json(exclude={"api_key"})
