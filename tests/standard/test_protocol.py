"""The protocol catalogue: the rule that picks a rejected record's msgCode."""

from __future__ import annotations

from imsp.standard.protocol import RECORD, RECORD_CODE_PRIORITY, record_msg_code


def test_most_fundamental_problem_decides_the_msg_code() -> None:
    assert record_msg_code({-94, -99}) == -99  # missing beats logic
    assert record_msg_code({-96, -97}) == -97  # value set beats format
    assert record_msg_code({-99, -93}) == -93  # wrong institution beats everything but non-objects
    assert record_msg_code({-98, -93}) == -98


def test_unknown_codes_fall_back_to_other_error() -> None:
    assert record_msg_code(set()) == -1
    assert record_msg_code({-12345}) == -1


def test_every_prioritised_code_is_in_the_published_catalogue() -> None:
    assert set(RECORD_CODE_PRIORITY) <= set(RECORD)
    assert len(set(RECORD_CODE_PRIORITY)) == len(RECORD_CODE_PRIORITY)
