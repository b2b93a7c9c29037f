"""Pytest fixtures: broker (see the package docstring)."""
