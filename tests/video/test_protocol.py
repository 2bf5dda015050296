"""The published video chapter and the code that implements it agree."""

from __future__ import annotations

from imsp.config import VideoSettings
from imsp.standard import video as P
from imsp.standard.spec import render_markdown
from imsp.standard.spec import video as chapter


def test_spec_limits_are_the_platform_defaults() -> None:
    s = VideoSettings()
    assert (s.connect_timeout, s.read_timeout, s.query_deadline) == (
        chapter.CONNECT_TIMEOUT, chapter.READ_TIMEOUT, chapter.QUERY_DEADLINE,
    )  # fmt: skip
    assert s.max_json_bytes == chapter.MAX_JSON_KB * 1024


def test_video_chapter_lists_every_code_and_field() -> None:
    text = render_markdown()["10-video.md"]
    for c in P.CODES.values():
        assert f"`{c.code}`" in text and c.msg in text
    for f in P.VIDEO_FIELDS:
        assert f"`{f.name}`" in text
    assert "10-video.md#video" in render_markdown()["README.md"]


def test_token_errors_are_distinct_from_other_refusals() -> None:
    assert {P.TOKEN_MISSING, P.TOKEN_INVALID, P.TOKEN_EXPIRED} == P.TOKEN_ERRORS
    assert len({c.code for c in P.CODES.values()}) == len(P.CODES)
    assert P.mask_id_card("130102198001011234") == "1301**********1234"
    assert P.mask_name("张三丰") == "张**"
