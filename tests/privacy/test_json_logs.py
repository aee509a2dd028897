"""``COMPAREFACES_LOG_FORMAT=json``: one JSON object per line, access records with their fields as
keys, and still no image data under the hostile workload (the same scan as the text logs)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers.image_host import image_host
from tests.helpers.server import log_file, spawn_server
from tests.hostile.hostile_images import face_jpeg
from tests.privacy.test_no_image_data_in_logs import findings, hostile_workload

ACCESS_KEYS = {
    "time",
    "level",
    "logger",
    "message",
    "request_id",
    "key_id",
    "action",
    "status",
    "code",
    "pair_type",
    "latency_ms",
}


def test_json_logs_are_one_object_per_line_without_image_data(tmp_path: Path) -> None:
    env = {
        "COMPAREFACES_LOG_FORMAT": "json",
        "COMPAREFACES_LOG_LEVEL": "debug",
        "COMPAREFACES_FETCH_ALLOW_NETWORKS": "127.0.0.1/32",
        "COMPAREFACES_OBJECT_STORE_ROOT": str(tmp_path),
    }
    with image_host(face_jpeg()) as (images, _), spawn_server(env, log_name="privacy-json-server.log") as (url, _):
        sent = hostile_workload(url, images)
    log = log_file("privacy-json-server.log")
    assert log is not None
    records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    access = [record for record in records if record["logger"] == "comparefaces.access"]
    assert len(access) == sent
    assert all(set(record) == ACCESS_KEYS for record in access), access[0]
    assert access[0]["code"] == "OK" and access[0]["pair_type"] == "FacePic-FacePic" and access[0]["status"] == 200
    assert {record["action"] for record in access} <= {"CompareFaces", "-"}
    assert all(isinstance(record["latency_ms"], float) for record in access)
    assert any(record["logger"].startswith("uvicorn") for record in records)  # everyone's records, not just ours
    assert not findings([log]), findings([log])
