"""Management of a member over HTTP: its member table, health, operator commands and metrics."""

__all__: list[str] = []
