"""`autotag`: the command line of oss-autotag (main.py assembles it): running the local cloud and a demo on
it, deploying, and the product's operations — plan, sweep, backfill, replay, invoke, event, rules — against
the local cloud or Alibaba Cloud."""
