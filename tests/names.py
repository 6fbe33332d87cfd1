"""`ferry migrate` flags for tests that are not about naming: keep each collection's name on
the target (the default on a target with aliases is `{name}_v1`, see core/targets.py), so
their readers find the collection under the source's name."""

KEEP_NAMES = ("--target-name", "{name}")
