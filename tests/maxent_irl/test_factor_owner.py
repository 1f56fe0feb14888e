"""The owner thread that builds and frees every SuperLU factor: lifetime, errors, reentrancy, fork and exit."""

from __future__ import annotations

import concurrent.futures.thread
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import scipy.sparse as sp

from maxent_irl._factor_owner import FactorOwner, factor_owner
from maxent_irl.exceptions import PartitionFunctionDivergedError
from maxent_irl.linsolve import MMatrixLU

ROOT = Path(__file__).resolve().parents[2]


class Probe:
    """Records the thread in which it is freed."""

    freed_in: ClassVar[list[str]] = []

    def __del__(self) -> None:
        Probe.freed_in.append(threading.current_thread().name)


def _ring(n: int, weight: float) -> sp.csr_matrix:
    """A cycle of n states, each transition with the given weight: I - W is an M-matrix iff weight < 1."""
    return sp.csr_matrix((np.full(n, weight), (np.arange(n), (np.arange(n) + 1) % n)), shape=(n, n))


def test_objects_are_built_and_freed_on_the_owner_thread() -> None:
    owner = factor_owner()
    Probe.freed_in.clear()
    built_in: list[str] = []

    def make() -> Probe:
        built_in.append(threading.current_thread().name)
        return Probe()

    key = owner.build(make)
    assert isinstance(owner.get(key), Probe) and built_in == ["superlu-owner"]
    owner.release(key)
    owner.flush()
    assert Probe.freed_in == ["superlu-owner"]
    with pytest.raises(KeyError):
        owner.get(key)


def test_an_object_still_held_elsewhere_is_freed_later_on_the_owner_thread() -> None:
    owner = factor_owner()
    Probe.freed_in.clear()
    key = owner.build(Probe)
    held = owner.get(key)  # e.g. a traceback frame of a failed solve
    owner.release(key)
    owner.flush()
    assert Probe.freed_in == []  # not freed under the holder's feet
    del held  # the owner still keeps it: not the last reference, nothing is freed in this thread
    assert Probe.freed_in == []
    owner.flush()
    assert Probe.freed_in == ["superlu-owner"]


def test_errors_reach_the_caller_and_the_owner_keeps_working() -> None:
    with pytest.raises(PartitionFunctionDivergedError, match="infinite"):
        MMatrixLU(_ring(5, 1.5))
    lu = MMatrixLU(_ring(5, 0.5))
    np.testing.assert_allclose((sp.eye(5) - _ring(5, 0.5)) @ lu.solve(np.ones(5)), np.ones(5))


def test_a_release_from_a_finalizer_never_blocks() -> None:
    """Finalizers run inside garbage collections, which can interrupt code that holds a lock; an executor's submit
    holds this one, and a release that needed it would hang forever."""
    lu = MMatrixLU(_ring(50, 0.5))

    def drop() -> None:
        nonlocal lu
        with concurrent.futures.thread._global_shutdown_lock:
            del lu  # the finalizer queues the release right here

    worker = threading.Thread(target=drop, daemon=True)
    worker.start()
    worker.join(timeout=10)
    assert not worker.is_alive(), "releasing a factor blocked"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_builds_and_solves() -> None:
    W = _ring(300, 0.5)
    lu = MMatrixLU(W)  # made in the parent; its transposed factor is built lazily, in the child
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 1
        try:
            import signal

            signal.alarm(20)  # a deadlock ends the child instead of the test run
            B = np.ones((300, 40))
            X = lu.solve(B, trans=True)
            ok = np.allclose((sp.eye(300) - W).T @ X, B) and np.allclose(MMatrixLU(W).solve(B), lu.solve(B))
            code = 0 if ok else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, f"child status {status}"


@pytest.mark.parametrize("scenario", ["alive", "late_thread"])
def test_clean_interpreter_exit(scenario: str) -> None:
    """Factors alive at exit, or built by a thread still running when the main thread ends: no error, no noise."""
    script = f"""
import threading, time
import numpy as np, scipy.sparse as sp
from maxent_irl.linsolve import MMatrixLU
W = sp.csr_matrix((np.full(200, 0.5), (np.arange(200), (np.arange(200) + 1) % 200)), shape=(200, 200))
keep = [MMatrixLU(W, with_transpose=True) for _ in range(3)]
if "{scenario}" == "late_thread":
    def late():
        time.sleep(0.3)
        for _ in range(3):
            MMatrixLU(W).solve(np.ones(200))
    threading.Thread(target=late).start()
"""
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr
    assert "Exception" not in out.stderr and "Error" not in out.stderr, out.stderr


def test_a_stopped_owner_refuses_work_with_a_clear_error() -> None:
    """At exit the owner frees everything and stops; late callers get a RuntimeError, never a hang or a KeyError."""
    owner = FactorOwner()  # a private one: the process's owner keeps running
    key = owner.build(Probe)
    Probe.freed_in.clear()
    owner.stop()
    assert Probe.freed_in == ["superlu-owner"]  # freed on the owner thread
    for call in (lambda: owner.build(Probe), owner.flush, lambda: owner.get(key)):
        with pytest.raises(RuntimeError, match="stopped"):
            call()
    owner.release(key)  # harmless


def test_callers_do_not_wait_forever_on_a_dead_owner_or_a_parent_owner() -> None:
    owner = FactorOwner()
    owner._tasks.put(("stop",))  # the thread ends without the flag being set (as if it had crashed)
    owner._thread.join(timeout=10)
    with pytest.raises(RuntimeError, match="ended"):
        owner.build(Probe)
    other = FactorOwner()
    other.pid = -1  # as seen from a forked child
    with pytest.raises(RuntimeError, match="parent process"):
        other.build(Probe)
    other.pid = os.getpid()
    other.stop()
