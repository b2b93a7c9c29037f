"""Alchemiser strategy service."""

__all__: list[str] = []
