"""OpenStreetMap turn restrictions, for a car, as forbidden sequences of road segments.

Three steps, each testable on its own:

1. :func:`parse_restriction`: a ``type=restriction`` relation's tags and members -> a
   :class:`TurnRestriction` for cars, or the reason it does not apply (restrictions for
   other vehicles only, ``except=`` naming cars, timed or conditional ones, malformed ones).
2. :func:`resolve`: -> the forbidden *node paths* ``[a, via..., b]`` of the unsimplified
   drive graph (one per forbidden way to leave the via node; ``only_*`` forbids every other
   exit). A turn is identified by its nodes, so a forbidden turn is forbidden whichever
   of two ways digitized on the same nodes carries it.
3. :func:`segment_chains`: -> the same paths as chains of simplified segments ``(u, v, key)``
   (one segment can hold several ways, one way several segments). A chain of one
   segment is moot (the via node was simplified away: no junction, no turn); a chain of
   two is one forbidden transition; a chain of three or more (via ways) is a forbidden
   *sequence*, which :func:`forbidden_transitions` removes only where that is exact for
   traffic passing through (see there), and otherwise leaves, counting it.

What a first-order MDP over segments cannot say exactly, and why it is skipped rather
than over-approximated: forbidding the sequence F -> V -> T by removing V -> T would also
forbid every legal F' -> V -> T; not forbidding it keeps a few illegal routes possible,
which is the smaller error for learning route preferences, and is logged.
"""

from __future__ import annotations

import itertools
import logging
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
import numpy as np

__all__ = [
    "CAR_MODES",
    "RESTRICTION_VALUES",
    "TurnRestriction",
    "forbidden_transitions",
    "parse_restriction",
    "resolve",
    "restriction_chains",
    "segment_chains",
]

logger = logging.getLogger(__name__)

#: Access modes that include a private car, most specific first (OSM's vehicle hierarchy).
CAR_MODES: tuple[str, ...] = ("motorcar", "motor_vehicle", "vehicle")
PROHIBITORY = ("no_left_turn", "no_right_turn", "no_straight_on", "no_u_turn", "no_entry", "no_exit")
MANDATORY = ("only_left_turn", "only_right_turn", "only_straight_on", "only_u_turn")
#: ``restriction`` values understood; ``no_*`` forbid from -> to, ``only_*`` every other exit.
RESTRICTION_VALUES: tuple[str, ...] = PROHIBITORY + MANDATORY
_TIMED_KEYS = ("day_on", "day_off", "hour_on", "hour_off")

Segment = tuple[int, int, int]


@dataclass(frozen=True)
class TurnRestriction:
    """A turn restriction that applies to cars: ``value`` from ``from_ways`` via a node or ways to ``to_ways``."""

    relation_id: int
    value: str
    from_ways: tuple[int, ...]
    to_ways: tuple[int, ...]
    via_node: int | None = None
    via_ways: tuple[int, ...] = field(default=())

    @property
    def mandatory(self) -> bool:
        return self.value.startswith("only_")


def parse_restriction(
    relation_id: int, tags: Mapping[str, str], members: Iterable[tuple[str, int, str]]
) -> TurnRestriction | str | None:
    """The car restriction of one relation, a short reason it does not apply to cars, or ``None`` if not one.

    ``members`` are ``(type, ref, role)`` with type ``"n"``, ``"w"`` or ``"r"``. The value
    is taken from ``restriction:motorcar``, else ``restriction:motor_vehicle``, else
    ``restriction:vehicle``, else ``restriction``; in the last three cases an ``except``
    naming a car mode exempts cars. A relation carrying only ``restriction:<other mode>``
    (``hgv``, ``bus``, ...) does not apply to cars. Timed (``day_on``/``hour_on``) and
    ``restriction:conditional``-only relations are not applied (the network is static).
    """
    rtype = tags.get("type", "")
    if rtype != "restriction" and not rtype.startswith("restriction:"):
        return None
    if rtype.startswith("restriction:") and rtype.split(":", 1)[1] not in CAR_MODES:
        return "other_vehicles"
    value = None
    for mode in CAR_MODES:
        if f"restriction:{mode}" in tags:
            value, source = tags[f"restriction:{mode}"], mode
            break
    else:
        if "restriction" in tags:
            value, source = tags["restriction"], "all"
    if value is None:
        if any(k.startswith("restriction:") and k != "restriction:conditional" for k in tags):
            return "other_vehicles"
        return "conditional" if "restriction:conditional" in tags else "malformed"
    if source != "motorcar":
        exempt = {e.strip() for e in tags.get("except", "").split(";")}
        if exempt & set(CAR_MODES):
            return "except_car"
    if any(k in tags for k in _TIMED_KEYS):
        return "timed"
    value = value.strip()
    if value not in RESTRICTION_VALUES:
        return "unknown_value"
    roles: dict[str, list[tuple[str, int]]] = {"from": [], "via": [], "to": []}
    for mtype, ref, role in members:
        if role in roles:
            roles[role].append((mtype, int(ref)))
    frm, via, to = roles["from"], roles["via"], roles["to"]
    if not frm or not to or not via or any(t != "w" for t, _ in frm + to):
        return "malformed"
    if (len(frm) > 1 and value != "no_entry") or (len(to) > 1 and value != "no_exit"):
        return "malformed"
    via_types = {t for t, _ in via}
    if via_types == {"n"} and len(via) == 1:
        return TurnRestriction(
            relation_id, value, tuple(r for _, r in frm), tuple(r for _, r in to), via_node=via[0][1]
        )
    if via_types == {"w"}:
        return TurnRestriction(
            relation_id, value, tuple(r for _, r in frm), tuple(r for _, r in to), via_ways=tuple(r for _, r in via)
        )
    return "malformed"


