"""Reflex state: resolve the signed-in user, call the domain, hold what pages show."""
