"""`autotag`: the command line of oss-autotag (local cloud, and later plan, sweep, replay, deploy)."""
