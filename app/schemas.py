"""Request and response bodies (pydantic v2). Coordinates are ``[lon, lat]`` (GeoJSON order).

Responses that are GeoJSON are described by :class:`FeatureCollection` with extra members
(``model_version``, ``network``...), which GeoJSON allows as "foreign members".
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, Strict, model_validator

__all__ = [
    "Coordinate",
    "DestinationsQuery",
    "ErrorOut",
    "FeatureCollection",
    "IngestOut",
    "JobOut",
    "ModelOut",
    "NetworkOut",
    "Page",
    "RouteProbabilityIn",
    "TrainRequest",
    "TripIn",
    "TripsIn",
]



def _check_lonlat(value: list[float]) -> list[float]:
    lon, lat = value[0], value[1]
    if not -180.0 <= lon <= 180.0:
        raise ValueError(f"longitude {lon} is outside [-180, 180] (coordinates are [lon, lat])")
    if not -90.0 <= lat <= 90.0:
        raise ValueError(f"latitude {lat} is outside [-90, 90] (coordinates are [lon, lat])")
    return value


#: Numbers and booleans of request bodies are taken as they are typed: ``true`` is no number, ``"1"`` no
#: number and ``1`` no boolean, as the OpenAPI document says (pydantic would convert them otherwise).
def _json_integer(value: Any) -> Any:
    """JSON's integers: ``2`` and ``2.0`` (JSON Schema's ``integer``), never ``true`` or ``"2"``."""
    if isinstance(value, bool | str | bytes):
        raise ValueError("Input should be an integer")
    return value


SInt = Annotated[int, BeforeValidator(_json_integer)]
SFloat = Annotated[float, Strict()]
SBool = Annotated[bool, Strict()]

#: ``[lon, lat]``; a third value (elevation) is accepted and ignored, as GeoJSON allows it.
Coordinate = Annotated[
    list[Annotated[float, Strict(), Field(allow_inf_nan=False)]],
    Field(min_length=2, max_length=3, description="[lon, lat] (WGS84)",
          json_schema_extra={"prefixItems": [{"type": "number", "minimum": -180, "maximum": 180},
                                             {"type": "number", "minimum": -90, "maximum": 90}]}),
    AfterValidator(_check_lonlat),
]
SegmentId = tuple[SInt, SInt, SInt]

#: Most points (or segments) a query body's schema accepts; ROUTEIRL_MAX_QUERY_POINTS (at most this) applies after.
#: A schema limit is checked before the items are, so a body of 100,000 bad points costs one error, not 100,000.
MAX_QUERY_POINTS_CEILING = 20_000


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- errors ---------------------------------------------------------------------------------------
class ErrorOut(BaseModel):
    code: str = Field(description="Stable machine-readable error code, e.g. 'point_off_network'.")
    message: str = Field(description="Human-readable explanation.")
    details: Any = Field(None, description="Structured context: for validation errors one entry per field.")


# --- shared ---------------------------------------------------------------------------------------
class NetworkOut(BaseModel):
    name: str
    fingerprint: str


class Page(BaseModel):
    total: int
    limit: int
    offset: int
    items: list[Any]


class FeatureCollection(BaseModel):
    """A GeoJSON FeatureCollection; query answers add foreign members such as ``model_version``."""

    model_config = ConfigDict(extra="allow")
    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[dict[str, Any]]


# --- trajectories ---------------------------------------------------------------------------------
class TripIn(_In):
    """One GPS trip: points in driving order, optional timestamps (one per point)."""

    id: str | None = Field(None, max_length=200, description="Your name for the trip; echoed back.")
    points: list[Coordinate] = Field(min_length=2, description="[[lon, lat], ...] in driving order.")
    times: list[SFloat | datetime] | None = Field(
        None, description="One timestamp per point: seconds (e.g. UNIX time) or ISO 8601 strings."
    )

    @model_validator(mode="after")
    def _times_match_points(self) -> TripIn:
        if self.times is not None and len(self.times) != len(self.points):
            raise ValueError(f"times has {len(self.times)} entries for {len(self.points)} points")
        return self

    def time_seconds(self) -> list[float] | None:
        if self.times is None:
            return None
        return [t.timestamp() if isinstance(t, datetime) else float(t) for t in self.times]


class TripsIn(_In):
    trips: list[TripIn] = Field(min_length=1)


class AcceptedTrip(BaseModel):
    id: int = Field(description="The stored trip's id (GET /v1/trajectories/{id}).")
    trace_id: str | None
    n_points: int
    n_segments: int = Field(description="Road segments of the map-matched path.")
    unmatched_points: int = 0


class RejectedTrip(BaseModel):
    trace_id: str | None
    index: int = Field(description="Position of the trip in the upload (0-based).")
    reason: str = Field(description="Short code: e.g. 'too_few_points', 'off_network', 'no_path'.")
    message: str


class DeletedOut(BaseModel):
    deleted: int = Field(description="Trips deleted.")


class IngestOut(BaseModel):
    accepted: list[AcceptedTrip]
    rejected: list[RejectedTrip]
    network: NetworkOut
    model_version: int | None


class TripSummary(BaseModel):
    id: int
    trace_id: str | None
    source: str
    created_at: str
    tag: str | None
    start_time: float | None = Field(description="UNIX seconds of the first GPS fix (null without times).")
    n_points: int
    n_segments: int
    origin_segment: SegmentId | None
    destination_segment: SegmentId | None


# --- training / models / jobs ---------------------------------------------------------------------
TagName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$",
                                description="A label given at upload: letters, digits and . _ : -")]


class TripSelectionIn(_In):
    """Which stored trips to train on; every criterion given must hold (omit one for 'any')."""

    ids: list[Annotated[SInt, Field(ge=1, le=2**53)]] | None = Field(
        None, max_length=100_000, description="These trips (ids of GET /v1/trajectories).")
    tags: list[TagName] | None = Field(None, max_length=100, description="Trips uploaded with one of these tags.")
    since: datetime | SFloat | None = Field(
        None, description="Trips that started at or after this time (ISO 8601 or UNIX seconds; trips without GPS "
        "times count from their upload).")
    until: datetime | SFloat | None = Field(None, description="Trips that started before this time.")

    def as_options(self) -> dict[str, Any]:
        def seconds(t: datetime | float | None) -> float | None:
            return None if t is None else t.timestamp() if isinstance(t, datetime) else float(t)

        return {"ids": self.ids, "tags": self.tags, "since": seconds(self.since), "until": seconds(self.until)}


class TrainRequest(_In):
    """Options of a training job; every field has a default, so ``{}`` is a valid body."""

    features: list[str] | None = Field(
        None, min_length=1, description="Subset of the network's features to learn weights for (default: all)."
    )
    trips: TripSelectionIn | None = Field(None, description="Train on these stored trips only (default: all).")
    regularization: SFloat | None = Field(
        None, ge=0.0, le=1e6, description="L2 penalty on the weights (default ROUTEIRL_DEFAULT_REGULARIZATION).")
    l1: SFloat = Field(0.0, ge=0.0, le=1e6, description="L1 penalty on the weights (sparse models).")
    heldout_fraction: SFloat = Field(0.2, ge=0.0, le=0.9, description="Share of trips kept out for metrics.")
    max_iter: SInt | None = Field(None, ge=1, le=10_000, description="Optimizer iterations (default from settings).")
    seed: SInt = Field(0, ge=0, description="Seed of the train/held-out split.")
    activate: SBool = Field(True, description="Make the model active when training succeeds.")


class JobProgress(BaseModel):
    model_config = ConfigDict(extra="allow")
    iteration: int | None = None
    log_likelihood: float | None = None
    grad_norm: float | None = None
    elapsed_s: float | None = None
    stage: str | None = None
    fraction: float | None = Field(None, ge=0, le=1, description="Share of the job done, 0..1 (for a progress bar; "
                                   "1.0 once the model is stored)")


class JobOut(BaseModel):
    id: int
    kind: str
    status: Literal["queued", "running", "succeeded", "failed", "interrupted", "cancelled"]
    options: dict[str, Any]
    progress: JobProgress | None
    error: str | None
    model_id: int | None
    created_at: str
    started_at: str | None
    finished_at: str | None
    links: dict[str, str]


class FeatureWeight(BaseModel):
    name: str
    status: Literal["learned", "absent", "not_trained"] = Field(
        description="learned; absent: no training trip used it, so it was left out of the fit (weight 0); "
        "not_trained: excluded by the job's `features` option.")
    weight: float | None = Field(description="Reward per unit of the feature (negative = a cost); null unless learned.")
    standard_error: float | None = Field(description="Standard error of the weight; null unless known and finite.")
    seconds: float | None = Field(description="The weight as equivalent seconds of driving (per km for km_*).")


class ModelOut(BaseModel):
    id: int
    active: bool
    network: NetworkOut
    created_at: str
    job_id: int | None
    weights: dict[str, float] = Field(description="Learned weight per feature (reward = weights . features).")
    features: list[FeatureWeight] = Field(description="Every feature of the network: weight, standard error, status.")
    seconds_per_km: dict[str, float] | None = Field(
        None, description="The weights as equivalent seconds of driving (per km for per-km features)."
    )
    options: dict[str, Any]
    metrics: dict[str, Any]


# --- queries --------------------------------------------------------------------------------------
class DestinationsQuery(_In):
    coordinates: list[Coordinate] = Field(min_length=1, max_length=MAX_QUERY_POINTS_CEILING,
                                          description="The driven part of the trip, [[lon, lat], ...].")
    top: SInt | None = Field(None, ge=1, le=10_000, description="Number of destinations returned.")
    full: SBool = Field(False, description="Also list the segments holding 99.9 % of the posterior.")
    heatmap: SBool = Field(False, description="Also return the posterior as a heat map of segments.")


class RouteProbabilityIn(_In):
    """A route given either as GPS points (map-matched) or as segment ids ``[u, v, key]``."""

    # exactly one of the two, as the OpenAPI document states it (the validator below checks the same)
    model_config = ConfigDict(extra="forbid", json_schema_extra={"oneOf": [
        {"required": ["points"], "properties": {"points": {"type": "array"}, "segments": {"type": "null"}}},
        {"required": ["segments"], "properties": {"segments": {"type": "array"}, "points": {"type": "null"}}},
    ]})

    points: list[Coordinate] | None = Field(None, min_length=2, max_length=MAX_QUERY_POINTS_CEILING)
    segments: list[SegmentId] | None = Field(None, min_length=1, max_length=MAX_QUERY_POINTS_CEILING)

    @model_validator(mode="after")
    def _exactly_one(self) -> RouteProbabilityIn:
        if (self.points is None) == (self.segments is None):
            raise ValueError("give exactly one of 'points' or 'segments'")
        return self


class HealthOut(BaseModel):
    status: Literal["ok"]
    version: str


class ReadyOut(BaseModel):
    ready: bool
    model_version: int | None
    network: NetworkOut | None
    trips: int | None = None
    reason: str | None = None
