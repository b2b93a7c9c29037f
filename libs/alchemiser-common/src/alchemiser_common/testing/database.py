"""Pytest fixtures: database (see the package docstring)."""
