"""FC entry module for the upload trigger (`Handler: tag_on_upload.handler`, CodeUri: functions/)."""

from autotag.handlers.upload import handler, initialize

__all__ = ["handler", "initialize"]
