"""Inference on the map matcher's hidden Markov model: Viterbi with breaks, and forward-backward posteriors.

The model over ``m`` observations with ``K`` (padded) candidates each is given in log space:
``emis[t, k]`` (``-inf`` for padding) and ``trans[t, i, j]`` from candidate ``i`` of ``t`` to
``j`` of ``t + 1`` (``-inf``: no plausible route). When no candidate of ``t`` can be reached
from any candidate of ``t - 1`` with a finite score, the chain breaks there: the pieces
before and after are independent chains (no transition joins them, so none is invented).
Both functions find the same breaks, so posteriors are per piece.
"""

from __future__ import annotations

import numpy as np

__all__ = ["posteriors", "posteriors_log", "viterbi"]


def viterbi(emis: np.ndarray, trans: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Most likely candidate per observation, piece by piece.

    Returns ``(choice, is_break, piece_loglik, scores)``: ``choice[t]`` the chosen
    candidate, ``is_break[t]`` True where a new piece starts (``t > 0`` only), the joint
    log probability (emissions + transitions) of each piece's best path, and ``scores[t, k]``
    the best log probability of the piece's paths ending at candidate ``k`` of ``t``
    (``-inf``: no path of the piece reaches it).
    """
    m, K = emis.shape
    back = np.zeros((m, K), dtype=np.int64)
    is_break = np.zeros(m, dtype=bool)
    last = np.empty((m, K))  # scores, kept for the back pass
    score = emis[0].copy()
    last[0] = score
    cols = np.arange(K)
    for t in range(1, m):
        cand = score[:, None] + trans[t - 1]
        best = cand.argmax(axis=0)
        new = cand[best, cols] + emis[t]
        if not np.isfinite(new).any():  # nothing reachable: a new piece starts here
            is_break[t] = True
            new = emis[t].copy()
        else:
            back[t] = best
        score = new
        last[t] = score
    choice = np.empty(m, dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, is_break[1:]])
    ends = np.r_[starts[1:] - 1, m - 1]
    loglik = np.empty(starts.size)
    for p in range(starts.size - 1, -1, -1):
        k = int(np.argmax(last[ends[p]]))
        loglik[p] = float(last[ends[p], k])
        for t in range(ends[p], starts[p] - 1, -1):
            choice[t] = k
            if t > starts[p]:
                k = int(back[t, k])
    return choice, is_break, loglik, last


def _logsumexp_cols(M: np.ndarray) -> np.ndarray:
    """``log(sum(exp(M), axis=0))`` per column, exact for columns far below the others; ``-inf`` for empty ones."""
    mx = M.max(axis=0)
    fin = np.isfinite(mx)
    safe = np.where(fin, mx, 0.0)
    with np.errstate(divide="ignore"):
        return np.where(fin, np.log(np.exp(M - safe).sum(axis=0)) + safe, -np.inf)


def posteriors(emis: np.ndarray, trans: np.ndarray, is_break: np.ndarray) -> np.ndarray:
    """``P(candidate k at t | all observations of t's piece)``, ``(m, K)``; each row sums to one.

    Forward-backward, restarted at every break (the pieces of :func:`viterbi`). It runs
    on probabilities, each transition matrix and emission row scaled by its largest
    entry (a constant factor per step changes no posterior) and each step normalized;
    a step whose scaled products all underflow is redone in log space.
    """
    m, K = emis.shape
    with np.errstate(invalid="ignore", under="ignore"):
        shift = trans.max(axis=(1, 2), keepdims=True) if m > 1 else np.zeros((0, 1, 1))
        P = np.exp(trans - np.where(np.isfinite(shift), shift, 0.0))
        E = np.exp(emis - emis.max(axis=1, keepdims=True))
    fa = np.empty((m, K))
    for t in range(m):
        a = E[t] if t == 0 or is_break[t] else (fa[t - 1] @ P[t - 1]) * E[t]
        total = a.sum()
        if not total > 0:
            with np.errstate(divide="ignore", invalid="ignore"):
                la = _logsumexp_cols(np.log(fa[t - 1])[:, None] + trans[t - 1]) + emis[t]
                a = np.exp(la - la.max())
            total = a.sum()
        fa[t] = a / total
    fb = np.ones((m, K))
    for t in range(m - 2, -1, -1):
        if is_break[t + 1]:
            continue  # the last observation of a piece: beta = 1
        b = P[t] @ (E[t + 1] * fb[t + 1])
        total = b.sum()
        if not total > 0:
            with np.errstate(divide="ignore", invalid="ignore"):
                lb = _logsumexp_cols((trans[t] + (emis[t + 1] + np.log(fb[t + 1]))[None, :]).T)
                b = np.exp(lb - lb.max())
            total = b.sum()
        fb[t] = b / total
    post = fa * fb
    total = post.sum(axis=1, keepdims=True)
    if not np.all(total > 0):  # alpha and beta underflowed on disjoint candidates: redo all in log space
        return posteriors_log(emis, trans, is_break)
    return post / total


def posteriors_log(emis: np.ndarray, trans: np.ndarray, is_break: np.ndarray) -> np.ndarray:
    """:func:`posteriors` entirely in log space: slower, never underflows (the fallback, and a reference)."""
    m, K = emis.shape
    la = np.empty((m, K))
    with np.errstate(invalid="ignore"):
        for t in range(m):
            if t == 0 or is_break[t]:
                a = emis[t].copy()
            else:
                a = _logsumexp_cols(la[t - 1][:, None] + trans[t - 1]) + emis[t]
            la[t] = a - a.max()
        lb = np.zeros((m, K))
        for t in range(m - 2, -1, -1):
            if is_break[t + 1]:
                continue
            b = _logsumexp_cols((trans[t] + (emis[t + 1] + lb[t + 1])[None, :]).T)
            mx = b.max()
            lb[t] = b - mx if np.isfinite(mx) else b
        post = la + lb
        post = np.exp(post - post.max(axis=1, keepdims=True))
    post[~np.isfinite(post)] = 0.0
    return post / post.sum(axis=1, keepdims=True)
