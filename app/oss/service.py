"""The upload flow's server side: token issue (``DescribeOssUploadToken``), OSS PutObject into the
upload bucket, and the retention sweep that deletes uploads once they are old enough.

Routing (one listener for both APIs): the Cloudauth API lives at ``/``; an OSS request has a longer
path and addresses a bucket path-style (``/<bucket>/<key>``, what the SDKs send to an IP endpoint)
or virtual-hosted (``Host: <bucket>.<endpoint>``, what they send to a host name), or carries an OSS
signature. Such requests never reach the Cloudauth dispatcher, and the Cloudauth API never sees them.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import ipaddress
import logging
import secrets
import time
import uuid
from collections.abc import Callable, Mapping

from starlette.requests import Request
from starlette.responses import Response

from app.api.intake import BodyReceiver, BodyRefused, BodyShares, receiving_per_key
from app.auth.access import HeadCheck
from app.errors import Throttled
from app.images.addresses import BUCKET_NAME
from app.images.object_store import ObjectStore, UnstorableName
from app.logs import log_unexpected
from app.oss.errors import (
    AccessDenied,
    EntityTooLarge,
    InvalidDigest,
    InvalidObjectName,
    OssError,
    RequestTimeout,
    RequestTimeTooSkewed,
    ServiceUnavailable,
    SignatureDoesNotMatch,
    error_response,
)
from app.oss.quotas import StoreFull, UploadQuotas
from app.oss.signatures import (
    UNSIGNED_PAYLOAD,
    OssRequest,
    mismatch_fields,
    parse_authorization,
    request_time,
    signature_matches,
    string_to_sign,
)
from app.oss.tokens import TokenIssuer, UploadScope, new_upload_path
from app.settings import Settings

log = logging.getLogger("comparefaces.oss")
access_log = logging.getLogger("comparefaces.access")

DESCRIBE_OSS_UPLOAD_TOKEN = "DescribeOssUploadToken"
UPLOAD_PREFIX = "uploads"  # every token's Path is UPLOAD_PREFIX/<random>; the retention sweep looks here
OSS_SIGNATURES = ("OSS ", "OSS4-HMAC-SHA256 ", "OSS2 ")
MAX_KEY_BYTES = 1023


def _hostname(host: str) -> str:
    """``Host`` without its port (IPv6 literals keep their brackets)."""
    host = host.strip().lower()
    if host.startswith("["):
        return host.partition("]")[0] + "]"
    return host.rpartition(":")[0] if host.count(":") == 1 else host


def _is_ip(hostname: str) -> bool:
    try:
        ipaddress.ip_address(hostname.strip("[]"))
    except ValueError:
        return False
    return True


def address(path: str, host: str, upload_bucket: str) -> tuple[str, str]:
    """(bucket, key) of an OSS request: path-style when the path starts with the upload bucket,
    else virtual-hosted when the Host names a bucket, else path-style (another bucket)."""
    if path == f"/{upload_bucket}" or path.startswith(f"/{upload_bucket}/"):
        return upload_bucket, path[len(upload_bucket) + 2 :]
    hostname = _hostname(host)
    label, dot, _ = hostname.partition(".")
    if dot and not _is_ip(hostname) and BUCKET_NAME.match(label):
        return label, path[1:]
    bucket, _, key = path[1:].partition("/")
    return bucket, key


def check_key(key: str) -> None:
    """One file per key, inside its folder: no empty, ``.`` or ``..`` segments, no control characters
    (C0, DEL, C1) and no line or paragraph separators (U+2028, U+2029), which split log lines and
    listings."""
    segments = key.split("/")
    if (
        not key
        or len(key.encode()) > MAX_KEY_BYTES
        or any(segment in ("", ".", "..") for segment in segments)
        or any(ord(char) < 32 or 0x7F <= ord(char) <= 0x9F or char in "\\\u2028\u2029" for char in key)
    ):
        raise InvalidObjectName()


class OssUploads:
    def __init__(self, settings: Settings, store: ObjectStore, *, clock: Callable[[], float] = time.time) -> None:
        if not BUCKET_NAME.match(settings.oss_upload_bucket):
            raise ValueError(f"COMPAREFACES_OSS_UPLOAD_BUCKET {settings.oss_upload_bucket!r} is no bucket name")
        self.settings = settings
        self.store = store
        self.bucket = settings.oss_upload_bucket
        self.clock = clock
        secret = settings.oss_token_secret.get_secret_value()
        if not secret:
            log.warning(
                "upload tokens are signed with a random per-process key: set COMPAREFACES_OSS_TOKEN_SECRET "
                "(the same on every replica) when several processes serve uploads"
            )
        self.issuer = TokenIssuer(secret.encode() if secret else secrets.token_bytes(32))
        self._open_requests = asyncio.Semaphore(settings.max_open_requests)  # bounds the bodies held at once
        # The API's body rules: the minimum rate, and a share of the receive slots per upload credential.
        self.receiver = BodyReceiver(
            grace_s=settings.slow_client_grace_s,
            min_rate=settings.slow_client_min_rate,
            drain_bytes=max(0, settings.max_body_bytes - settings.max_image_bytes),
        )
        self.shares = BodyShares(unverified=0, claimed=0, per_key=receiving_per_key(settings))
        self._sweeper: asyncio.Task[None] | None = None
        self.quotas = UploadQuotas(settings, self.sweep_interval_s, clock=clock)

    # DescribeOssUploadToken

    def describe_token(self, host: str, owner: str | None = None, scheme: str = "http") -> dict[str, object]:
        """The ``OssUploadToken`` of a new upload scope for ``owner``, the authenticated access key
        (None: open mode); its ``EndPoint`` is where the token request came (``scheme``: https when
        that was over TLS)."""
        expires_at = self.clock() + self.settings.oss_token_ttl_s
        scope, secret, token = self.issuer.issue(self.bucket, new_upload_path(UPLOAD_PREFIX), expires_at, owner or "")
        endpoint = self.settings.oss_endpoint or f"{scheme}://{host or f'127.0.0.1:{self.settings.port}'}"
        return {
            "OssUploadToken": {
                "Bucket": scope.bucket,
                "EndPoint": endpoint.rstrip("/"),
                "Expired": int(scope.expires_at) * 1000,  # epoch milliseconds, as the real service
                "Key": scope.key_id,
                "Path": scope.path,
                "Secret": secret,
                "Token": token,
            }
        }

    # The OSS endpoint

    def claims(self, request: Request) -> bool:
        """Whether ``request`` is an OSS request (see the module's docstring)."""
        path: str = request.scope["path"]
        if path == "/":
            return False
        if path == f"/{self.bucket}" or path.startswith(f"/{self.bucket}/"):
            return True
        if _hostname(request.headers.get("host", "")).startswith(self.bucket + "."):
            return True
        return request.headers.get("authorization", "").startswith(OSS_SIGNATURES)

    async def handle(self, request: Request) -> Response:
        request_id = uuid.uuid4().hex[:24].upper()
        started = time.perf_counter()
        host = request.headers.get("host", "")
        key_id = "-"
        try:
            if self._open_requests.locked():  # as the API: past the limit, the body is not read
                raise ServiceUnavailable()
            async with self._open_requests:
                bucket, key = address(request.scope["path"], host, self.bucket)
                oss_request = OssRequest(
                    method=request.method,
                    bucket=bucket,
                    key=key,
                    query=list(request.query_params.multi_items()),
                    headers={name.lower(): value for name, value in request.headers.items()},
                )
                scope = self.authenticate(oss_request)
                key_id = scope.key_id
                if request.method != "PUT" or oss_request.query or not scope.allows(bucket, key):
                    raise AccessDenied()
                check_key(key)
                response = await self.put_object(request, oss_request, scope, request_id)
        except OssError as error:
            host_id = host if _hostname(host).startswith(self.bucket + ".") else f"{self.bucket}.{host}"
            response = error_response(error, request_id=request_id, host_id=host_id, head=request.method == "HEAD")
            if isinstance(error, (EntityTooLarge, RequestTimeout, ServiceUnavailable, StoreFull)):
                response.headers["connection"] = "close"  # the rest of the body is not wanted
        except Exception as error:
            log_unexpected(log, "upload", request_id, error)
            response = error_response(OssError(), request_id=request_id, host_id=host)
        access_log.info(
            "request_id=%s key_id=%s action=PutObject status=%d latency_ms=%.1f",
            request_id,
            key_id,
            response.status_code,
            (time.perf_counter() - started) * 1000,
        )
        return response

    def authenticate(self, request: OssRequest) -> UploadScope:
        """The upload scope of a signed request: token, then signature, then clock (as OSS orders them)."""
        claim = parse_authorization(request.headers.get("authorization", ""))
        # alibabacloud-oss-v2 sends the token of a V1-signed request in a plain ``security-token`` header
        token = request.headers.get("x-oss-security-token") or request.headers.get("security-token", "")
        scope, secret = self.issuer.verify(claim.access_key_id, token, self.clock())
        text = string_to_sign(request, claim)
        if not signature_matches(secret, claim, text):
            raise SignatureDoesNotMatch(**mismatch_fields(claim, text, request))
        if abs(self.clock() - request_time(request, claim)) > self.settings.signature_window_s:
            raise RequestTimeTooSkewed()
        return scope

    async def put_object(
        self, request: Request, oss_request: OssRequest, scope: UploadScope, request_id: str
    ) -> Response:
        data = await self.read_body(request, oss_request.headers)
        headers = oss_request.headers
        md5 = hashlib.md5(data)
        if "content-md5" in headers and headers["content-md5"].strip() != base64.b64encode(md5.digest()).decode():
            raise InvalidDigest("The Content-MD5 you specified did not match what we received.")
        declared_sha256 = headers.get("x-oss-content-sha256", UNSIGNED_PAYLOAD)
        if declared_sha256 != UNSIGNED_PAYLOAD and declared_sha256.lower() != hashlib.sha256(data).hexdigest():
            raise InvalidDigest("The x-oss-content-sha256 you specified did not match what we received.")
        self.quotas.reserve(scope, len(data), await self.store.free_bytes())
        try:
            await self.store.put(oss_request.bucket, oss_request.key, data)
        except UnstorableName as exc:
            raise InvalidObjectName() from exc
        except asyncio.TimeoutError as exc:  # the local store's file system hangs
            raise ServiceUnavailable() from exc
        return Response(
            status_code=200,
            headers={
                "x-oss-request-id": request_id,
                "etag": f'"{md5.hexdigest().upper()}"',
                "content-md5": base64.b64encode(md5.digest()).decode(),
                "server": "AliyunOSS",
            },
        )

    async def read_body(self, request: Request, headers: Mapping[str, str]) -> bytes:
        """The object, at most ``max_image_bytes``, received as the API receives bodies (minimum rate,
        deadline, in the share of its upload credential). An oversized one is refused; its body is
        drained up to ``max_body_bytes`` first so that the client reads the error rather than a reset."""
        claim = parse_authorization(headers.get("authorization", ""))  # authenticated already
        try:
            async with self.shares.receiving(HeadCheck(key_id=claim.access_key_id, verified=True)):
                return await self.receiver(request, self.settings.max_image_bytes, self.settings.body_read_timeout_s)
        except Throttled as exc:
            raise ServiceUnavailable() from exc
        except BodyRefused as refused:
            raise EntityTooLarge() if refused.too_large else RequestTimeout() from refused

    # Retention

    async def sweep(self) -> int:
        """Delete the uploads older than the retention; returns how many went."""
        return await self.store.delete_older_than(self.bucket, UPLOAD_PREFIX, self.retention_s)

    @property
    def retention_s(self) -> int:
        return self.settings.oss_upload_retention_s

    @property
    def sweep_interval_s(self) -> float:
        return min(60.0, max(1.0, self.retention_s / 4))

    async def _sweep_forever(self) -> None:
        interval = self.sweep_interval_s
        while True:
            try:
                deleted = await self.sweep()
                if deleted:
                    log.info("retention: deleted %d uploads older than %d s", deleted, self.retention_s)
            except Exception as error:  # the store may be briefly unreachable: try again next round
                log.warning("retention sweep failed: %s", type(error).__name__)
            await asyncio.sleep(interval)

    async def start(self) -> None:
        try:
            self.quotas.seed(await self.store.uploads(self.bucket, UPLOAD_PREFIX))
        except Exception as error:  # a store not reachable yet, a bucket not created yet: start from zero
            log.warning(
                "upload budgets start from zero: the store's uploads could not be listed (%s)", type(error).__name__
            )
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep_forever())

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None


def create_uploads(settings: Settings, store: ObjectStore) -> OssUploads | None:
    return OssUploads(settings, store) if settings.oss_uploads else None
