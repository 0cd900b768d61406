"""pytest plugin: the OSS Python SDK V2's integration tests over plain HTTP.

The suite builds every client from `alibabacloud_oss_v2.config.load_default()` and an endpoint without a
scheme, so its clients would speak HTTPS; this wraps `load_default` to set `disable_ssl`, which lets the
unchanged tests reach the local OSS."""

from __future__ import annotations

import alibabacloud_oss_v2 as oss

_load_default = oss.config.load_default


def _plain_http_config() -> oss.config.Config:
    config = _load_default()
    config.disable_ssl = True
    return config


oss.config.load_default = _plain_http_config
