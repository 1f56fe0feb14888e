"""The estimator family: scikit-learn's contract for every route model that is fitted to trips.

Every estimator (:class:`~maxent_irl.MaxEntIRL` here, the paper's baselines in
:mod:`evaluation`) follows the same rules, so a reader who knows one knows all:

* ``__init__`` only stores its keyword arguments; ``fit(mdp, paths, ...)`` validates them
  and returns ``self``; what fitting learns ends in ``_`` (``theta_``, ``n_iter_``...).
* :meth:`BaseEstimator.get_params` / :meth:`BaseEstimator.set_params` read and change those
  arguments (a model selection loop can copy an estimator with ``type(e)(**e.get_params())``).
* Randomness comes from ``random_state`` (an int, a ``numpy.random.Generator`` or None),
  turned into a generator by :func:`check_random_state`.
* Progress goes to ``callback(FitProgress)``; returning ``False`` stops the fit early.
* A query before ``fit`` raises :class:`~maxent_irl.exceptions.NotFittedError` through
  :func:`check_is_fitted`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Self

import numpy as np

from maxent_irl.exceptions import InvalidParameterError, NotFittedError

__all__ = ["BaseEstimator", "FitCallback", "FitProgress", "RandomState", "check_is_fitted", "check_random_state"]

#: What ``random_state`` accepts.
RandomState = int | np.random.Generator | None


@dataclass(frozen=True)
class FitProgress:
    """What an estimator's ``callback`` receives after each iteration.

    ``log_likelihood`` and ``grad_norm`` are those of the model's training objective where
    it has them (``None`` otherwise); ``objective`` is the value the optimizer minimizes
    (negative per-trip log-likelihood plus penalty, or a hinge loss); ``stage`` names the
    current sub-fit (e.g. one regularization strength of a validation loop) and ``total``
    is its number of iterations when known.
    """

    iteration: int
    log_likelihood: float | None
    grad_norm: float | None
    theta: np.ndarray
    elapsed_s: float
    objective: float | None = None
    stage: str = "fit"
    total: int | None = None


#: The progress callback every estimator accepts: return ``False`` to stop fitting.
FitCallback = Callable[[FitProgress], bool | None]


class BaseEstimator:
    """Parameters are ``__init__``'s keyword arguments, stored unchanged under the same names."""

    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        return [p.name for p in sig.parameters.values() if p.name != "self" and p.kind in kinds]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor arguments, by name (``deep`` is accepted for scikit-learn compatibility)."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> Self:
        """Change constructor arguments; an unknown name is an :class:`InvalidParameterError`."""
        valid = set(self._param_names())
        for name, value in params.items():
            if name not in valid:
                raise InvalidParameterError(
                    f"{type(self).__name__} has no parameter {name!r}; its parameters are {sorted(valid)}")
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        defaults = {p.name: p.default for p in inspect.signature(type(self).__init__).parameters.values()}
        changed = []
        for name, value in self.get_params().items():
            default = defaults.get(name, inspect.Parameter.empty)
            if isinstance(value, np.ndarray) or not _same(value, default):
                changed.append(f"{name}={_short(value)}")
        return f"{type(self).__name__}({', '.join(changed)})"


def check_is_fitted(estimator: object, attribute: str = "theta_") -> None:
    """Raise :class:`NotFittedError` unless ``estimator`` has the learned ``attribute``."""
    if not hasattr(estimator, attribute):
        raise NotFittedError(f"this {type(estimator).__name__} is not fitted yet: call fit(mdp, paths) first")


def check_random_state(random_state: RandomState) -> np.random.Generator:
    """A ``numpy.random.Generator`` for ``random_state`` (a generator is used as it is, not copied)."""
    if isinstance(random_state, np.random.Generator):
        return random_state
    if random_state is None or (isinstance(random_state, int | np.integer) and not isinstance(random_state, bool)):
        if random_state is not None and random_state < 0:
            raise InvalidParameterError(f"random_state must be >= 0, got {random_state}")
        return np.random.default_rng(random_state)
    raise InvalidParameterError(f"random_state must be an int, a numpy Generator or None, got {random_state!r}")


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a is b or a == b)
    except (TypeError, ValueError):  # e.g. array comparisons
        return False


def _short(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"array(shape={value.shape})"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
