"""``comparefaces compare A B``: the API's body for these images, exit codes, the annotated PNG."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest

from app.cli import main
from app.engine.build import load_engine
from app.engine.engine import FaceEngine
from app.settings import Settings
from app.tools.compare import EXIT_NO_MATCH, EXIT_OK, EXIT_REFUSED, EXIT_USAGE, compare_once, image_value
from tests.conftest import compare
from tests.helpers.images import astronaut_bgr, encode, lfw_photo
from tests.hostile.hostile_images import face_jpeg

BLANK = encode(np.full((200, 200, 3), 128, np.uint8))


@pytest.fixture(scope="module")
def engine(server_settings: Settings) -> Iterator[FaceEngine]:
    loaded = load_engine(server_settings)
    yield loaded
    loaded.close()


@pytest.fixture()
def photos(tmp_path: Path) -> dict[str, Path]:
    files = {"face": face_jpeg(), "astronaut": encode(astronaut_bgr()), "blank": BLANK, "text": b"not an image"}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    return {name: tmp_path / name for name in files}


def without_request_id(body: bytes) -> dict[str, object]:
    """The body without what names the call: its RequestId, and the HostId of an error (the host the
    API was called at; the CLI calls no host)."""
    parsed = json.loads(body)
    parsed.pop("RequestId")
    parsed.pop("HostId", None)
    return parsed


@pytest.mark.parametrize(
    ("source", "target", "types"),
    [
        ("face", "astronaut", ("FacePic", "FacePic")),
        ("face", "astronaut", ("FacePic", "IDPic")),
        ("face", "blank", ("FacePic", "FacePic")),
        ("text", "face", ("FacePic", "FacePic")),
        ("face", "face", ("IDPic", "IDPic")),
        ("face", "face", ("FacePic", "Selfie")),
    ],
)
def test_prints_what_the_api_answers(
    client: httpx.Client,
    engine: FaceEngine,
    server_settings: Settings,
    photos: dict[str, Path],
    source: str,
    target: str,
    types: tuple[str, str],
) -> None:
    params = {
        "SourceImageType": types[0],
        "SourceImageValue": image_value(str(photos[source])),
        "TargetImageType": types[1],
        "TargetImageValue": image_value(str(photos[target])),
    }
    outcome = asyncio.run(compare_once(params, engine, server_settings, inspect=False))
    api = compare(client, params)
    assert outcome.status == api.status_code
    assert without_request_id(outcome.body) == without_request_id(api.content)


def test_exit_codes_and_outputs(
    photos: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], server_settings: Settings
) -> None:
    face, astronaut = str(photos["face"]), str(photos["astronaut"])
    assert main(["compare", face, astronaut]) == EXIT_OK
    body = json.loads(capsys.readouterr().out)
    assert body["Success"] is True and body["Data"]["SimilarityScore"] > 90

    png = tmp_path / "out.png"
    assert main(["compare", face, str(photos["blank"]), "--format", "xml", "--annotate", str(png)]) == EXIT_REFUSED
    out = capsys.readouterr().out
    assert out.startswith("<?xml") and "<Code>Error.NoFaceDetected</Code>" in out
    drawn = cv2.imread(str(png))
    assert drawn is not None and drawn.shape[1] > drawn.shape[0]  # both images side by side

    assert main(["compare", face, str(tmp_path / "missing.jpg")]) == EXIT_USAGE
    assert "cannot read" in capsys.readouterr().err


def test_match_far_exit_code(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    first, second = tmp_path / "bush.jpg", tmp_path / "blair.jpg"
    first.write_bytes(lfw_photo("George_W_Bush", 1))
    second.write_bytes(lfw_photo("Tony_Blair", 1))
    assert main(["compare", str(first), str(second), "--match-far", "0.0001"]) == EXIT_NO_MATCH
    assert json.loads(capsys.readouterr().out)["Data"]["SimilarityScore"] < 90


def test_says_the_verdict_and_what_it_wrote_on_stderr(
    photos: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    png = tmp_path / "out.png"
    face, astronaut = str(photos["face"]), str(photos["astronaut"])
    assert main(["compare", face, astronaut, "--target-type", "idpic", "--annotate", str(png)]) == EXIT_OK
    captured = capsys.readouterr()
    body = json.loads(captured.out)  # stdout: the body alone
    score = body["Data"]["SimilarityScore"]
    lines = captured.err.splitlines()
    assert lines[0].startswith(f"verdict: same person. Score {score:.2f} reaches ")
    assert lines[0].endswith("strangers score this high")
    assert lines[-1] == f"wrote {png}" and png.stat().st_size > 0
    assert not [line for line in lines if line.startswith("INFO ")]  # no model-loading noise


def test_a_bad_image_type_is_a_usage_error(photos: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["compare", str(photos["face"]), str(photos["face"]), "--target-type", "selfie"])
    assert exit_info.value.code == EXIT_USAGE
    assert "'selfie' is no image type: FacePic or IDPic" in capsys.readouterr().err


def test_says_why_an_image_is_refused(
    photos: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    face = str(photos["face"])
    assert main(["compare", face, "http://127.0.0.1:9/id.jpg"]) == EXIT_REFUSED
    captured = capsys.readouterr()
    assert json.loads(captured.out)["Code"] == "InvalidParam.ImageValuePatternError"  # the contract's body
    assert "why: 127.0.0.1 is not a public address (COMPAREFACES_FETCH_ALLOW_NETWORKS" in captured.err

    assert main(["compare", str(photos["text"]), face]) == EXIT_REFUSED
    assert "why: a value in no address form" in capsys.readouterr().err

    monkeypatch.setenv("COMPAREFACES_MAX_IMAGE_BYTES", "1000")
    assert main(["compare", face, face]) == EXIT_REFUSED
    why = capsys.readouterr().err
    assert re.search(r"why: an image of \d+ bytes is over COMPAREFACES_MAX_IMAGE_BYTES=1000", why), why
