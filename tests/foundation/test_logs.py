"""``imsp.logs``: one JSON object a line (or readable text), node and pid on every line, access
lines only when asked, and a resident ID number masked wherever it slipped in."""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Iterator

import orjson
import pytest

from imsp import logs
from imsp.config import Settings

ID = "130102199001011234"


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    access_level = logs.ACCESS.level
    yield
    for h in list(root.handlers):
        root.removeHandler(h)
    for h in handlers:
        root.addHandler(h)
    root.setLevel(level)
    logs.ACCESS.setLevel(access_level)
    logs._configured = False


def _log_everything(settings: Settings) -> str:
    out = io.StringIO()
    logs.configure(settings, stream=out)
    logs.access("uploadRegister 200", {"exchange_id": "0193", "app_id": "app1", "note": ID})
    logging.getLogger("imsp.exchange").warning("record %s refused", ID)
    try:
        raise ValueError(f"bad value {ID}")
    except ValueError:
        logging.getLogger("imsp.web").exception("unhandled error")
    return out.getvalue()


def test_json_lines_parse_and_never_hold_an_id_number(restore_logging: None) -> None:
    text = _log_everything(Settings(log_format="json", node_name="node-7"))
    docs = [orjson.loads(line) for line in text.splitlines()]
    assert [d["logger"] for d in docs] == ["imsp.access", "imsp.exchange", "imsp.web"]
    assert {d["node"] for d in docs} == {"node-7"} and {d["pid"] for d in docs} == {os.getpid()}
    assert docs[0]["exchange_id"] == "0193" and docs[0]["app_id"] == "app1"
    assert "ValueError" in docs[2]["exc"]
    assert ID not in text
    assert "130102********1234" in docs[1]["msg"]


def test_text_is_the_default_and_writes_no_access_lines(restore_logging: None) -> None:
    text = _log_everything(Settings())
    assert "imsp.access" not in text  # access lines need json or IMSP_LOG_ACCESS
    assert "record 130102********1234 refused" in text
    assert ID not in text
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(text.splitlines()[0])


def test_access_lines_in_text_when_asked(restore_logging: None) -> None:
    text = _log_everything(Settings(log_access=True))
    line = text.splitlines()[0]
    assert "imsp.access uploadRegister 200" in line and "exchange_id=0193" in line
    assert ID not in text


def test_node_name_defaults_to_the_host_name() -> None:
    import socket

    assert logs.node_name(Settings()) == socket.gethostname()
    assert logs.node_name(Settings(node_name="ex-2")) == "ex-2"


def test_a_field_cannot_forge_a_text_line(restore_logging: None) -> None:
    out = io.StringIO()
    logs.configure(Settings(log_access=True), stream=out)
    logs.access("accesstoken 40002", {"app_id": "x\n2026-01-01 00:00:00 INFO forged", "code": 1})
    (line,) = out.getvalue().splitlines()
    assert 'app_id="x\\n2026-01-01 00:00:00 INFO forged" code=1' in line
