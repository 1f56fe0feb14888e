"""The sparse LU behind every pass: orderings, and factors that are freed whichever thread made them."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from maxent_irl.exceptions import InvalidParameterError
from maxent_irl.linsolve import MMatrixLU, fill_reducing_ordering
from maxent_irl.synthetic import grid_route_mdp

GRID_THETA = np.array([-5.0, -3.0, -0.9, -0.4, -4.5, -0.4])


def _weights(rows: int) -> sp.csr_matrix:
    mdp = grid_route_mdp(rows)
    w = np.exp(mdp.features @ GRID_THETA)
    return sp.csr_matrix((w, (mdp.src, mdp.dst)), shape=(mdp.n_states, mdp.n_states))


@pytest.mark.parametrize("method", ["metis", "mmd"])
def test_orderings_are_permutations_that_solve_exactly(method: str) -> None:
    W = _weights(20)
    n = W.shape[0]
    order = fill_reducing_ordering(W, method)
    assert sorted(order.tolist()) == list(range(n))
    lu = MMatrixLU(W, order, with_transpose=True)
    B = np.random.default_rng(0).random((n, 40))
    A = sp.eye(n) - W
    np.testing.assert_allclose(A @ lu.solve(B), B, atol=1e-10)
    np.testing.assert_allclose(A.T @ lu.solve(B, trans=True), B, atol=1e-10)


def test_nested_dissection_fills_no_more_than_minimum_degree() -> None:
    W = _weights(40)

    def fill(method: str) -> int:
        factor = MMatrixLU(W, fill_reducing_ordering(W, method))._factor()
        fill = factor.L.nnz + factor.U.nnz
        del factor  # before the MMatrixLU's release reaches the owner thread
        return fill

    assert fill("metis") <= 1.1 * fill("mmd")


def test_ordering_edge_cases() -> None:
    assert fill_reducing_ordering(sp.csr_matrix((4, 4))).tolist() == [0, 1, 2, 3]  # no edges: no fill
    with pytest.raises(InvalidParameterError, match="ordering method"):
        fill_reducing_ordering(_weights(3), "amd")


_LEAK_SCRIPT = """
import gc
from concurrent.futures import ThreadPoolExecutor
import numpy as np, scipy.sparse as sp
from maxent_irl._factor_owner import factor_owner
from maxent_irl.linsolve import MMatrixLU, fill_reducing_ordering
from maxent_irl.synthetic import grid_route_mdp

mdp = grid_route_mdp(100)
W = sp.csr_matrix((np.exp(mdp.features @ np.array([-5.0, -3.0, -0.9, -0.4, -4.5, -0.4])), (mdp.src, mdp.dst)),
                  shape=(mdp.n_states, mdp.n_states))
order = fill_reducing_ordering(W)
owner = factor_owner()

def rss_mb():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1e3

def build(_):
    lu = MMatrixLU(W, order, with_transpose=True)
    lu.solve_internal(np.ones((W.shape[0], 40)), trans=True)
    return lu

def one_round():
    with ThreadPoolExecutor(2) as pool:
        built = list(pool.map(build, range(2)))
    del built  # the last references go here, in the main thread
    gc.collect()
    owner.flush()

for _ in range(2):
    one_round()
before = rss_mb()
for _ in range(4):
    one_round()
print(rss_mb() - before, len(owner))
"""


def test_factors_made_in_other_threads_are_freed() -> None:
    """scipy frees a SuperLU factor only in the thread that built it; the API builds them in worker threads and
    drops them elsewhere. Each factor here is ~25 MB, so a leak adds ~400 MB over four rounds. glibc's mmap
    threshold is pinned so that freed factors go back to the system instead of staying in its heap (without that
    the RSS of correct code wanders by up to ~130 MB)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root), "MALLOC_MMAP_THRESHOLD_": "131072", "OPENBLAS_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", _LEAK_SCRIPT], cwd=root, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    growth_mb, registered = out.stdout.split()
    assert int(registered) == 0  # every factor left the registry
    assert float(growth_mb) < 50, f"factors built in worker threads are not freed: RSS grew {growth_mb} MB"
