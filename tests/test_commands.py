"""Command parsing: every payload form, every refusal, and a fuzzer that it never crashes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scene_agent import topics
from scene_agent.commands import (
    MAX_PAYLOAD_BYTES,
    CommandError,
    Delete,
    ListEvents,
    SetMonitoring,
    SetThreshold,
    Snapshot,
    parse_command,
)

GOOD_ID = "20261126T081912345Z-a1b2c3"


@pytest.mark.parametrize(
    ("name", "payload", "expected"),
    [
        (topics.CMD_SNAPSHOT, b"", Snapshot()),
        (topics.CMD_SNAPSHOT, b"PRESS", Snapshot()),
        (topics.CMD_SNAPSHOT, b"{}", Snapshot()),
        (topics.CMD_SNAPSHOT, b'{"seconds": 2.5}', Snapshot(seconds=2.5)),
        (topics.CMD_SNAPSHOT, b'{"frames": 5}', Snapshot(5)),
        (topics.CMD_SNAPSHOT, b'{"frames": 5.0}', Snapshot(5)),
        (topics.CMD_START, b"", SetMonitoring(True)),
        (topics.CMD_START, b"anything at all", SetMonitoring(True)),
        (topics.CMD_STOP, b"PRESS", SetMonitoring(False)),
        (topics.MONITORING_SET, b"ON", SetMonitoring(True)),
        (topics.MONITORING_SET, b"off", SetMonitoring(False)),
        (topics.MONITORING_SET, b' {"state": "ON"} ', SetMonitoring(True)),
        (topics.THRESHOLD_SET, b"25", SetThreshold(25.0)),
        (topics.THRESHOLD_SET, b"7.5\n", SetThreshold(7.5)),
        (topics.THRESHOLD_SET, b'{"value": 40}', SetThreshold(40.0)),
        (topics.CMD_DELETE, b"", Delete(all=True)),
        (topics.CMD_DELETE, b"all", Delete(all=True)),
        (topics.CMD_DELETE, b"PRESS", Delete(all=True)),
        (topics.CMD_DELETE, b'{"all": true}', Delete(all=True)),
        (topics.CMD_DELETE, f'{{"id": "{GOOD_ID}"}}'.encode(), Delete(id=GOOD_ID)),
        (
            topics.CMD_DELETE,
            b'{"before": "2026-11-26T08:00:00Z"}',
            Delete(before=datetime(2026, 11, 26, 8, tzinfo=UTC)),
        ),
        (
            topics.CMD_DELETE,
            b'{"before": "2026-11-26T08:00:00"}',
            Delete(before=datetime(2026, 11, 26, 8, tzinfo=UTC)),
        ),
        (topics.CMD_LIST, b"", ListEvents(20)),
        (topics.CMD_LIST, b"5", ListEvents(5)),
        (topics.CMD_LIST, b'{"limit": 100}', ListEvents(100)),
    ],
)
def test_accepted_forms(name: str, payload: bytes, expected: object) -> None:
    assert parse_command(name, payload) == expected


@pytest.mark.parametrize(
    ("name", "payload", "message"),
    [
        ("cmd/reboot", b"", "unknown command"),
        ("cmd/../../x", b"", "unknown command"),
        (topics.CMD_SNAPSHOT, b"\xff\xfe", "not valid UTF-8"),
        (topics.CMD_SNAPSHOT, b"{", "malformed JSON"),
        (topics.CMD_SNAPSHOT, b'{"frames": 0}', "from 1 to 300"),
        (topics.CMD_SNAPSHOT, b'{"frames": 301}', "from 1 to 300"),
        (topics.CMD_SNAPSHOT, b'{"seconds": 0}', "above 0"),
        (topics.CMD_SNAPSHOT, b'{"seconds": 61}', "at most 60"),
        (topics.CMD_SNAPSHOT, b'{"seconds": true}', "seconds must be a number"),
        (topics.CMD_SNAPSHOT, b'{"frames": 5, "seconds": 1}', "not both"),
        (topics.CMD_SNAPSHOT, b'{"frames": "x"}', "whole number"),
        (topics.CMD_SNAPSHOT, b'{"frames": true}', "whole number"),
        (topics.CMD_SNAPSHOT, b'{"frames": 2.5}', "whole number"),
        (topics.CMD_SNAPSHOT, b'{"frame": 2}', "unknown key"),
        (topics.CMD_START, b"{oops", "malformed JSON"),
        (topics.MONITORING_SET, b"MAYBE", "ON or OFF"),
        (topics.MONITORING_SET, b"", "ON or OFF"),
        (topics.THRESHOLD_SET, b"-1", "from 0.1 to 65025"),
        (topics.THRESHOLD_SET, b"0", "from 0.1 to 65025"),
        (topics.THRESHOLD_SET, b"0.05", "from 0.1 to 65025"),
        (topics.THRESHOLD_SET, b"NaN", "from 0.1 to 65025"),
        (topics.THRESHOLD_SET, b"inf", "from 0.1 to 65025"),
        (topics.THRESHOLD_SET, b"1e9", "from 0.1 to 65025"),
        (topics.THRESHOLD_SET, b"abc", "must be a number"),
        (topics.THRESHOLD_SET, b"", "must be a number"),
        (topics.THRESHOLD_SET, b'{"value": [1]}', "must be a number"),
        (topics.THRESHOLD_SET, b"[1, 2]", "must be a number"),
        (topics.CMD_DELETE, b'{"id": "../../etc/passwd"}', "not an event id"),
        (topics.CMD_DELETE, b'{"id": "/etc/passwd"}', "not an event id"),
        (topics.CMD_DELETE, b'{"id": 5}', "not an event id"),
        (topics.CMD_DELETE, b'{"before": "yesterday"}', "not an ISO-8601"),
        (topics.CMD_DELETE, b'{"before": 5}', "ISO-8601"),
        (topics.CMD_DELETE, b'{"all": false}', "must be true"),
        (topics.CMD_DELETE, f'{{"id": "{GOOD_ID}", "all": true}}'.encode(), "exactly one"),
        (topics.CMD_DELETE, b"everything", "delete takes"),
        (topics.CMD_DELETE, b"[1]", "delete takes"),
        (topics.CMD_LIST, b'{"limit": 1000000000}', "from 1 to 100"),
        (topics.CMD_LIST, b"-5", "from 1 to 100"),
        (topics.CMD_LIST, b'{"limit": "many"}', "whole number"),
        (topics.CMD_LIST, b"[]", "whole number"),
        (topics.CMD_LIST, b'"x"', "whole number"),
    ],
)
def test_refusals_have_clear_messages(name: str, payload: bytes, message: str) -> None:
    with pytest.raises(CommandError, match=message):
        parse_command(name, payload)


def test_threshold_accepts_json_string_number() -> None:
    # A number sent as a JSON string is still a number.
    assert parse_command(topics.THRESHOLD_SET, b'{"value": "12"}') == SetThreshold(12.0)


def test_oversized_payload_is_refused_before_parsing() -> None:
    with pytest.raises(CommandError, match="too large"):
        parse_command(topics.CMD_LIST, b" " * (MAX_PAYLOAD_BYTES + 1))
    with pytest.raises(CommandError, match="too large"):
        parse_command(topics.THRESHOLD_SET, b"1" * (10 * 1024 * 1024))


def test_deeply_nested_json_is_refused_not_crashing() -> None:
    with pytest.raises(CommandError):
        parse_command(topics.CMD_LIST, b"{" + b'"a":{' * 5000 + b"}" * 5001)


@settings(max_examples=400, deadline=None)
@given(
    name=st.one_of(st.sampled_from(topics.COMMANDS), st.text(max_size=30)),
    payload=st.one_of(
        st.binary(max_size=300),
        st.text(max_size=200).map(str.encode),
        st.recursive(
            st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=20),
            lambda children: (
                st.lists(children, max_size=4)
                | st.dictionaries(
                    st.sampled_from(
                        ["frames", "seconds", "limit", "id", "before", "all", "value", "x"]
                    ),
                    children,
                    max_size=4,
                )
            ),
            max_leaves=10,
        ).map(lambda v: __import__("json").dumps(v).encode()),
    ),
)
def test_fuzz_parser_only_ever_accepts_or_refuses(name: str, payload: bytes) -> None:
    try:
        command = parse_command(name, payload)
    except CommandError as exc:
        assert str(exc)
        return
    # Whatever got through is within its bounds.
    if isinstance(command, Snapshot):
        assert command.frames is None or 1 <= command.frames <= 300
        assert command.seconds is None or 0 < command.seconds <= 60
        assert command.frames is None or command.seconds is None
    elif isinstance(command, ListEvents):
        assert 1 <= command.limit <= 100
    elif isinstance(command, SetThreshold):
        assert 0.1 <= command.value <= 65025
    elif isinstance(command, Delete):
        assert command.id is None or "/" not in command.id
        assert sum([command.all, command.id is not None, command.before is not None]) == 1