def _way_steps(G: nx.MultiDiGraph, node: int, way: int, out: bool) -> list[int]:
    """Neighbours ``x`` with a raw edge ``x -> node`` (``out=False``) or ``node -> x`` of way ``way``."""
    edges = G.out_edges(node, data="osmid") if out else G.in_edges(node, data="osmid")
    return sorted({(v if out else u) for u, v, osmid in edges if osmid == way})


def _via_way_path(
    G: nx.MultiDiGraph, way_nodes: Mapping[int, Sequence[int]], r: TurnRestriction
) -> list[int] | str:
    """Raw node path ``[J1, ..., Jk]`` along the via ways, from the from way's junction to the to way's."""
    chain = [r.from_ways[0], *r.via_ways, r.to_ways[0]]
    if any(w not in way_nodes for w in chain):
        return "way_not_in_network"
    junctions = []
    for a, b in itertools.pairwise(chain):
        shared = set(way_nodes[a]) & set(way_nodes[b])
        if len(shared) > 1:  # prefer the via way's ends
            ends = {way_nodes[w][i] for w in (a, b) if w in r.via_ways for i in (0, -1)}
            shared &= ends
        if len(shared) != 1:
            return "ambiguous"
        junctions.append(shared.pop())
    path = [junctions[0]]
    for i, way in enumerate(r.via_ways):
        nodes = list(way_nodes[way])
        start, end = junctions[i], junctions[i + 1]
        i0, i1 = nodes.index(start), nodes.index(end)
        seq = nodes[i0 : i1 + 1] if i0 <= i1 else nodes[i1 : i0 + 1][::-1]
        for x, y in itertools.pairwise(seq):
            if not any(d.get("osmid") == way for d in G.get_edge_data(x, y, default={}).values()):
                return "via_way_not_drivable"
        path.extend(seq[1:])
    return path


def resolve(
    r: TurnRestriction, G: nx.MultiDiGraph, way_nodes: Mapping[int, Sequence[int]]
) -> list[list[int]] | str:
    """Forbidden raw node paths ``[a, via..., b]`` of ``r`` in the unsimplified drive graph ``G``, or why none.

    ``G``'s edges carry their way's id as ``osmid`` and follow one-way tagging, so the from
    way's *arrivals* at the via node and the to way's *departures* from it are its edges.
    A from way passing through the via node both ways (two arrivals) is ambiguous, as is
    a prohibitory restriction whose to way leaves the via node both ways, unless from and
    to are the same way (a U-turn: only going back along it is forbidden).
    """
    if r.via_node is not None:
        via_path = [r.via_node]
        if r.via_node not in G:
            return "via_not_in_network"
    else:
        got = _via_way_path(G, way_nodes, r)
        if isinstance(got, str):
            return got
        via_path = got
    first, last = via_path[0], via_path[-1]
    paths: list[list[int]] = []
    for f in r.from_ways:
        arrivals = [a for a in _way_steps(G, first, f, out=False) if a not in via_path]
        if not arrivals:
            return "way_not_in_network" if f not in way_nodes else "no_such_turn"
        if len(arrivals) > 1:
            return "ambiguous"
        a = arrivals[0]
        targets: set[int] = set()  # the to ways' first nodes after the via node(s)
        for t in r.to_ways:
            departures = [b for b in _way_steps(G, last, t, out=True) if b not in via_path[:-1]]
            if t == f and not r.via_ways:  # same way: the restriction is about going back along it
                departures = [a] if a in departures else (departures if r.mandatory else [])
            if not departures:
                return "way_not_in_network" if t not in way_nodes else "no_such_turn"
            if len(departures) > 1 and not r.mandatory:
                return "ambiguous"
            targets.update(departures)
        exits = sorted(set(G.successors(last)) - targets) if r.mandatory else sorted(targets)
        paths.extend([a, *via_path, c] for c in exits)
    return paths


