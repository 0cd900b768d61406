"""FC entry module of the backfill function (`Handler: tag_backfill.handler`, CodeUri: functions/)."""

from autotag.handlers.backfill import handler, initialize

__all__ = ["handler", "initialize"]
