"""Qdrant: Qdrant Edge shards (in a worker process), qdrant-client local mode and servers."""
