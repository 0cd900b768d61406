"""What the local CloudFlow does to other services, as the flow's RAM role: it lists and reads OSS objects
and writes result files through oss2, and invokes functions through FC's API with aliyun-fc2, signing with
the role's STS credentials, so the local OSS and FC API authorise each call against the role's policies as
the real services do for CloudFlow. Errors come back as (code, message) for the engine's Retry and Catch."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import fc2
import oss2

from cloudformats.items import SourceError, listed_item

from ..ram import session_for

CHUNK = 256 * 1024


class ServiceError(SourceError):
    """A call that failed; `code` is what Retry and Catch match (e.g. FC.Unknown, OSS.NoSuchKey)."""


@dataclass(frozen=True)
class Gateways:
    oss_endpoint: str
    fc_endpoint: str
    role_arn: str
    region: str = "cn-hangzhou"

    def _bucket(self, name: str) -> oss2.Bucket:
        session = session_for(self.role_arn)
        auth = oss2.StsAuth(session.access_key_id, session.access_key_secret, session.security_token)
        return oss2.Bucket(auth, self.oss_endpoint, name, region=self.region)

    def list_objects(self, bucket: str, prefix: str) -> Iterator[dict[str, Any]]:
        try:
            for info in oss2.ObjectIteratorV2(self._bucket(bucket), prefix=prefix, max_keys=1000):
                yield listed_item(bucket, info)
        except oss2.exceptions.OssError as error:
            raise ServiceError(f"OSS.{error.code}", str(error.message)) from None

    def read(self, bucket: str, key: str, limit: int) -> bytes:
        """The whole object, or ServiceError when it is over `limit` bytes (read no further)."""
        try:
            stream = self._bucket(bucket).get_object(key)
            data = bytearray()
            while piece := stream.read(CHUNK):
                data += piece
                if len(data) > limit:
                    raise ServiceError("FnF.ItemReaderFailed", f"oss://{bucket}/{key} is over {limit} bytes")
            return bytes(data)
        except oss2.exceptions.OssError as error:
            raise ServiceError(f"OSS.{error.code}", f"oss://{bucket}/{key}: {error.message}") from None

    def stream(self, bucket: str, key: str) -> Iterator[bytes]:
        try:
            stream = self._bucket(bucket).get_object(key)
            while piece := stream.read(CHUNK):
                yield piece
        except oss2.exceptions.OssError as error:
            raise ServiceError(f"OSS.{error.code}", f"oss://{bucket}/{key}: {error.message}") from None

    def write(self, bucket: str, key: str, data: bytes) -> None:
        try:
            self._bucket(bucket).put_object(key, data)
        except oss2.exceptions.OssError as error:
            raise ServiceError(f"OSS.{error.code}", f"oss://{bucket}/{key}: {error.message}") from None

    def invoke(self, service: str, function: str, qualifier: str, payload: bytes, asynchronous: bool) -> Any:
        """The function's result (JSON when it is JSON, text otherwise); ServiceError FC.<ErrorCode> when
        FC refuses the call, FC.Unknown when the function itself fails."""
        session = session_for(self.role_arn)
        client = fc2.Client(
            endpoint=self.fc_endpoint,
            accessKeyID=session.access_key_id,
            accessKeySecret=session.access_key_secret,
            securityToken=session.security_token,
        )
        headers = {"x-fc-invocation-type": "Async"} if asynchronous else {}
        try:
            answer = client.invoke_function(
                service,
                function,
                payload=payload,
                headers=headers,
                qualifier=None if qualifier == "LATEST" else qualifier,
            )
        except fc2.fc_exceptions.FcError as error:
            code = error.err_code or "Unknown"
            raise ServiceError(f"FC.{code}", str(error.message)[:4096]) from None
        if asynchronous:
            return {"RequestId": answer.headers.get("x-fc-request-id", "")}
        text = answer.data.decode("utf-8", "replace") if isinstance(answer.data, bytes) else str(answer.data)
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return text
