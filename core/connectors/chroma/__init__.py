"""Chroma: embedded directories (any release), the HTTP server, and their on-disk formats."""
