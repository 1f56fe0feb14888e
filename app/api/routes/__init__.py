"""One APIRouter per resource. Routers parse the request, call :mod:`app.services`, and answer."""
