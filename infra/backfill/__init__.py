"""`autotag backfill` on the operator's machine: template.yml's backfill flow run in-process (runner.py),
with the flow's item readers and batches and the backfill function's processor."""
