"""A decode-memory bomb over HTTP (40 MP progressive CMYK 4:4:4, 600 KB, 305 MiB to decode) is refused
from its header in under a second, as other undecodable images are, while a normal request is served."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from tests.hostile.decode_memory_bombs import progressive_cmyk_bomb
from tests.hostile.hostile_images import face_jpeg
from tests.hostile.test_decode_bombs_api import PATTERN, timed


def test_progressive_cmyk_bomb_is_refused_fast_while_a_normal_request_is_served(server: str) -> None:
    bomb = progressive_cmyk_bomb()
    with ThreadPoolExecutor(max_workers=3) as pool:
        bombs = [pool.submit(timed, server, bomb) for _ in range(2)]
        normal = pool.submit(timed, server, face_jpeg())
        for future in bombs:
            seconds, response = future.result()
            assert response.status_code == 400 and response.json()["Code"] == PATTERN
            assert seconds < 1.0, f"bomb answered in {seconds:.2f} s"
        seconds, response = normal.result()
        assert response.status_code == 200, response.text
        assert response.json()["Data"]["SimilarityScore"] > 99