def segment_chains(
    path: Sequence[int], step_segments: Mapping[tuple[int, int], Sequence[tuple[Segment, int]]],
    segment_len: Mapping[Segment, int],
) -> list[list[Segment]]:
    """Every chain of simplified segments that drives the raw node ``path``; ``[]`` if none does.

    ``step_segments[(x, y)]`` lists ``(segment, position)`` of each simplified segment whose
    ``position``-th raw step is ``x -> y`` (several for parallel segments); ``segment_len``
    is each segment's number of raw steps. Consecutive steps stay inside a segment, or
    cross from a segment's last step to another segment's first step (a transition).
    """
    steps = list(itertools.pairwise(path))
    chains: list[list[Segment]] = []

    def walk(i: int, seg: Segment, pos: int, chain: list[Segment]) -> None:
        if i == len(steps) - 1:
            chains.append(chain)
            return
        for nxt, npos in step_segments.get(steps[i + 1], ()):
            if nxt == seg and npos == pos + 1:
                walk(i + 1, seg, npos, chain)
            elif pos == segment_len[seg] - 1 and npos == 0 and nxt != seg:
                walk(i + 1, nxt, npos, [*chain, nxt])

    for seg, pos in step_segments.get(steps[0], ()):
        walk(0, seg, pos, [seg])
    return chains


def restriction_chains(
    restrictions: Sequence[TurnRestriction],
    raw: nx.MultiDiGraph,
    simplified: nx.MultiDiGraph,
    way_nodes: Mapping[int, Sequence[int]],
    counts: Counter[str] | None = None,
) -> list[dict[str, Any]]:
    """Forbidden segment chains of ``restrictions`` in ``simplified`` (made with ``track_merged=True``).

    Pops each simplified edge's ``merged_edges`` (its raw steps). Returns JSON-friendly
    ``{"relation": id, "segments": [[u, v, key], ...]}`` for chains of two or more
    segments, and counts per relation in ``counts``: ``applied`` (some chain of two or more
    segments), ``moot`` (no forbidden path is a turn of the simplified graph: the via node
    was simplified away, or an ``only_*`` leaves no other exit), or the reason :func:`resolve` gave.
    """
    counts = Counter() if counts is None else counts
    step_segments: dict[tuple[int, int], list[tuple[Segment, int]]] = {}
    segment_len: dict[Segment, int] = {}
    for u, v, k, d in simplified.edges(keys=True, data=True):
        steps = d.pop("merged_edges", None) or [(u, v)]
        seg = (int(u), int(v), int(k))
        segment_len[seg] = len(steps)
        for pos, (a, b) in enumerate(steps):
            step_segments.setdefault((int(a), int(b)), []).append((seg, pos))
    out: list[dict[str, Any]] = []
    for r in restrictions:
        paths = resolve(r, raw, way_nodes)
        if isinstance(paths, str):
            counts[paths] += 1
            continue
        chains = [c for p in paths for c in segment_chains(p, step_segments, segment_len)]
        long = [c for c in chains if len(c) >= 2]
        if not long:
            counts["moot"] += 1  # no junction left there, or nothing else to forbid
            continue
        counts["applied_via_way" if r.via_ways else "applied"] += 1
        out.extend({"relation": r.relation_id, "segments": [list(s) for s in c]} for c in long)
    return out


def forbidden_transitions(
    chains: Sequence[tuple[int, Sequence[int]]], src: np.ndarray, dst: np.ndarray, counts: Counter[str] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Which transitions ``src[j] -> dst[j]`` the chains of states forbid: ``(mask over j, relation id per j)``.

    ``chains`` are ``(relation_id, states)`` with at least two states. Two states: that
    transition. Three or more (via ways): the sequence ``s0 -> s1 -> ... -> sm`` is
    forbidden by removing one transition ``s_i -> s_{i+1}`` when every way to drive it
    continues the forbidden sequence: ``s1..s_i`` can only be entered from their
    predecessor in the chain and ``s_{i+1}..s_{m-1}`` only left toward their successor.
    Then exactly the routes through the whole sequence are lost, plus the ones that
    start or end inside it (a trip may begin or end on any segment); otherwise the chain
    is left alone and counted as ``via_way_not_exact``.
    """
    counts = Counter() if counts is None else counts
    n = int(max(src.max(initial=-1), dst.max(initial=-1))) + 1
    index = {(int(s), int(d)): j for j, (s, d) in enumerate(zip(src, dst, strict=True))}
    in_deg = np.bincount(dst, minlength=n)
    out_deg = np.bincount(src, minlength=n)
    mask = np.zeros(len(src), dtype=bool)
    rel = np.full(len(src), -1, dtype=np.int64)
    for relation, states in chains:
        states = [int(s) for s in states]
        js = [index.get(pair) for pair in itertools.pairwise(states)]
        if any(j is None for j in js):
            counts["no_such_transition"] += 1
            continue
        if len(states) == 2:
            mask[js[0]] = True
            rel[js[0]] = relation
            counts["turn_removed"] += 1
            continue
        m = len(states) - 1
        choice = None
        for i in range(m):
            entered_only_from_chain = all(in_deg[states[k]] == 1 for k in range(1, i + 1))
            left_only_along_chain = all(out_deg[states[k]] == 1 for k in range(i + 1, m))
            if entered_only_from_chain and left_only_along_chain:
                choice = js[i]
                break
        if choice is None:
            counts["via_way_not_exact"] += 1
            continue
        mask[choice] = True
        rel[choice] = relation
        counts["via_way_turn_removed"] += 1
    return mask, rel
