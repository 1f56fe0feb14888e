"""One thread that builds and frees every SuperLU factor of the process.

scipy tracks SuperLU's allocations per thread and frees a factor's memory only in the
thread that allocated it (scipy issue #15921): a factor built in one thread and dropped
in another leaks whole. That happens all the time here: the API loads models and answers
queries in worker threads, and a likelihood evaluation used to factorize in a thread
pool (0.4 GB lost per evaluation at 300k states). So every factor is built on the owner
thread, kept in a registry only that thread changes, and dropped there; callers hold
integer keys. Solves allocate and free within one call, so they may run in any thread.

The owner takes its work from a :class:`queue.SimpleQueue`, whose ``put`` is reentrant:
releases come from ``weakref`` finalizers, which can run inside a garbage collection
that interrupts any code, including code holding a lock (an executor's ``submit`` does).
"""

from __future__ import annotations

import atexit
import itertools
import os
import queue
import sys
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["FactorOwner", "factor_owner"]

_BUILD, _DROP, _SYNC, _STOP = "build", "drop", "sync", "stop"
#: How often the owner rechecks factors it could not free yet (see :meth:`FactorOwner._drop`).
_RECHECK_S = 1.0


class _Pending:
    """A build's outcome, handed from the owner thread to the waiting caller."""

    __slots__ = ("done", "error")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.error: BaseException | None = None


class FactorOwner:
    """Builds objects on one daemon thread, keeps them by key, and frees them on that thread."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self._tasks: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self._objects: dict[int, Any] = {}
        self._deferred: list[Any] = []
        self._keys = itertools.count()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="superlu-owner", daemon=True)
        self._thread.start()

    def build(self, fn: Callable[..., Any], *args: Any) -> int:
        """Run ``fn(*args)`` on the owner thread and keep the result; its key. ``fn``'s exceptions propagate."""
        key = next(self._keys)
        if self._stopped or threading.current_thread() is self._thread:
            self._objects[key] = fn(*args)  # interpreter exit (nothing is freed any more), or called by the owner
            return key
        pending = _Pending()
        self._tasks.put((_BUILD, key, fn, args, pending))
        try:
            pending.done.wait()
        except BaseException:  # e.g. KeyboardInterrupt: free the object as soon as it exists
            self._tasks.put((_DROP, key))
            raise
        error, pending.error = pending.error, None
        if error is not None:
            raise error
        return key

    def get(self, key: int) -> Any:
        return self._objects[key]

    def release(self, key: int) -> None:
        """Free the object of ``key`` on the owner thread (safe from finalizers: never blocks)."""
        if os.getpid() == self.pid and not self._stopped:  # a forked child never built it
            self._tasks.put((_DROP, key))

    def flush(self) -> None:
        """Wait until the owner has run every task queued before this call, releases included."""
        if self._stopped or threading.current_thread() is self._thread:
            return
        pending = _Pending()
        self._tasks.put((_SYNC, pending))
        pending.done.wait()

    def stop(self) -> None:
        """Free everything on the owner thread and end it (at interpreter exit, before scipy's own cleanup)."""
        if self._stopped or os.getpid() != self.pid:
            return
        self._stopped = True
        self._tasks.put((_STOP,))
        self._thread.join(timeout=10)

    def __len__(self) -> int:
        return len(self._objects)

    def _run(self) -> None:
        while True:
            try:
                task = self._tasks.get(timeout=_RECHECK_S if self._deferred else None)
            except queue.Empty:
                task = (None,)
            kind = task[0]
            if kind == _STOP:
                self._objects.clear()
                self._deferred.clear()
                return
            if kind == _BUILD:
                _, key, fn, args, pending = task
                try:
                    self._objects[key] = fn(*args)
                except BaseException as exc:  # handed to the caller, raised there
                    pending.error = exc
                finally:
                    pending.done.set()
                del fn, args, pending
            elif kind == _DROP:
                self._drop(task[1])
            elif kind == _SYNC:
                if self._deferred:
                    self._deferred = [obj for obj in self._deferred if sys.getrefcount(obj) > 3]
                task[1].done.set()
            del task
            if self._deferred:  # free those whose other references are gone by now
                self._deferred = [obj for obj in self._deferred if sys.getrefcount(obj) > 3]

    def _drop(self, key: int) -> None:
        obj = self._objects.pop(key, None)
        # Someone still holds the raw object (e.g. a traceback frame of a failed solve): the last
        # reference would go in their thread and leak. Keep it until only this thread holds it.
        if obj is not None and sys.getrefcount(obj) > 2:  # > this local and getrefcount's argument
            self._deferred.append(obj)


_owner: FactorOwner | None = None
_owner_lock = threading.Lock()


def factor_owner() -> FactorOwner:
    """The process's owner (created on first use, and anew in a forked child: threads do not survive a fork)."""
    global _owner
    with _owner_lock:
        if _owner is None or _owner.pid != os.getpid():
            _owner = FactorOwner()
        return _owner


def _after_fork_in_child() -> None:
    global _owner, _owner_lock
    _owner_lock = threading.Lock()  # another thread may have held it at the fork
    _owner = None


def _stop_at_exit() -> None:
    if _owner is not None:
        _owner.stop()


os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_stop_at_exit)
