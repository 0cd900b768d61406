"""OSS API operations, one module per resource: service, buckets, objects, multipart uploads, tagging."""
