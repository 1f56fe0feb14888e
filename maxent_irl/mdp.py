"""The deterministic route MDP: states, transitions and their features as sparse arrays.

A state is a directed road segment, a transition ``j`` is the turn ``src[j] -> dst[j]``
and ``features[j]`` describes it. Keeping the MDP as flat arrays (not a graph object)
is what lets every pass below be a sparse matrix product or solve.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from maxent_irl.exceptions import InvalidMDPError, InvalidPathError

__all__ = ["RouteMDP"]


class RouteMDP:
    """A deterministic MDP over ``n_states`` states with featured transitions.

    Parameters
    ----------
    n_states:
        Number of states; states are ``0 .. n_states - 1``.
    src, dst:
        ``(T,)`` integer arrays: transition ``j`` goes from ``src[j]`` to ``dst[j]``.
        A pair ``(src, dst)`` may appear only once, so a path (a sequence of states)
        names its transitions unambiguously.
    features:
        ``(T, k)`` float array, finite: ``features[j]`` is the feature vector of transition ``j``.
    feature_names:
        ``k`` unique names; defaults to ``f0 .. f{k-1}``.
    """

    def __init__(
        self,
        n_states: int,
        src: np.ndarray,
        dst: np.ndarray,
        features: np.ndarray,
        feature_names: Sequence[str] | None = None,
    ) -> None:
        if isinstance(n_states, bool) or not isinstance(n_states, int | np.integer) or n_states <= 0:
            raise InvalidMDPError(f"n_states must be a positive integer, got {n_states!r}")
        self.n_states = int(n_states)
        self.src = _as_index_array(src, "src", self.n_states)
        self.dst = _as_index_array(dst, "dst", self.n_states)
        if self.src.shape != self.dst.shape:
            raise InvalidMDPError(f"src and dst must have the same length, got {self.src.shape} and {self.dst.shape}")
        try:
            feats = np.asarray(features, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise InvalidMDPError(f"features must be numbers: {exc}") from None
        if feats.ndim != 2 or feats.shape[0] != self.src.shape[0]:
            raise InvalidMDPError(
                f"features must have shape (n_transitions, k) = ({self.src.shape[0]}, k), got {feats.shape}"
            )
        if feats.shape[1] == 0:
            raise InvalidMDPError("features need at least one column: with k = 0 there is no reward to learn")
        bad = ~np.isfinite(feats)
        if bad.any():
            j, f = np.argwhere(bad)[0]
            raise InvalidMDPError(
                f"features contain NaN or inf ({int(bad.sum())} entries, first at transition {j}, feature {f})"
            )
        self.features = feats
        if feature_names is None:
            feature_names = [f"f{i}" for i in range(feats.shape[1])]
        names = [str(n) for n in feature_names]
        if len(names) != feats.shape[1]:
            raise InvalidMDPError(f"feature_names has {len(names)} names for {feats.shape[1]} features")
        if len(set(names)) != len(names):
            raise InvalidMDPError("feature_names must be unique")
        self.feature_names: list[str] = names

        keys = self.src * self.n_states + self.dst
        order = np.argsort(keys, kind="stable")
        sorted_keys = keys[order]
        dup = np.flatnonzero(sorted_keys[1:] == sorted_keys[:-1])
        if dup.size:
            j = order[dup[0]]
            raise InvalidMDPError(f"transition {int(self.src[j])} -> {int(self.dst[j])} appears more than once")
        self._sorted_keys = sorted_keys
        self._key_order = order

    @property
    def n_transitions(self) -> int:
        return int(self.src.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.features.shape[1])

    def out_degree(self) -> np.ndarray:
        """``(n_states,)`` number of transitions leaving each state."""
        return np.bincount(self.src, minlength=self.n_states)

    def successors(self, state: int) -> tuple[np.ndarray, np.ndarray]:
        """Transition indices leaving ``state`` and the states they lead to."""
        self.check_states([state])
        lo, hi = np.searchsorted(self._sorted_keys, [state * self.n_states, (state + 1) * self.n_states])
        idx = self._key_order[lo:hi]
        return idx, self.dst[idx]

    def adjacency(self, weights: np.ndarray | None = None) -> sp.csr_matrix:
        """``(n_states, n_states)`` sparse matrix with ``weights[j]`` at ``(src[j], dst[j])``."""
        data = np.ones(self.n_transitions) if weights is None else weights
        return sp.csr_matrix((data, (self.src, self.dst)), shape=(self.n_states, self.n_states))

    def check_states(self, states: Sequence[int] | np.ndarray, what: str = "state") -> np.ndarray:
        """Return ``states`` as an int array, or raise :class:`InvalidPathError` naming the bad one."""
        arr = np.asarray(states)
        if arr.ndim != 1:
            raise InvalidPathError(f"{what}s must be a 1-D sequence of integers, got shape {arr.shape}")
        integral = np.issubdtype(arr.dtype, np.integer) or (
            np.issubdtype(arr.dtype, np.floating) and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr))
        )
        if arr.size and not integral:
            raise InvalidPathError(f"{what}s must be integers, got {arr.dtype}")
        arr = arr.astype(np.int64)
        bad = (arr < 0) | (arr >= self.n_states)
        if bad.any():
            raise InvalidPathError(f"unknown {what} {int(arr[bad][0])} (the MDP has states 0..{self.n_states - 1})")
        return arr

    def transition_indices(self, path: Sequence[int] | np.ndarray) -> np.ndarray:
        """Indices of the transitions a path uses, in order; ``(len(path) - 1,)``.

        Raises :class:`InvalidPathError` for an empty path, an unknown state, or two
        consecutive states that no transition joins.
        """
        states = self.check_states(path, "path state")
        if states.size == 0:
            raise InvalidPathError("path is empty")
        keys = states[:-1] * self.n_states + states[1:]
        pos = np.searchsorted(self._sorted_keys, keys)
        pos_clipped = np.minimum(pos, self._sorted_keys.size - 1)
        found = (pos < self._sorted_keys.size) & (self._sorted_keys[pos_clipped] == keys)
        if not found.all():
            i = int(np.flatnonzero(~found)[0])
            raise InvalidPathError(
                f"no transition from state {int(states[i])} to state {int(states[i + 1])} (path positions {i}, {i + 1})"
            )
        out: np.ndarray = self._key_order[pos_clipped]
        return out

    def path_features(self, path: Sequence[int] | np.ndarray) -> np.ndarray:
        """``(k,)`` summed features of a path's transitions."""
        out: np.ndarray = self.features[self.transition_indices(path)].sum(axis=0)
        return out

    def select_features(self, names: Sequence[str] | None) -> RouteMDP:
        """The same MDP with only the features ``names``, in that order (``self`` for None or all of them).

        Raises :class:`InvalidMDPError` for a name the MDP does not have, or a repeated one.
        """
        if not names or list(names) == self.feature_names:
            return self
        index = {n: i for i, n in enumerate(self.feature_names)}
        unknown = [n for n in names if n not in index]
        if unknown or len(set(names)) != len(names):
            raise InvalidMDPError(f"unknown or repeated features {unknown or list(names)}; the MDP has "
                                  f"{self.feature_names}")
        cols = [index[n] for n in names]
        return RouteMDP(self.n_states, self.src, self.dst, self.features[:, cols], feature_names=list(names))

    def __repr__(self) -> str:
        return f"RouteMDP(n_states={self.n_states}, n_transitions={self.n_transitions}, n_features={self.n_features})"


def _as_index_array(values: np.ndarray, name: str, n_states: int) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise InvalidMDPError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise InvalidMDPError(f"{name} must be an integer array, got {arr.dtype}")
    arr = arr.astype(np.int64)
    bad = (arr < 0) | (arr >= n_states)
    if bad.any():
        raise InvalidMDPError(f"{name} names state {int(arr[bad][0])}, outside 0..{n_states - 1}")
    return arr
