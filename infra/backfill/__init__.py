"""Backfill: existing objects through the upload function, as if OSS had just sent their events."""
