"""One APIRouter per resource; :data:`ROUTERS` is what :mod:`app.main` mounts."""

from app.api import destinations, health, jobs, models, routes, trajectories, visitation

ROUTERS = [
    health.router,
    trajectories.router,
    models.router,
    jobs.router,
    destinations.router,
    routes.router,
    visitation.router,
]

__all__ = ["ROUTERS"]
