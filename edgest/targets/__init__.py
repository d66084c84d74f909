"""Targets that ship with the core (only the eager reference; toolchains live in their own distributions)."""
