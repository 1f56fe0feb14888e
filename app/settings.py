"""Service settings, read from ``ROUTEIRL_*`` environment variables (pydantic-settings).

Every field below is one environment variable: ``ROUTEIRL_<FIELD NAME IN CAPITALS>``.
The defaults start the service on the embedded default network with a SQLite file under
``./var``, which is what ``./scripts/serve`` relies on. docs/api.md carries the same table.
"""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

__all__ = ["DEFAULT_NETWORK", "Settings", "is_loopback_host"]

#: The value of ``ROUTEIRL_NETWORK`` that selects the network embedded in the package.
DEFAULT_NETWORK = "default"


def is_loopback_host(host: str) -> bool:
    """Whether a bind address or host name stays on this machine."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


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
        None, description="If set, write endpoints (POST/PUT/DELETE that change state) and reads of stored trips "
        "(their raw GPS points and times) need it in X-API-Key."
    )
    generate_api_key: bool = Field(
        False,
        description="When no key is set, generate one at start, keep it in <data_dir>/api_key (0600) for later "
        "starts, and log it once (the Docker image sets this).",
    )
    allow_insecure: bool = Field(
        False,
        description="Serve on an interface beyond localhost without an API key. Without it such a start is "
        "refused, since anyone who reaches the port could upload, train, activate and read raw GPS.",
    )
    allowed_hosts: Annotated[list[str] | None, NoDecode] = Field(
        None,
        description="Host names the service answers to (Host header; against DNS rebinding), and origins allowed "
        "to send state-changing requests besides the service's own. Default: localhost, 127.0.0.1, [::1] and "
        "ROUTEIRL_HOST; any host when ROUTEIRL_HOST is a wildcard (0.0.0.0, ::). '*' allows any. "
        "JSON list or comma-separated.",
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
    timeout_keep_alive_s: float = Field(
        5.0, gt=0, description="An idle keep-alive connection is closed after this many seconds (uvicorn's)."
    )
    timeout_headers_s: float = Field(
        10.0,
        gt=0,
        description="A request's line and headers must arrive within this many seconds of the connection (or of "
        "the request's first byte on a kept-alive one); else 408 and the connection is closed.",
    )
    timeout_body_s: float = Field(
        60.0, gt=0, description="A request body must arrive whole within this many seconds of its headers (408)."
    )
    timeout_body_idle_s: float = Field(
        10.0, gt=0, description="A request body whose next bytes take longer than this many seconds is dropped (408)."
    )
    max_header_bytes: int = Field(
        65_536, ge=1024, description="Largest request line + headers accepted (431 above)."
    )
    workers: int = Field(
        2,
        ge=1,
        description="API processes serving requests (uvicorn --workers; ./scripts/serve and `routeirl serve`). One of "
        "them runs the training jobs. Queries are CPU-bound, so about one per core.",
    )

    # --- limits ------------------------------------------------------------------------------
    max_body_bytes: int = Field(
        20_000_000, ge=1024, description="Largest upload body accepted (POST /v1/trajectories; 413 above)."
    )
    max_json_body_bytes: int = Field(
        2_000_000,
        ge=1024,
        description="Largest body of every other endpoint (queries, training options; 413 above): 2 MB holds "
        "100,000 trip ids of a training selection.",
    )
    max_points_per_trip: int = Field(20_000, ge=2, description="Most GPS points in one uploaded trip (413 above).")
    max_points_per_request: int = Field(
        200_000, ge=2, description="Most GPS points in one upload, all trips together (413 above)."
    )
    max_trips_per_request: int = Field(2_000, ge=1, description="Most trips in one upload (413 above).")
    max_query_points: int = Field(
        2_000,
        ge=1,
        le=20_000,
        description="Most points in a query trace (destinations, route probability; 413 above; at most 20,000, "
        "the ceiling of the request schemas).",
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
    default_top: int = Field(10, ge=1, description="Destinations returned when `top` is not given.")
    max_alternatives: int = Field(10, ge=0, description="Most sampled alternative routes a route query may ask for.")
    route_samples: int = Field(
        50, ge=1, description="Paths sampled to find distinct alternative routes (more finds rarer ones)."
    )

    # --- training ----------------------------------------------------------------------------
    max_unfinished_jobs: int = Field(
        10,
        ge=1,
        description="Most training jobs queued or running at once, for the whole service; beyond it POST /v1/models "
        "answers 429 too_many_jobs with Retry-After.",
    )
    idempotency_ttl_s: float = Field(
        86_400.0,
        gt=0,
        description="How long the answer to a request with an Idempotency-Key is kept for its retries (seconds).",
    )
    min_training_trips: int = Field(5, ge=1, description="Fewest stored trips a training job accepts (409 below).")
    max_iter: int = Field(200, ge=1, description="Default maximum optimizer iterations of a training job.")
    default_regularization: float = Field(
        1e-3,
        ge=0,
        description="L2 penalty of a training job that gives none, on the per-trip mean log-likelihood: small enough "
        "to leave well-supported weights as they are, large enough to keep weakly supported ones finite.",
    )
    costs_only: bool = Field(
        True,
        description="Training keeps every segment and turn a cost (no transition's learned reward above 0), as "
        "Ziebart et al. did: a road class seen on a few kilometres cannot learn that driving it pays.",
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
    # --- a Dask cluster (optional) ------------------------------------------------------------
    dask_scheduler: str | None = Field(
        None,
        description="Address of a Dask scheduler (`tcp://host:8786`). When set, training jobs solve the "
        "likelihood's destinations on its workers, and uploads of at least `dask_min_traces` traces are "
        "map-matched there. Unset (the default): everything runs on this machine and Dask is not imported.",
    )
    dask_timeout_s: float = Field(
        10.0, gt=0, description="Seconds to wait for the Dask scheduler and a first worker before giving up."
    )
    dask_min_traces: int = Field(
        200, ge=1, description="Uploads with at least this many traces are map-matched on the Dask cluster."
    )
    worker_nice: int = Field(
        10, ge=0, le=19, description="Niceness added to the training worker, so queries win the CPU when it is short."
    )
    worker_poll_s: float = Field(
        1.0, gt=0, description="How often the API checks the worker and the active model (seconds)."
    )

    @field_validator("dask_scheduler", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        """An empty variable (docker compose's ``${ROUTEIRL_DASK_SCHEDULER:-}``) means no cluster."""
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: object) -> object:
        """``a,b`` or a JSON list from the environment."""
        if isinstance(value, str):
            text = value.strip()
            if not text:
                return None  # unset (e.g. an empty variable of docker compose): the default
            return json.loads(text) if text.startswith("[") else [h.strip() for h in text.split(",") if h.strip()]
        return value

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

    @property
    def is_loopback(self) -> bool:
        """Whether ``host`` reaches only this machine (localhost, 127.0.0.0/8, ::1)."""
        return is_loopback_host(self.host)

    @property
    def has_api_key(self) -> bool:
        return self.api_key is not None and bool(self.api_key.get_secret_value())

    def insecure_exposure(self) -> str | None:
        """Why starting with these settings would expose the service, or ``None`` when it is fine."""
        if self.is_loopback or self.has_api_key or self.allow_insecure:
            return None
        return (f"refusing to serve on {self.host} without an API key: anyone who reaches the port could upload, "
                "train, activate models and read raw GPS. Set ROUTEIRL_API_KEY (or ROUTEIRL_GENERATE_API_KEY=1), "
                "bind ROUTEIRL_HOST=127.0.0.1, or set ROUTEIRL_ALLOW_INSECURE=1 to serve openly anyway.")

    def host_allow_list(self) -> frozenset[str] | None:
        """Host names accepted in ``Host`` (lower case, no port); ``None`` = any."""
        if self.allowed_hosts is not None:
            names = {h.strip().lower().strip("[]") for h in self.allowed_hosts if h.strip()}
            return None if "*" in names else frozenset(names)
        if self.host.strip().strip("[]") in ("0.0.0.0", "::", ""):
            return None
        return frozenset({"localhost", "127.0.0.1", "::1", self.host.strip().lower().strip("[]")})

    def worker_json(self) -> str:
        """These settings as JSON for the worker process (without the API key it does not need)."""
        return self.model_dump_json(exclude={"api_key"})
