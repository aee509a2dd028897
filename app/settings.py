"""The one typed settings object. Built once (``Settings()``) and passed down."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every field is read from ``COMPAREFACES_<NAME>``. Give each a ``description``: ``make docs`` writes
    ``.env.example`` and ``docs/configuration.md`` from these fields (a ``# Title`` comment starts a section)."""

    model_config = SettingsConfigDict(env_prefix="COMPAREFACES_", env_file=None, env_ignore_empty=True, extra="ignore")

    host: str = Field(
        "127.0.0.1",
        description="address to bind; anything but loopback needs access keys or ALLOW_UNSIGNED=true",
    )
    port: int = Field(8080, description="TCP port to listen on (`comparefaces serve --host/--port` override both)")
    tls_cert_file: Path | None = Field(
        None,
        description="PEM certificate (chain) for HTTPS on PORT, with TLS_KEY_FILE; both re-read on change "
        "(`comparefaces tls init` makes a local development pair)",
    )
    tls_key_file: Path | None = Field(None, description="PEM private key of TLS_CERT_FILE (readable by its owner only)")
    allow_plain_http: bool = Field(
        False,
        description="serve plain HTTP (no TLS_CERT_FILE) on an address other hosts can reach, e.g. behind a "
        "TLS-terminating proxy; without it such a server refuses to start (loopback may always be plain)",
    )
    probe_port: int = Field(
        0,
        description="also listen on this port, in plain HTTP, for GET /healthz, /readyz and /metrics only; with it "
        "/metrics leaves PORT (0: no probe port, everything on PORT)",
    )
    log_level: str = Field("info", description="debug, info, warning or error")
    log_format: Literal["text", "json"] = Field(
        "text",
        description="text: one readable line per record; json: one JSON object per line (access records carry "
        "request_id, key_id, action, status, code, pair_type, latency_ms as keys); never image data either way",
    )
    metrics_enabled: bool = Field(
        True,
        description="serve Prometheus metrics at GET /metrics on the API port, or on PROBE_PORT when set (no "
        "image, key, nonce or score in them); keep /metrics off the public side of your load balancer",
    )

    # Models
    model: str = Field(
        "default",
        description="'default' (embedded YuNet+SFace, landmarks from a second detection pass), 'sface-fast' (the "
        "same models, one detection pass: cheaper, less accurate on East-Asian faces), 'sface-refined' (both passes "
        "on the full canvas: the previous release's), 'sface-reid' (the default's detection, SFace fused with the "
        "vendored face-reidentification-retail-0095: more accurate, slower) or a pack folder name",
    )
    models_dir: Path = Field(Path("models"), description="the folder of model packs, one folder per pack")
    cache_dir: Path = Field(
        Path.home() / ".cache" / "comparefaces",
        description="where float32 conversions of the embedded int8 models are cached (created on first start)",
    )
    execution_provider: Literal["cpu", "cuda"] = Field(
        "cpu", description="cuda needs onnxruntime-gpu (the gpu extra); start-up fails loudly if CUDA is unavailable"
    )
    intra_op_threads: int = Field(0, description="threads per recognizer call; 0 = number of cores")
    detector_threads: int = Field(
        1, description="onnxruntime threads per detector call (a 320 px canvas runs fastest on one)"
    )
    inference_workers: int = Field(0, description="threads that run inference concurrently; 0 = number of cores")
    recognizer_backend: Literal["openvino", "onnxruntime"] = Field(
        "openvino",
        description="what runs the recognizer on CPU (BENCHMARKS.md compares them); with the cuda provider "
        "onnxruntime always does",
    )
    recognizer_precision: Literal["bf16", "f32"] = Field(
        "bf16",
        description="recognizer arithmetic on openvino: bf16 where the CPU has bf16 instructions (AVX512_BF16 or "
        "AMX; embeddings within cosine 0.9997 of float32), else float32",
    )
    recognizer_batch_window_ms: float = Field(
        0.0,
        description="gather the crops of concurrent requests for up to this long into one recognizer call "
        "(helps on a GPU; 0: off, each request embeds its own two crops)",
    )
    recognizer_max_batch: int = Field(16, description="most crops in one micro-batched recognizer call")
    detection_max_side: int = Field(320, description="longest side of the image the detector sees (pixels)")
    min_detection_score: float = Field(0.6, description="detector confidence below which a face is ignored")
    model_download_base_url: str = Field(
        default="https://github.com/deepinsight/insightface/releases/download/v0.7",
        description="where `comparefaces models download NAME` fetches NAME.zip (a mirror may stand in)",
    )

    # Limits
    max_body_bytes: int = Field(
        8 * 1024 * 1024, description="request body cap (refused from Content-Length without reading it all)"
    )
    max_image_bytes: int = Field(
        5 * 1024 * 1024,
        description="cap on one encoded image, however it is addressed (the API advises callers to keep "
        "images within 2 MB; phone photos are 2-5 MB)",
    )
    max_image_pixels: int = Field(
        40_000_000, description="cap on an image's declared width x height (decompression bombs)"
    )
    jpeg_decode_min_side: int = Field(
        1280,
        description="large JPEGs are decoded at 1/2, 1/4 or 1/8 scale while their longer side stays at least "
        "this many pixels; 0: always full size",
    )
    max_decode_bytes: int = Field(
        128 * 1024 * 1024,
        description="memory one image's decode may take, computed from its header before decoding (a "
        "progressive JPEG keeps all its coefficients, 128 bytes per 8x8 block per component, at any scale); "
        "over it: ImageValuePatternError. Peak decode memory is at most this times INFERENCE_WORKERS",
    )
    max_in_flight: int = Field(
        8, description="comparisons admitted at once (running or queued); more get Throttling.User"
    )

    # Image addresses
    fetch_connect_timeout_s: float = Field(3.0, description="seconds to connect to an image URL's host")
    fetch_read_timeout_s: float = Field(10.0, description="seconds an image URL's host may stay silent while sending")
    fetch_max_redirects: int = Field(
        3, description="redirects followed per image URL (each one checked like the first)"
    )
    fetch_allow_networks: str = Field(
        "", description="comma-separated CIDRs or host names that URL fetches may reach despite the public-only rule"
    )
    object_store: Literal["local", "s3"] = Field(
        "local", description="where oss://bucket:key addresses are read: a local folder or any S3-compatible store"
    )
    object_store_root: Path = Field(
        Path("oss"), description="the local store's folder: object KEY of BUCKET is the file ROOT/BUCKET/KEY"
    )
    object_store_timeout_s: float = Field(
        10.0, description="seconds one read or write of the local store may take (a hung file system)"
    )
    s3_endpoint_url: str = Field("", description="the S3-compatible store's endpoint (empty: AWS's)")
    s3_region: str = Field("us-east-1", description="the S3 store's region")
    s3_access_key_id: str = Field("", description="the S3 store's access key id (empty: boto3's credential chain)")
    s3_secret_access_key: str = Field("", description="the S3 store's secret key")
    s3_timeout_s: float = Field(10.0, description="seconds for one S3 connect or read")
    fetch_total_timeout_s: float = Field(default=15.0, description="deadline of one URL fetch, redirects included")
    fetch_ca_file: Path | None = Field(default=None, description="CA bundle for https image URLs (default: certifi's)")

    # OSS uploads (docs/sdks-and-keys.md: "Uploading with OSS")
    oss_uploads: bool = Field(
        True, description="serve DescribeOssUploadToken and PutObject into the upload bucket of the object store"
    )
    oss_upload_bucket: str = Field(
        "comparefaces-uploads", description="the bucket uploads go to (created in the S3 store by the operator)"
    )
    oss_endpoint: str = Field(
        "",
        description="EndPoint returned in the token (e.g. https://faces.example.com); default: the scheme (https "
        "over TLS) and Host the token request came to",
    )
    oss_token_ttl_s: int = Field(900, ge=1, description="how long upload credentials stay valid (seconds)")
    oss_token_secret: SecretStr = Field(
        SecretStr(""),
        description="key that signs upload tokens; give every replica the same one (default: random per process)",
    )
    oss_upload_retention_s: int = Field(
        3600, ge=1, description="uploaded objects are deleted this long (seconds) after they were written"
    )
    oss_token_max_objects: int = Field(10, ge=1, description="objects one upload token may write")
    oss_token_max_bytes: int = Field(
        20 * 1024 * 1024, ge=1, description="bytes one upload token may write (in 4 KiB blocks, as on disk)"
    )
    oss_key_max_objects: int = Field(
        1000, ge=1, description="uploads one access key's tokens may have in the store at once (until retention)"
    )
    oss_key_max_bytes: int = Field(
        256 * 1024 * 1024, ge=1, description="bytes one access key's uploads may hold in the store at once"
    )
    oss_store_max_bytes: int = Field(
        768 * 1024 * 1024,
        ge=1,
        description="bytes all uploads of this process may hold (past it: ServiceUnavailable); size the store's "
        "volume at this plus MAX_OPEN_REQUESTS x MAX_IMAGE_BYTES",
    )
    oss_store_min_free_bytes: int = Field(
        256 * 1024 * 1024,
        ge=0,
        description="uploads are refused (ServiceUnavailable) while the local store's file system has less free",
    )

    # Access control
    access_keys_file: Path | None = Field(
        None,
        description="JSON file of access keys (comparefaces keys create); unset: open mode, no signature checked",
    )
    allow_unsigned: bool = Field(
        False,
        description="serve unsigned requests (open mode, no keys file) on an address other hosts can reach; "
        "without it such a server refuses to start",
    )
    redis_url: str = Field(
        "", description="shared nonce store for several server processes, e.g. redis://127.0.0.1:6379/0 (empty: memory)"
    )
    nonce_cache_size: int = Field(
        default=500_000,
        description="signature nonces remembered per access key (in memory or Redis); when its share is full, "
        "that key's requests are throttled",
    )
    nonce_key_max_bytes: int = Field(
        default=48 * 1024 * 1024,
        description="memory one access key's nonces may take (in memory: 168 bytes + the nonce each; Redis: 256 "
        "each); size Redis maxmemory at least keys x this",
    )
    signature_window_s: int = Field(
        default=900,
        description="how far (seconds) a signed request's Timestamp / x-acs-date may be from the server clock",
    )

    # Load and faults (docs/security.md)
    max_open_requests: int = Field(
        default=64,
        description="requests being received, checked or compared at once; past it: Throttling.User, body unread",
    )
    body_read_timeout_s: float = Field(
        default=60.0, description="deadline for receiving one request body; slower senders get a 400"
    )
    slow_client_grace_s: float = Field(
        default=10.0,
        description="a request head or body may take this long before it must keep up SLOW_CLIENT_MIN_RATE; "
        "a new connection that sends no head within it is closed",
    )
    slow_client_min_rate: float = Field(
        default=16384.0,
        description="bytes per second a request head or body must average after the grace period; slower: "
        "the connection is closed (head) or answered 400 (body); 0: no rate required",
    )
    head_read_timeout_s: float = Field(
        default=60.0,
        description="a request head (request line and headers) must arrive in full within this, however large it "
        "is and however fast its bytes come",
    )
    max_header_lines: int = Field(
        default=100, description="header lines of one request head (trailers too); more: answered 400 and closed"
    )
    max_header_bytes: int = Field(
        default=64 * 1024,
        description="bytes of one request's header section (the request line, which may carry images in the "
        "query string, is bounded by MAX_BODY_BYTES apart); more: answered 400 and closed",
    )
    incomplete_heads_max_bytes: int = Field(
        default=64 * 1024 * 1024,
        description="bytes all incomplete request heads together may hold; a head that would pass it is answered "
        "Throttling.User and closed",
    )
    incomplete_heads_max_bytes_per_client: int = Field(
        default=16 * 1024 * 1024,
        description="bytes the incomplete request heads of one client address may hold (behind a proxy that "
        "forwards heads unbuffered every client has the proxy's address: raise it)",
    )
    min_chunk_bytes: int = Field(
        default=1024,
        description="a chunked body's chunks must average this many bytes after its first 16 (each chunk costs "
        "event-loop time); smaller: answered 400 and closed",
    )
    keep_alive_timeout_s: float = Field(
        default=75.0,
        description="an idle kept-alive connection is closed after this long (clients and balancers expect "
        "60 s or more)",
    )
    max_idle_connections: int = Field(
        default=512, ge=1, description="idle kept-alive connections kept at once; past it the oldest is closed"
    )
    body_drain_bytes: int = Field(
        default=8 * 1024 * 1024,
        description="a body over MAX_BODY_BYTES is read and discarded up to this much more so that the client "
        "receives the error instead of a connection reset",
    )
    max_unverified_bodies: int = Field(
        default=32,
        description="of MAX_OPEN_REQUESTS, how many may be receiving bodies whose signature the head alone "
        "cannot verify (RPC v1, open mode); the rest stay free for V3-signed callers",
    )
    max_claimed_bodies: int = Field(
        default=16,
        description="of MAX_OPEN_REQUESTS, how many may be receiving bodies whose head names a known access key "
        "with a fresh timestamp and an unused nonce but cannot be verified before the body (RPC v1)",
    )
    max_receiving_per_key: int = Field(
        default=0,
        description="bodies of one access key (or upload token) being received at once; 0: a quarter of "
        "MAX_OPEN_REQUESTS",
    )
    max_bodies_per_client: int = Field(
        default=16,
        description="unverified and claimed bodies one client address may be sending at once (with access keys; "
        "behind a proxy every client has the proxy's address: raise it); 0: no cap",
    )
    max_in_flight_per_key: int = Field(
        default=0,
        description="comparisons one access key may have in flight (fetching, queued or running); "
        "0: three quarters of MAX_IN_FLIGHT",
    )
    inference_timeout_s: float = Field(
        default=30.0, description="budget for decoding and inference of one comparison; past it: ServiceUnavailable"
    )

    # Local development (docs/development.md)
    demo: Literal["auto", "on", "off"] = Field(
        "auto",
        description="the demo page at GET /demo: auto = on in open mode (no access keys) only; on = also with "
        "access keys (the page then signs its requests with a key typed into it); off",
    )
    allowed_hosts: str = Field(
        "",
        description="comma-separated host names (besides IP addresses and localhost) that the demo page and "
        "/metrics answer to; a request naming another Host, or sent by a page of another origin, gets 403 "
        "(DNS rebinding, cross-site forms)",
    )
    faults_file: Path | None = Field(
        default=None, description="fault injection rules (JSON, re-read on change); needs FAULTS_ENABLED=true"
    )
    faults_enabled: bool = Field(
        default=False, description="allow fault injection; a faults file without it refuses to start"
    )
