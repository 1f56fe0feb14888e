"""The matcher's HMM inference against brute-force enumeration of every candidate sequence on tiny models."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from maxent_irl.roads.hmm import posteriors, posteriors_log, viterbi


def _random_hmm(rng: np.random.Generator, m: int, K: int, holes: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    emis = rng.normal(-3.0, 2.0, (m, K))
    emis[rng.random((m, K)) < holes / 2] = -np.inf
    emis[np.arange(m), rng.integers(0, K, m)] = rng.normal(-3.0, 2.0, m)  # every point keeps a candidate
    trans = rng.normal(-2.0, 3.0, (m - 1, K, K))
    trans[rng.random((m - 1, K, K)) < holes] = -np.inf
    return emis, trans


def _pieces(emis: np.ndarray, trans: np.ndarray) -> list[tuple[int, int]]:
    """Brute force: the pieces are where no sequence continues (no finite path reaches any candidate)."""
    m, K = emis.shape
    bounds, start = [], 0
    for t in range(1, m + 1):
        if t == m:
            bounds.append((start, t))
            break
        reach = False
        for path in itertools.product(range(K), repeat=t - start + 1):
            s = emis[np.arange(start, t + 1), path].sum() + sum(trans[start + i, path[i], path[i + 1]]
                                                                  for i in range(len(path) - 1))
            if np.isfinite(s):
                reach = True
                break
        if not reach:
            bounds.append((start, t))
            start = t
    return bounds


def _brute(emis: np.ndarray, trans: np.ndarray, a: int, b: int) -> tuple[np.ndarray, tuple[int, ...], float]:
    """Marginals, best sequence and its log probability over observations ``a .. b - 1`` (one piece)."""
    K = emis.shape[1]
    marg = np.zeros((b - a, K))
    best, best_lp = (), -np.inf
    for path in itertools.product(range(K), repeat=b - a):
        lp = emis[np.arange(a, b), path].sum() + sum(trans[a + i, path[i], path[i + 1]] for i in range(b - a - 1))
        if not np.isfinite(lp):
            continue
        marg[np.arange(b - a), path] += np.exp(lp)
        if lp > best_lp:
            best, best_lp = path, lp
    return marg / marg.sum(axis=1, keepdims=True), best, best_lp


@pytest.mark.parametrize("seed", range(30))
def test_posteriors_and_viterbi_equal_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    m, K = int(rng.integers(1, 6)), int(rng.integers(1, 4))
    emis, trans = _random_hmm(rng, m, K)
    choice, is_break, loglik, scores = viterbi(emis, trans)
    post = posteriors(emis, trans, is_break)
    assert np.allclose(post.sum(axis=1), 1.0)
    assert np.allclose(post, posteriors_log(emis, trans, is_break))
    pieces = _pieces(emis, trans)
    assert np.flatnonzero(is_break).tolist() == [a for a, _ in pieces[1:]]
    for p, (a, b) in enumerate(pieces):
        marg, _, best_lp = _brute(emis, trans, a, b)
        assert np.allclose(post[a:b], marg, atol=1e-12)
        assert loglik[p] == pytest.approx(best_lp)
        got = emis[np.arange(a, b), choice[a:b]].sum() + sum(
            trans[a + i, choice[a + i], choice[a + i + 1]] for i in range(b - a - 1))
        assert got == pytest.approx(best_lp)  # a best sequence (ties may pick another one)
        assert np.isfinite(scores[a:b][np.arange(b - a), choice[a:b]]).all()


def test_posteriors_survive_huge_log_ranges() -> None:
    # transitions 2000 nats apart underflow as probabilities: the scaled pass must fall back, not return NaN
    emis = np.array([[0.0, -1.0], [0.0, 0.0], [-0.5, 0.0]])
    trans = np.array([[[-2000.0, -2001.0], [0.0, -np.inf]], [[-1.0, 0.0], [-2000.0, -3000.0]]])
    is_break = viterbi(emis, trans)[1]
    post = posteriors(emis, trans, is_break)
    assert np.all(np.isfinite(post)) and np.allclose(post.sum(axis=1), 1.0)
    assert np.allclose(post, posteriors_log(emis, trans, is_break))
    assert np.allclose(post, _brute(emis, trans, 0, 3)[0], atol=1e-12)


def test_a_long_chain_neither_underflows_nor_overflows() -> None:
    rng = np.random.default_rng(1)
    emis, trans = _random_hmm(rng, 5000, 6, holes=0.1)
    is_break = viterbi(emis, trans)[1]
    post = posteriors(emis, trans, is_break)
    assert np.all(np.isfinite(post)) and np.allclose(post.sum(axis=1), 1.0)
    assert np.allclose(post, posteriors_log(emis, trans, is_break), atol=1e-9)
