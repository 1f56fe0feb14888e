"""Exception types of :mod:`maxent_irl`.

Every error a caller can provoke with bad input is a ``ValueError`` subclass, so
``except ValueError`` keeps working, while the specific type says what went wrong.
"""

from __future__ import annotations


class MaxEntIRLError(Exception):
    """Base class of every error raised on purpose by :mod:`maxent_irl`."""


class InvalidMDPError(MaxEntIRLError, ValueError):
    """The MDP arrays are malformed (shapes, out-of-range states, NaN features...)."""


class InvalidPathError(MaxEntIRLError, ValueError):
    """A path is empty, names an unknown state, or uses a transition the MDP lacks."""


class InvalidParameterError(MaxEntIRLError, ValueError):
    """An estimator or inference parameter is out of its domain."""


class PartitionFunctionDivergedError(MaxEntIRLError, ArithmeticError):
    """The partition function is infinite: rewards are not negative enough.

    Raised when the spectral radius of the weighted transition matrix
    ``W[s, s'] = pi0 * exp(r / alpha)`` is >= 1, i.e. there are cycles whose total
    weight does not decay, so the sum over paths diverges.
    """


class NumericalRangeError(MaxEntIRLError, ArithmeticError):
    """A finite partition function could not be brought into float64 range, even rescaled in log space.

    Rescaling is repeated until every reachable state's ``Z`` fits (see
    :mod:`maxent_irl.soft_values`); this is raised only if a round makes no progress.
    """


class UnreachableDestinationError(MaxEntIRLError, ValueError):
    """No path joins the origin to the destination (its probability mass is zero)."""


class NotFittedError(MaxEntIRLError, AttributeError):
    """An inference method was called before :meth:`MaxEntIRL.fit`."""


class DistributedError(MaxEntIRLError, RuntimeError):
    """The Dask cluster a computation was given could not be reached or was lost during it."""
