"""Alchemiser execution service."""

__all__: list[str] = []
