"""The HTTP layer: routers (:mod:`app.api.routes`), dependencies, error handlers and middleware.

:data:`ROUTERS` is what :func:`app.main.create_app` mounts, in the order of the OpenAPI document.
"""

from app.api.routes import (
    destinations,
    health,
    jobs,
    match,
    models,
    network,
    routes,
    trajectories,
    visitation,
    web,
)

ROUTERS = [
    health.router,
    trajectories.router,
    match.router,
    models.router,
    jobs.router,
    destinations.router,
    routes.router,
    visitation.router,
    network.router,
    web.router,
]

__all__ = ["ROUTERS"]
