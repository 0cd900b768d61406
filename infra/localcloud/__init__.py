"""The local cloud: an OSS-compatible server (and, later, a local Function Compute) for demos and tests."""
