"""Versioned SQL for our own tables; applied by `ainfera migrate` (adapters.migrations)."""
