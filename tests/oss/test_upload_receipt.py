"""Upload bodies are received as API bodies are: at the minimum rate, and in a share per upload
credential, so that slow uploads of one token lock out neither other uploaders nor the next call."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import oss2
from oss2.http import Request

from tests.helpers.images import astronaut_face_crop, encode
from tests.helpers.server import run_server
from tests.hostile.rawhttp import answered_within, read_response
from tests.oss.conftest import BUCKET, describe_token, oss2_bucket, upload_settings

FACE = encode(astronaut_face_crop())


def slow_uploads(url: str, token: dict[str, Any], count: int, stack: ExitStack) -> Iterator[socket.socket]:
    """``count`` signed PutObject requests of ``token`` that send their head and 100 bytes of body."""
    endpoint = url.removeprefix("http://")
    host, port = endpoint.split(":")
    auth = oss2.StsAuth(token["Key"], token["Secret"], token["Token"], auth_version=oss2.AUTH_VERSION_4)
    for n in range(count):
        key = f"{token['Path']}/slow-{n}.jpg"
        signed = Request("PUT", f"{url}/{BUCKET}/{key}", data=FACE, region="cn-hangzhou", product="oss")
        auth._sign_request(signed, BUCKET, key)
        head = f"PUT /{BUCKET}/{key} HTTP/1.1\r\nHost: {endpoint}\r\nContent-Length: {len(FACE)}\r\n"
        head += "".join(f"{name}: {value}\r\n" for name, value in signed.headers.items() if value is not None)
        sock = stack.enter_context(socket.create_connection((host, int(port)), timeout=30))
        sock.sendall((head + "\r\n").encode() + FACE[:100])
        yield sock


def test_slow_uploads_of_one_token_do_not_lock_out_other_uploaders(upload_keys_file: Path, tmp_path: Path) -> None:
    settings = upload_settings(
        upload_keys_file, object_store_root=tmp_path, max_open_requests=16, max_receiving_per_key=4
    )
    with run_server(settings) as url, ExitStack() as stack:
        endpoint = url.removeprefix("http://")
        greedy = describe_token(endpoint)
        held = list(slow_uploads(url, greedy, 16, stack))  # as many as the server has open-request slots
        time.sleep(0.5)
        refused = [sock for sock in held if answered_within(sock, 0.05)]
        assert len(refused) == 12  # past the token's share of 4: answered at once, body unread
        assert {read_response(sock).status for sock in refused} == {503}
        other = describe_token(endpoint)
        oss2_bucket(other, v4=True).put_object(f"{other['Path']}/face.jpg", FACE)
        assert (tmp_path / BUCKET / other["Path"] / "face.jpg").read_bytes() == FACE


def test_a_slow_upload_body_is_refused_at_the_minimum_rate(upload_keys_file: Path, tmp_path: Path) -> None:
    settings = upload_settings(
        upload_keys_file, object_store_root=tmp_path, slow_client_grace_s=1.0, slow_client_min_rate=1000
    )
    with run_server(settings) as url, ExitStack() as stack:
        token = describe_token(url.removeprefix("http://"))
        (sock,) = slow_uploads(url, token, 1, stack)
        started = time.monotonic()
        response = read_response(sock)  # nothing more is sent: answered once behind the rate
        assert response.status == 400 and b"<Code>RequestTimeout</Code>" in response.body
        assert 1.0 < time.monotonic() - started < 4.0
