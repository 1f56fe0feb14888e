"""The core's thread policy, in one place: how many threads the sparse solves use, and BLAS.

The core reads no environment variables: a program (the service's worker, a benchmark)
sets the policy explicitly with :func:`set_solver_threads` or, for a block of code,
:func:`solver_threads_limit`; estimators take ``n_jobs`` and apply it around ``fit``.

Why threads at all: SuperLU releases the GIL in its triangular solves, so the columns of a
multi-right-hand-side solve are split across threads (:mod:`maxent_irl.linsolve`), as are
the products of the forward pass (:mod:`maxent_irl.visitation`). BLAS is pinned to one
thread meanwhile: nested BLAS threading made a 512-destination solve on Andorra take 6.2 s
instead of 0.05 s, and in fits made of many small dense products BLAS threads only spin
(with another process on the machine they slowed max margin planning 14x). One BLAS thread
also makes results independent of the BLAS thread count.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from typing import Any

from threadpoolctl import ThreadpoolController

from maxent_irl.exceptions import InvalidParameterError

__all__ = ["default_solver_threads", "set_solver_threads", "single_threaded_blas", "solver_threads",
           "solver_threads_limit"]

#: Most threads a solve uses by default: beyond this, solves are memory-bound.
MAX_DEFAULT_THREADS = 8

_lock = threading.Lock()
_threads: int | None = None  # None: default_solver_threads()
_controller: ThreadpoolController | None = None


def default_solver_threads() -> int:
    """The usable CPU count (this process's affinity), at most :data:`MAX_DEFAULT_THREADS`."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(MAX_DEFAULT_THREADS, cpus))


def solver_threads() -> int:
    """Threads a multi-right-hand-side solve may use now."""
    return _threads if _threads is not None else default_solver_threads()


def set_solver_threads(n: int | None) -> None:
    """Set the solver threads for the whole process (``None``: back to :func:`default_solver_threads`)."""
    global _threads
    if n is not None and (isinstance(n, bool) or int(n) != n or n < 1):
        raise InvalidParameterError(f"solver threads must be a positive integer or None, got {n!r}")
    with _lock:
        _threads = None if n is None else int(n)


@contextlib.contextmanager
def solver_threads_limit(n: int | None) -> Iterator[None]:
    """Use ``n`` solver threads inside the block (``None`` leaves the policy unchanged)."""
    if n is None:
        yield
        return
    previous = _threads
    set_solver_threads(n)
    try:
        yield
    finally:
        set_solver_threads(previous)


def single_threaded_blas() -> Any:
    """A context manager pinning BLAS to one thread (the controller is built once: building it scans libraries)."""
    global _controller
    if _controller is None:
        _controller = ThreadpoolController()
    return _controller.limit(limits=1, user_api="blas")
