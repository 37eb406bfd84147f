"""The retained-state owner: what is due after a change, a refresh and a reconnect."""

from __future__ import annotations

from scene_agent.retained import RetainedState


def test_only_what_changed_is_due_until_a_reconnect() -> None:
    r = RetainedState()
    r.want("a/state", "ON")
    r.want("a/image", b"\xff\xd8")
    assert r.due() == [("a/state", b"ON"), ("a/image", b"\xff\xd8")]
    for topic, payload in r.due():
        r.sent(topic, payload)
    assert r.due() == []
    r.want("a/state", "ON")  # unchanged: nothing to send
    assert r.due() == []
    r.want("a/state", "OFF")
    assert r.due() == [("a/state", b"OFF")]
    r.sent("a/state", b"OFF")
    r.refresh("a/state")
    assert r.due() == [("a/state", b"OFF")]
    r.reconnected()
    assert [t for t, _ in r.due()] == ["a/state", "a/image"]
