"""Every line written to a stdio server is answered, even one it cannot parse, and the server keeps
serving: a real ``agent-memory serve`` subprocess fed raw bytes.

Before #13 the SDK's reader dropped such a line without a word, and the client waited for ever."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.rawstdio import StdioServer

PARSE_ERROR = -32700
INVALID_REQUEST = -32600


def _call(request_id: object, arguments_json: str) -> bytes:
    return (
        f'{{"jsonrpc":"2.0","id":{json.dumps(request_id)},"method":"tools/call",'
        f'"params":{{"name":"store_stm","arguments":{arguments_json}}}}}\n'
    ).encode()


def _nested(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


UNREADABLE = [
    # (what, raw line, expected code, id the answer carries, words of the message)
    ("lone surrogate", _call(7, r'{"key":"k","value":"\ud800"}'), PARSE_ERROR, 7, "lone surrogates"),
    ("200 levels deep", _call(8, f'{{"key":"k","value":{_nested(200)}}}'), PARSE_ERROR, 8, "too deeply"),
    ("not JSON", b"hello there\n", PARSE_ERROR, None, "not valid JSON"),
    (
        "truncated JSON",
        b'{"jsonrpc":"2.0","id":"req-9","method":"ping"\n',
        PARSE_ERROR,
        "req-9",
        "not valid JSON",
    ),
    ("not UTF-8", _call(10, '{"key":"k","value":"@"}').replace(b"@", b"\xff\xfe"), PARSE_ERROR, 10, "UTF-8"),
    (
        "UTF-8 of a surrogate",
        _call(11, '{"key":"k","value":"@"}').replace(b"@", b"\xed\xa0\x80"),
        PARSE_ERROR,
        11,
        "UTF-8",
    ),
    ("no method", b'{"jsonrpc":"2.0","id":12}\n', INVALID_REQUEST, 12, "Invalid request"),
    ("an array", b"[1, 2, 3]\n", INVALID_REQUEST, None, "Invalid request"),
    (
        "a surrogate id",
        b'{"jsonrpc":"2.0","id":"\\udc00","method":"ping"}\n',
        PARSE_ERROR,
        None,
        "lone surrogates",
    ),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StdioServer]:
    tmp = tmp_path_factory.mktemp("stdio")
    log = (tmp / "server.log").open("wb")
    served = StdioServer(tmp / "memory.db", "hunter", stderr=log)
    yield served
    assert served.close() == 0
    log.close()
    text = (tmp / "server.log").read_text(encoding="utf-8", errors="replace")
    assert "Traceback" not in text, text


@pytest.mark.parametrize(
    ("what", "line", "code", "request_id", "words"), UNREADABLE, ids=[u[0] for u in UNREADABLE]
)
def test_an_unreadable_line_is_answered_and_serving_goes_on(
    server: StdioServer, what: str, line: bytes, code: int, request_id: object, words: str
) -> None:
    server.send_raw(line)
    answer = server.next_message()
    assert answer["jsonrpc"] == "2.0" and answer["id"] == request_id, answer
    assert answer["error"]["code"] == code and words in answer["error"]["message"], answer
    assert "Traceback" not in answer["error"]["message"]
    # The same connection still serves, and the refused line stored nothing.
    assert server.call("store_stm", key="after", value=what)["key"] == "after"
    notes = server.call("recall_stm")["notes"]
    assert [n["key"] for n in notes] == ["after"], notes


def test_blank_lines_are_skipped_and_a_valid_request_after_them_is_answered(server: StdioServer) -> None:
    server.send_raw(b"\n  \n\r\n")
    assert server.request({"method": "ping"}) == {"jsonrpc": "2.0", "id": server.next_id, "result": {}}


def test_a_client_that_sent_garbage_gets_every_answer_in_order(tmp_path: Path) -> None:
    """Pipelined: good and bad lines interleaved, each answered once, none lost."""
    served = StdioServer(tmp_path / "memory.db", "hunter", stderr=subprocess.DEVNULL)
    try:
        for i in range(20):
            served.send_raw(_call(f"good-{i}", f'{{"key":"k{i}","value":{i}}}'))
            served.send_raw(_call(f"bad-{i}", r'{"key":"k","value":"\udfff"}'))
        answers = [served.next_message() for _ in range(40)]
        by_id = {a["id"]: a for a in answers}
        assert len(by_id) == 40
        assert all(
            "result" in by_id[f"good-{i}"] and by_id[f"bad-{i}"]["error"]["code"] == PARSE_ERROR
            for i in range(20)
        )
    finally:
        assert served.close() == 0
