"""Reusable widgets of the Ferry app (the typed-confirmation modal lives in confirm.py)."""
