"""Backfill as a job inside Function Compute: every existing object of a bucket (or of an inventory, or of
a CSV manifest) through the upload path's own `tag_object`, split into shards that run as asynchronous
invocations of the backfill function and resume across invocations until their part is done.

Modules, from pure to I/O: `job` (the job's definition, its id and its shard plan), `progress` (a shard's
checkpoint and the job's counts), `request` (the function's events), `shard` (one shard's resumable run
over its listing, inventory data files or manifest, on the sweep's state, lease, deadline and QPS
machinery), `gateway` (writing a report of any size), `report` (the completion report) and `control`
(start, resume, cancel and the end of a job)."""
