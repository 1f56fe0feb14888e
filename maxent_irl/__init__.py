"""Maximum-Entropy inverse reinforcement learning on deterministic route MDPs.

Ziebart et al. (2008): a driver's route is a path through a deterministic MDP whose
probability is proportional to ``exp(reward / alpha)``; learning matches the observed
feature counts. The numerical kernels are free functions over sparse arrays
(:mod:`maxent_irl.soft_values`, :mod:`maxent_irl.visitation`); :class:`MaxEntIRL`
is a thin learner and :class:`RouteModel` answers queries for a known ``theta``.
"""

from maxent_irl.exceptions import (
    DistributedError,
    InvalidMDPError,
    InvalidParameterError,
    InvalidPathError,
    MaxEntIRLError,
    NotFittedError,
    NumericalRangeError,
    PartitionFunctionDivergedError,
    UnreachableDestinationError,
)
from maxent_irl.inference import RouteModel, Visits
from maxent_irl.learning import FitProgress, MaxEntIRL
from maxent_irl.mdp import RouteMDP

__all__ = [
    "DistributedError",
    "FitProgress",
    "InvalidMDPError",
    "InvalidParameterError",
    "InvalidPathError",
    "MaxEntIRL",
    "MaxEntIRLError",
    "NotFittedError",
    "NumericalRangeError",
    "PartitionFunctionDivergedError",
    "RouteMDP",
    "RouteModel",
    "UnreachableDestinationError",
    "Visits",
]
