"""The likelihood's per-destination solves on a Dask cluster (``dask.distributed``).

One evaluation of the log-likelihood and its gradient is, for every destination, a
backward solve (``Z = M e_d``) and a forward solve (``x = M^T u``) with one factorization
of ``I - W`` per ``theta``. The destinations are independent, so they split into shares:
each worker factorizes ``I - W`` for the ``theta`` it is sent and solves its share of the
destinations; it returns ``log Z`` of its pairs and its expected *feature* counts ``(k,)``
(``F^T E``: the gradient needs nothing more, and ``k`` numbers travel instead of one per
transition). The driver (the process running L-BFGS) sends only ``theta``, and adds up.

Why it is built this way (measured, ``benchmarks/bench_distributed.py``):

* The problem (MDP, ordering, relevant states) is broadcast to *every* worker once per
  fit, and a share travels by value in its task. So when a worker dies, the scheduler
  re-runs its task on a survivor, which has every input; nothing is lost but time.
* The shares are fixed for the whole fit (contiguous runs of destinations in the
  fill-reducing order, so a share's solves touch nearby parts of the factor), and each
  evaluation spreads them over the workers alive at that moment. Results therefore do
  not depend on which worker ran what: a fit that lost a worker ends at the same ``theta``.
* Every worker repeats the factorization (about 1.2 s at 300k states): it is the serial
  part of the evaluation, which bounds the speed-up (see ``docs/scaling.md``).

Dask is imported by this module only, and this module only when a cluster is configured.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import CancelledError
from dataclasses import dataclass
from typing import Any

import numpy as np
from distributed import Client, KilledWorker, get_worker
from distributed.client import FutureCancelledError

from maxent_irl.exceptions import DistributedError, PartitionFunctionDivergedError
from maxent_irl.linsolve import fill_reducing_ordering
from maxent_irl.mdp import RouteMDP
from maxent_irl.objective import TripSet, likelihood_from_terms, pair_terms, relevant_states
from maxent_irl.parallel import solver_threads_limit
from maxent_irl.soft_values import transition_log_weights

__all__ = ["DEFAULT_CONNECT_TIMEOUT_S", "DaskObjective", "ShareResult", "connect", "evaluate_share", "make_shares",
           "map_batches"]

logger = logging.getLogger(__name__)

#: Seconds to wait for the scheduler (and for a first worker) before a fit fails.
DEFAULT_CONNECT_TIMEOUT_S = 10.0

#: What a lost scheduler or worker connection raises inside ``dask.distributed``.
_LOST = (CancelledError, FutureCancelledError, OSError, TimeoutError)


@dataclass(frozen=True)
class Problem:
    """What every worker holds for a fit: the MDP and what does not change with ``theta``."""

    mdp: RouteMDP
    ordering: np.ndarray
    relevant: np.ndarray
    alpha: float
    log_pi0: np.ndarray | None


@dataclass(frozen=True)
class Share:
    """One worker's part of the pairs: ``index`` ``(p,)`` into the trip set's pairs, and those pairs."""

    index: np.ndarray
    pair_origin: np.ndarray
    pair_dest: np.ndarray
    pair_count: np.ndarray


@dataclass(frozen=True)
class ShareResult:
    """A share's ``log Z`` ``(p,)`` per pair, its expected feature counts ``(k,)``, and the worker's seconds.

    ``diverged`` holds the message when ``Z`` is infinite for this ``theta``: a line search
    probes such points as a matter of course, so it is an answer, not a failed task.
    """

    index: np.ndarray
    log_z: np.ndarray
    expected_features: np.ndarray
    seconds: float
    diverged: str | None = None


def make_shares(trips: TripSet, ordering: np.ndarray, n_shares: int) -> list[Share]:
    """Split the pairs by destination into ``n_shares`` shares of about equal destination counts.

    The cost of a share is about proportional to its destinations (two solves each). Destinations
    are taken in fill-reducing order, so a share's right-hand sides sit in neighbouring subtrees.
    """
    position = np.empty_like(ordering)
    position[ordering] = np.arange(ordering.size)
    dests = np.unique(trips.pair_dest)
    dests = dests[np.argsort(position[dests], kind="stable")]
    shares = []
    for group in np.array_split(dests, max(1, min(n_shares, dests.size))):
        index = np.flatnonzero(np.isin(trips.pair_dest, group))
        shares.append(Share(index, trips.pair_origin[index], trips.pair_dest[index], trips.pair_count[index]))
    return shares


def evaluate_share(problem: Problem, share: Share, theta: np.ndarray) -> ShareResult:
    """Run on a worker: factorize ``I - W`` for ``theta`` and solve the share's destinations.

    Uses as many solver threads as the worker has task threads.
    """
    import time

    start = time.perf_counter()
    try:
        threads = max(1, int(get_worker().state.nthreads))
    except ValueError:  # not inside a worker (e.g. called directly): the process's policy
        threads = None
    logw = transition_log_weights(problem.mdp.features, theta, problem.alpha, problem.log_pi0)
    try:
        with solver_threads_limit(threads):
            log_z, E = pair_terms(problem.mdp, logw, share.pair_origin, share.pair_dest, share.pair_count,
                                  problem.ordering, problem.relevant)
    except PartitionFunctionDivergedError as exc:
        empty = np.empty(0)
        return ShareResult(share.index, empty, empty, time.perf_counter() - start, diverged=str(exc))
    return ShareResult(share.index, log_z, problem.mdp.features.T @ E, time.perf_counter() - start)


def connect(client: Client | str, timeout_s: float | None = None) -> tuple[Client, bool]:
    """``(client, owned)``: the given client, or a new one for a scheduler address (``owned``: close it after).

    Raises :class:`~maxent_irl.exceptions.DistributedError` when the scheduler does not answer, or
    has no worker, within ``timeout_s``.
    """
    owned = isinstance(client, str)
    timeout_s = DEFAULT_CONNECT_TIMEOUT_S if timeout_s is None else timeout_s
    try:
        c = Client(client, timeout=timeout_s, set_as_default=False) if isinstance(client, str) else client
    except _LOST as exc:
        raise DistributedError(f"cannot reach the Dask scheduler at {client}: {exc}") from exc
    try:
        c.wait_for_workers(1, timeout=timeout_s)
    except _LOST as exc:
        if owned:
            c.close()
        raise DistributedError(f"the Dask cluster at {_address(c)} has no worker ({exc})") from exc
    return c, owned


def map_batches(client: Client, fn: Callable[[Any, Sequence[Any]], list[Any]], shared: Any, items: Sequence[Any],
                batch_size: int) -> list[Any]:
    """``fn(shared, batch)`` for consecutive batches of ``items`` on the cluster; the results, flattened, in order.

    ``shared`` (e.g. a road network) goes to every worker once; ``fn`` must be importable on
    the workers and return one result per item. A lost cluster raises
    :class:`~maxent_irl.exceptions.DistributedError`; the caller decides whether to do the work itself.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    token = uuid.uuid4().hex[:12]
    futures: list[Any] = []
    try:
        shared_future = client.scatter(shared, broadcast=True, hash=False)
        futures = [client.submit(fn, shared_future, list(items[i : i + batch_size]), pure=False,
                                 key=f"routeirl-batch-{token}-{i // batch_size}")
                   for i in range(0, len(items), batch_size)]
        batches: list[list[Any]] = client.gather(futures)
    except _LOST as exc:
        raise DistributedError(f"the Dask cluster was lost during a batch job: {exc}") from exc
    except KilledWorker as exc:
        raise DistributedError(f"a batch kept killing Dask workers: {exc}") from exc
    finally:
        for f in futures:
            f.release()
    out = [r for batch in batches for r in batch]
    if len(out) != len(items):
        raise DistributedError(f"the cluster returned {len(out)} results for {len(items)} items")
    return out


