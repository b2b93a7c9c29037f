"""Alchemiser portfolio service."""

__all__: list[str] = []
