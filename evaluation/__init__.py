"""``routeirl evaluate``: the evaluation of Ziebart et al. (2008) as one command.

Users trust a route-choice model when it beats simple baselines on held-out trips, so this
reproduces the paper's evaluation and writes it to a report folder:

* ``report.md`` and ``metrics.json``: Table 1 (share of a held-out route's distance matched by
  the model's most likely path, share of trips matched to >= 90 %, mean held-out
  log-probability) for MaxEnt, the time-based shortest path, max-margin planning and the
  action-based model (and, as in the paper, its costs planned as shortest paths: a reference
  row on simulated trips, where it reaches the true θ's ceiling); the learned weights with
  standard errors and, for simulated trips, the true ones; destination accuracy versus the
  fraction of the trip observed;
* ``costs.png`` (Fig. 3: learned costs in seconds next to the true ones),
  ``destinations.png`` (Fig. 5: top-1 / top-3 destination accuracy).

Modules: :mod:`~evaluation.config` (flags and their checks), :mod:`~evaluation.data`
(simulated or stored trips, split), :mod:`~evaluation.models` (fits),
:mod:`~evaluation.progress` (progress bars and step timings),
:mod:`~evaluation.recovery` (which weights are exercised, θ in seconds),
:mod:`~evaluation.destinations` (Fig. 5), :mod:`~evaluation.plots`,
:mod:`~evaluation.report`, :mod:`~evaluation.run` (the whole run) and
:mod:`~evaluation.command` (the CLI). The paper's other models are here too, apart from the
core: :mod:`~evaluation.baselines` (time-based shortest path, the action-based model),
:mod:`~evaluation.max_margin`, :mod:`~evaluation.metrics` (Table 1, Fig. 5) and
:mod:`~evaluation.calibration` (the simulated drivers' temperature).
``from evaluation.run import run_evaluation`` runs an evaluation from Python.
"""

from evaluation.config import EvalConfig, EvaluationError

__all__ = ["EvalConfig", "EvaluationError"]
