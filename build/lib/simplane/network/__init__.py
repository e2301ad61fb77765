"""The network data plane: every source of network facts feeds one ingest function."""
