"""Matching many traces at once: failures as values, and the function a Dask worker runs on a batch.

A batch is matched in one call so that one bad trace cannot sink the others (its failure
comes back as a :class:`MatchFailure` with the same ``reason`` the exception carries), and
so that a cluster can take batches of an upload: :func:`match_on_worker` builds the
worker's :class:`~maxent_irl.roads.matching.MapMatcher` once per network and reuses it
for every batch that worker gets (the network travels to each worker once).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

from maxent_irl.roads.exceptions import InvalidTraceError, MapMatchingError
from maxent_irl.roads.matching import MapMatcher, MatchResult
from maxent_irl.roads.network import RoadNetwork
from maxent_irl.roads.trace import Trace

__all__ = ["MatchFailure", "match_all", "match_on_worker"]

#: Matchers a worker process built, by network fingerprint (a worker serves one service's network).
_MATCHERS: dict[str, MapMatcher] = {}
_MATCHERS_LOCK = threading.Lock()
_MAX_MATCHERS = 4


@dataclass(frozen=True)
class MatchFailure:
    """Why a trace was not matched: ``kind`` ``"invalid_trace"`` or ``"not_matched"``, the ``reason`` and message."""

    kind: str
    reason: str
    message: str

    def error(self) -> InvalidTraceError | MapMatchingError:
        """The exception :meth:`MapMatcher.match` would have raised."""
        cls = InvalidTraceError if self.kind == "invalid_trace" else MapMatchingError
        return cls(self.message, reason=self.reason)


def match_all(matcher: MapMatcher, traces: Sequence[Trace]) -> list[MatchResult | MatchFailure]:
    """Each trace's match, or its failure, in input order."""
    out: list[MatchResult | MatchFailure] = []
    for trace in traces:
        try:
            out.append(matcher.match(trace))
        except InvalidTraceError as exc:
            out.append(MatchFailure("invalid_trace", exc.reason, str(exc)))
        except MapMatchingError as exc:
            out.append(MatchFailure("not_matched", exc.reason, str(exc)))
    return out


def match_on_worker(net: RoadNetwork, traces: Sequence[Trace]) -> list[MatchResult | MatchFailure]:
    """:func:`match_all` with this process's matcher for ``net`` (built on first use, default parameters)."""
    with _MATCHERS_LOCK:
        matcher = _MATCHERS.get(net.fingerprint)
        if matcher is None:
            if len(_MATCHERS) >= _MAX_MATCHERS:
                _MATCHERS.clear()
            matcher = _MATCHERS[net.fingerprint] = MapMatcher(net)
    return match_all(matcher, traces)
