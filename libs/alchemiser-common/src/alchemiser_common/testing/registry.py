"""Pytest fixtures: registry (see the package docstring)."""
