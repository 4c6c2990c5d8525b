"""Example plugin (being written)."""
