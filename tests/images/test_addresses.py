import base64

import pytest

from app.errors import ImageValuePatternError
from app.images.addresses import InlineImage, OssAddress, UrlAddress, parse_address


def test_address_forms() -> None:
    assert parse_address("https://example.com/a.jpg?x=1") == UrlAddress("https://example.com/a.jpg?x=1")
    assert parse_address("HTTP://example.com/a.jpg") == UrlAddress("HTTP://example.com/a.jpg")
    assert parse_address("oss://my-bucket:faces/a b~c*.jpg") == OssAddress("my-bucket", "faces/a b~c*.jpg")
    payload = base64.b64encode(b"\xff\xd8 image").decode()
    assert parse_address("base64://" + payload) == InlineImage(b"\xff\xd8 image")
    assert parse_address("base64://data:image/jpeg;base64," + payload) == InlineImage(b"\xff\xd8 image")
    assert parse_address("base64://" + payload.rstrip("=")) == InlineImage(b"\xff\xd8 image")


@pytest.mark.parametrize(
    "value",
    [
        "/etc/passwd",
        "file:///etc/passwd",
        "ftp://x/y",
        "oss://bucket",
        "oss://:key",
        "oss://B!:key",
        "base64://",
        "base64://!!!!",
        "data:image/png;base64,AAAA",
        "C:\\face.jpg",
    ],
)
def test_values_matching_no_form_are_pattern_errors(value: str) -> None:
    with pytest.raises(ImageValuePatternError):
        parse_address(value)
