"""The backfill `autotag backfill` runs where it is started (with `--in-fc` it runs inside FC instead, as
autotag.backfill): existing objects through the upload function, as if OSS had just sent their events."""
