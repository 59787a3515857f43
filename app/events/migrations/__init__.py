"""Alembic migrations of the event store (run by EventStore.open)."""
