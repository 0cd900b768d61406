"""FC entry module for the timer trigger (`Handler: tag_expiry.handler`, CodeUri: functions/)."""

from autotag.handlers.expiry import handler, initialize

__all__ = ["handler", "initialize"]
