"""The routeirl web service: REST API, SQLite persistence and background training.

Layers, outermost first (docs/architecture.md): :mod:`app.api` (HTTP: routers, errors,
middleware) -> :mod:`app.services` (what the service does: ingest, queries, training) ->
:mod:`app.storage` (SQLite) and the libraries :mod:`maxent_irl` / :mod:`maxent_irl.roads`.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("routeirl")
except PackageNotFoundError:  # pragma: no cover - running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["__version__"]
