"""Reusable UI pieces: layout, badges, cards."""
