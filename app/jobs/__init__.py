"""Training jobs: :mod:`app.jobs.runner` (the API process's thread that starts and watches workers) and
:mod:`app.jobs.worker` (the worker process's entry point)."""
