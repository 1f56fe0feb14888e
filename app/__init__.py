"""The routeirl web service: REST API, SQLite persistence and background training."""
