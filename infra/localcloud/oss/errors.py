"""OSS errors as the service reports them: an HTTP status, a `Code`, a message and extra fields."""

from __future__ import annotations


class OssError(Exception):
    """A request the local OSS refuses, rendered as OSS's `<Error>` XML (or `x-oss-err` on HEAD)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        ec: str = "",
        headers: dict[str, str] | None = None,
        **details: str | dict[str, str],
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.ec = ec
        self.headers = headers or {}
        self.details = details


def no_such_bucket(bucket: str) -> OssError:
    return OssError(
        404, "NoSuchBucket", "The specified bucket does not exist.", BucketName=bucket, ec="0015-00000101"
    )


def no_such_key(key: str, *, delete_marker: bool = False) -> OssError:
    headers = {"x-oss-delete-marker": "true"} if delete_marker else None
    return OssError(
        404, "NoSuchKey", "The specified key does not exist.", Key=key, ec="0026-00000001", headers=headers
    )


def no_such_version(key: str, version_id: str) -> OssError:
    return OssError(
        404, "NoSuchVersion", "The specified version does not exist.", Key=key, VersionId=version_id
    )


def no_such_upload(upload_id: str) -> OssError:
    return OssError(
        404,
        "NoSuchUpload",
        "The specified upload does not exist. The upload ID may be invalid, "
        "or the upload may have been aborted or completed.",
        UploadId=upload_id,
    )


def invalid_argument(message: str, name: str = "", value: str = "") -> OssError:
    extra = {"ArgumentName": name, "ArgumentValue": value} if name else {}
    return OssError(400, "InvalidArgument", message, **extra)


def malformed_xml(
    message: str = "The XML you provided was not well-formed or did not validate against "
    "our published schema.",
) -> OssError:
    return OssError(400, "MalformedXML", message)


def invalid_tag(message: str, ec: str) -> OssError:
    return OssError(400, "InvalidTag", message, ec=ec)


def not_implemented(what: str) -> OssError:
    return OssError(501, "NotImplemented", f"{what} is not implemented by the local OSS.")


def is_decimal(text: str) -> bool:
    """ASCII digits only: `str.isdigit` also accepts `²` and other digits `int()` refuses."""
    return text.isascii() and text.isdigit()
