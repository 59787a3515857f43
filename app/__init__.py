"""The FastAPI recommendation service. It reads exported versions; it never imports `training`."""
