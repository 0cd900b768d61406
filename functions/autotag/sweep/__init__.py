"""Scheduled tag expiry: a timer-triggered sweep that removes stale tags the system owns.

Modules, from pure to I/O: `request` (timer event and payload), `checkpoint` (pass state and its codec),
`selection` (which listed objects can have become stale), `shards` (splitting the key space), `state`
(checkpoint and lease objects in OSS), `reconcile` (one object), `runner` (the resumable, concurrent
sweep of one scope) and `fanout` (parallel shards as asynchronous invocations)."""
