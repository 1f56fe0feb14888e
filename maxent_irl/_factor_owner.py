"""One thread that builds and frees every SuperLU factor of the process.

scipy tracks SuperLU's allocations per thread and frees a factor's memory only in the
thread that allocated it (scipy issue #15921): a factor built in one thread and dropped
in another leaks whole. That happens all the time here: the API loads models and answers
queries in worker threads, and a likelihood evaluation used to factorize in a thread
pool (0.4 GB lost per evaluation at 300k states). So every factor is built on the owner
thread, kept in a registry only that thread changes, and dropped there; callers hold
integer keys. Solves allocate and free within one call, so they may run in any thread.

The owner takes its work from a :class:`queue.SimpleQueue`, whose ``put`` is reentrant
and written in C: releases come from ``weakref`` finalizers, which can run inside a
garbage collection that interrupts any code, including code holding a lock (an
executor's ``submit`` does), and a C call cannot be cut short by ``KeyboardInterrupt``.
A caller reserves a key and registers its release *before* the build is queued; the
queue is FIFO, so a release always finds its build done.

At interpreter exit the owner frees everything on its thread and stops; daemon threads
still running then get :class:`RuntimeError` from :meth:`FactorOwner.get`.
"""

from __future__ import annotations

import atexit
import itertools
import os
import queue
import sys
import threading
import weakref
from collections.abc import Callable
from typing import Any

__all__ = ["FactorOwner", "factor_owner"]

_BUILD, _DROP, _SYNC, _STOP = "build", "drop", "sync", "stop"
#: How often the owner rechecks objects it could not free yet (see :meth:`FactorOwner._drop`).
_RECHECK_S = 1.0
#: How often a waiting caller checks that the owner thread is still alive.
_ALIVE_CHECK_S = 1.0


def _refcount(obj: Any) -> int:
    return sys.getrefcount(obj)


def _sole_local() -> int:
    """The count of an object held only by one local variable, measured the way :meth:`FactorOwner._drop` does
    (the exact number differs between Python versions)."""
    obj = object()
    return _refcount(obj)


def _sole_in_list() -> int:
    """The same for an object held only by a list, read in a loop as :meth:`FactorOwner._prune` does."""
    for obj in [object()]:
        return _refcount(obj)
    raise AssertionError  # pragma: no cover


_SOLE_LOCAL, _SOLE_IN_LIST = _sole_local(), _sole_in_list()


class _Pending:
    """A build's or a flush's outcome, handed from the owner thread to the waiting caller."""

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
        self._lock = threading.Lock()  # build, flush and stop only: never taken by a release
        self._thread = threading.Thread(target=self._run, name="superlu-owner", daemon=True)
        self._thread.start()

    # --- callers ------------------------------------------------------------------------------
    def reserve(self) -> int:
        """A fresh key, to :meth:`attach` to its holder before :meth:`build_into` fills it."""
        return next(self._keys)

    def attach(self, holder: object, key: int) -> None:
        """Free ``key`` on the owner thread once ``holder`` is collected.

        The finalizer's callback is the queue's C-level ``put``: nothing in it can block, or be
        interrupted half-way. At exit the owner frees everything itself.
        """
        weakref.finalize(holder, self._tasks.put, (_DROP, key)).atexit = False

    def build_into(self, key: int, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` on the owner thread and keep the result under ``key``; ``fn``'s exceptions propagate."""
        if threading.current_thread() is self._thread:  # a nested build: already on the owner
            self._objects[key] = fn(*args)
            return
        pending = _Pending()
        with self._lock:
            self._check_usable()
            self._tasks.put((_BUILD, key, fn, args, pending))
        self._wait(pending)
        error, pending.error = pending.error, None
        if error is not None:
            raise error

    def build(self, fn: Callable[..., Any], *args: Any) -> int:
        """:meth:`reserve` and :meth:`build_into` in one call, for callers that free with :meth:`release`."""
        key = self.reserve()
        try:
            self.build_into(key, fn, *args)
        except BaseException:  # e.g. interrupted while waiting: free the object once it exists
            self.release(key)
            raise
        return key

    def get(self, key: int) -> Any:
        try:
            return self._objects[key]
        except KeyError:
            if self._stopped:
                raise RuntimeError("the SuperLU owner has stopped: the interpreter is exiting") from None
            raise

    def release(self, key: int) -> None:
        """Free the object of ``key`` on the owner thread (never blocks)."""
        self._tasks.put((_DROP, key))

    def flush(self) -> None:
        """Wait until the owner has run every task queued before this call, releases included."""
        if threading.current_thread() is self._thread:
            return
        pending = _Pending()
        with self._lock:
            self._check_usable()
            self._tasks.put((_SYNC, pending))
        self._wait(pending)

    def stop(self) -> None:
        """Free everything on the owner thread and end it (at interpreter exit, before scipy's own cleanup)."""
        with self._lock:
            if self._stopped or os.getpid() != self.pid:
                return
            self._stopped = True
            self._tasks.put((_STOP,))
        self._thread.join(timeout=10)

    def __len__(self) -> int:
        return len(self._objects)

    def _check_usable(self) -> None:
        if os.getpid() != self.pid:
            raise RuntimeError("this SuperLU owner belongs to the parent process: use factor_owner()")
        if self._stopped:
            raise RuntimeError("the SuperLU owner has stopped: the interpreter is exiting")

    def _wait(self, pending: _Pending) -> None:
        while not pending.done.wait(_ALIVE_CHECK_S):
            if not self._thread.is_alive():
                raise RuntimeError("the SuperLU owner thread has ended")

    # --- the owner thread -----------------------------------------------------------------------
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
                self._prune()
                task[1].done.set()
            del task
            self._prune()

    def _drop(self, key: int) -> None:
        obj = self._objects.pop(key, None)
        # Someone still holds the raw object (e.g. a traceback frame of a failed solve): the last
        # reference would go in their thread and leak. Keep it until only this thread holds it.
        if obj is not None and _refcount(obj) > _SOLE_LOCAL:
            self._deferred.append(obj)

    def _prune(self) -> None:
        """Free the deferred objects nobody else holds any more (here, on the owner thread)."""
        if not self._deferred:
            return
        kept = []
        for obj in self._deferred:
            if _refcount(obj) > _SOLE_IN_LIST:
                kept.append(obj)
        del obj
        self._deferred = kept  # the old list, and with it the last references, go here


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
