"""What the service does, apart from HTTP: each module one flow, raising :mod:`app.services.errors`.

* :mod:`~app.services.uploads` + :mod:`~app.services.ingest`: upload -> traces -> trips (split, clean, match, store).
* :mod:`~app.services.training` (in the worker process): stored trips -> fitted model, stored and activated.
* :mod:`~app.services.models`: training jobs started, models shown and activated.
* :mod:`~app.services.predictor` + :mod:`~app.services.queries`: the active model's answers.
* :mod:`~app.services.trips`: stored trips shown; :mod:`~app.services.network`: the road network, cached.
"""
