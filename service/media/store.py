"""The S3-compatible object store (AWS S3, MinIO, Ceph, SeaweedFS): presigned URLs and the few calls confirm needs.

One aiobotocore client per process, created at start-up; it connects on first use, so the service starts
before an embedded store is up. The bucket is created on first use as well (once per process).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any
from urllib.parse import quote

from aiobotocore.session import get_session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from schemas.config import Settings
from schemas.errors import MediaUnavailable

_MISSING = {"404", "NoSuchKey", "NotFound"}
_BUCKET_EXISTS = {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}


class ObjectStore:
    """Objects of one bucket; every store failure surfaces as 503 MEDIA_UNAVAILABLE."""

    def __init__(self, settings: Settings) -> None:
        if settings.s3_url is None:
            raise ValueError("s3_url is required")
        self.bucket = settings.s3_bucket
        self._settings = settings
        self._client: Any = None
        self._stack = contextlib.AsyncExitStack()
        self._bucket_ready = False
        self._bucket_lock = asyncio.Lock()

    async def start(self) -> None:
        """Create the client (no connection is made yet)."""
        s = self._settings
        session = get_session()
        self._client = await self._stack.enter_async_context(session.create_client(
            "s3", endpoint_url=s.s3_url, region_name=s.s3_region,
            aws_access_key_id=s.s3_access_key, aws_secret_access_key=s.s3_secret_key,
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"},
                          retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=5, read_timeout=30),
        ))

    async def close(self) -> None:
        """Close the client's connections."""
        await self._stack.aclose()

    async def presign_put(self, key: str, *, content_type: str, size: int, expires_in: int) -> str:
        """A URL that accepts one PUT of exactly `size` bytes with this Content-Type, for `expires_in` seconds."""
        await self.ensure_bucket()
        params = {"Bucket": self.bucket, "Key": key, "ContentType": content_type, "ContentLength": size}
        url: str = await self._client.generate_presigned_url("put_object", Params=params, ExpiresIn=expires_in)
        return url

    async def presign_get(
        self, key: str, *, content_type: str | None, filename: str, inline: bool, expires_in: int
    ) -> str:
        """A download URL; the store answers with this Content-Type (else the stored one) and, unless `inline`,
        as an attachment."""
        disposition = "inline" if inline else f"attachment; filename*=UTF-8''{quote(filename, safe='')}"
        params = {"Bucket": self.bucket, "Key": key, "ResponseContentDisposition": disposition}
        if content_type is not None:
            params["ResponseContentType"] = content_type
        url: str = await self._client.generate_presigned_url("get_object", Params=params, ExpiresIn=expires_in)
        return url

    async def size_of(self, key: str) -> int | None:
        """The stored object's size, None when there is none."""
        try:
            head = await self._call("head_object", Bucket=self.bucket, Key=key)
        except _Missing:
            return None
        return int(head["ContentLength"])

    async def read(self, key: str) -> bytes | None:
        """The whole object, None when there is none (confirm reads objects no larger than the tenant's limit)."""
        try:
            answer = await self._call("get_object", Bucket=self.bucket, Key=key)
        except _Missing:
            return None
        try:
            async with answer["Body"] as body:
                data: bytes = await body.read()
        except (BotoCoreError, OSError) as exc:
            raise MediaUnavailable(f"object store read failed: {type(exc).__name__}") from None
        return data

    async def put(self, key: str, data: bytes, *, content_type: str) -> None:
        """Store an object the service made itself (a thumbnail)."""
        await self.ensure_bucket()
        await self._call("put_object", Bucket=self.bucket, Key=key, Body=data, ContentType=content_type)

    async def delete(self, key: str) -> None:
        """Remove an object; removing one that is gone already succeeds."""
        with contextlib.suppress(_Missing):
            await self._call("delete_object", Bucket=self.bucket, Key=key)

    async def ensure_bucket(self) -> None:
        """Create the bucket unless this process did already (or it exists)."""
        if self._bucket_ready:
            return
        async with self._bucket_lock:
            if self._bucket_ready:
                return
            with contextlib.suppress(_Exists):
                await self._call("create_bucket", Bucket=self.bucket)
            self._bucket_ready = True

    async def _call(self, operation: str, **params: Any) -> Any:
        try:
            return await getattr(self._client, operation)(**params)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in _MISSING:
                raise _Missing(code) from None
            if code in _BUCKET_EXISTS:
                raise _Exists(code) from None
            raise MediaUnavailable(f"object store refused {operation}: {code or 'error'}") from None
        except (BotoCoreError, OSError) as exc:
            raise MediaUnavailable(f"object store unreachable: {type(exc).__name__}") from None


class _Missing(Exception):
    pass


class _Exists(Exception):
    pass