def _address(client: Client) -> str:
    return str(getattr(client.scheduler, "address", "?"))


class DaskObjective:
    """``theta -> (log-likelihood, gradient)`` evaluated on a Dask cluster; a context manager.

    ``client`` is a :class:`distributed.Client` or a scheduler address (``"tcp://host:8786"``);
    ``n_shares`` (default: the number of workers at the start) fixes how the destinations are split;
    ``timeout_s`` bounds the wait for the scheduler and a first worker (default
    :data:`DEFAULT_CONNECT_TIMEOUT_S`).
    Every failure of the cluster (scheduler gone, a share that keeps killing workers) raises
    :class:`~maxent_irl.exceptions.DistributedError`; a diverging ``theta`` raises
    :class:`~maxent_irl.exceptions.PartitionFunctionDivergedError` as in one process.
    """

    def __init__(
        self,
        client: Client | str,
        mdp: RouteMDP,
        trips: TripSet,
        alpha: float = 1.0,
        log_pi0: np.ndarray | None = None,
        ordering: np.ndarray | None = None,
        n_shares: int | None = None,
        timeout_s: float | None = None,
    ) -> None:
        self.mdp, self.trips, self.alpha, self.log_pi0 = mdp, trips, alpha, log_pi0
        self.ordering = fill_reducing_ordering(mdp.adjacency()) if ordering is None else ordering
        self._client, self._owned = connect(client, timeout_s)
        self._token = uuid.uuid4().hex[:12]
        self._calls = 0
        self.last_seconds: list[float] = []  # each share's worker seconds in the latest evaluation
        try:
            workers = self._workers()
            self.shares = make_shares(trips, self.ordering, n_shares or len(workers))
            problem = Problem(mdp, self.ordering, relevant_states(mdp, trips), alpha, log_pi0)
            # every worker gets a replica: a share re-run elsewhere finds its inputs there
            self._problem = self._client.scatter(problem, broadcast=True, hash=False)
        except _LOST as exc:
            self.close()
            raise DistributedError(f"the Dask cluster was lost while sending the problem: {exc}") from exc
        logger.info("Dask objective: %d shares over %d workers at %s", len(self.shares), len(workers),
                    _address(self._client))

    def _workers(self) -> list[str]:
        workers = sorted(self._client.scheduler_info(n_workers=-1)["workers"])
        if not workers:
            raise DistributedError("the Dask cluster has no worker")
        return workers

    def __call__(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        theta = np.asarray(theta, dtype=np.float64)
        self._calls += 1
        try:
            workers = self._workers()
            futures = [
                self._client.submit(evaluate_share, self._problem, share, theta,
                                    key=f"routeirl-share-{self._token}-{self._calls}-{i}",
                                    workers=[workers[i % len(workers)]], allow_other_workers=True, pure=False)
                for i, share in enumerate(self.shares)
            ]
            results: Iterable[ShareResult] = self._client.gather(futures)
            results = list(results)
        except _LOST as exc:
            raise DistributedError(f"the Dask cluster was lost during an evaluation: {exc}") from exc
        except KilledWorker as exc:  # a share that kept killing its workers (out of memory, say)
            raise DistributedError(f"a share of the evaluation kept killing Dask workers: {exc}") from exc
        except Exception as exc:
            if self._client.status != "running":  # whatever the client's internals raise once it lost the scheduler
                raise DistributedError(f"the Dask cluster was lost during an evaluation ({self._client.status}): "
                                       f"{type(exc).__name__}: {exc}") from exc
            raise
        for r in results:
            if r.diverged is not None:
                raise PartitionFunctionDivergedError(r.diverged)
        log_z = np.empty(self.trips.pair_origin.size)
        expected = np.zeros(self.mdp.n_features)
        for r in results:
            log_z[r.index] = r.log_z
            expected += r.expected_features
        self.last_seconds = [r.seconds for r in results]
        logw = transition_log_weights(self.mdp.features, theta, self.alpha, self.log_pi0)
        return likelihood_from_terms(self.mdp, self.trips, logw, log_z, expected, self.alpha)

    def close(self) -> None:
        """Release the broadcast problem, and the client if this objective made it."""
        problem = getattr(self, "_problem", None)
        try:
            if problem is not None:
                problem.release()
            if self._owned:
                self._client.close()
        except _LOST:  # the cluster is gone already
            pass

    def __enter__(self) -> DaskObjective:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
