"""Ferry's Textual app: a view of the core engine's event stream and journal."""
