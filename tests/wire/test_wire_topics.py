"""Topic names: build, parse, subscriptions, identifier rules."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wire.topics import (
    INGEST_SHARE_GROUP,
    Kind,
    TopicError,
    TopicParts,
    parse_topic,
    shared_subscription,
    subscription,
    topic,
    validate_identifier,
)

IDENTIFIERS = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")


@pytest.mark.parametrize(
    "name",
    ["a", "0", "bxl-1000", "ctrl_01.pole-7", "A" * 64, "x.y-z_w"],
)
def test_valid_identifiers(name):
    assert validate_identifier(name, "controller") == name


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("", "is empty"),
        ("a/b", "'/'"),
        ("a+b", "'+'"),
        ("a#", "'#'"),
        ("$SYS", "'$'"),
        ("a\x00b", "NUL"),
        ("a b", "whitespace"),
        ("a\tb", "whitespace"),
        ("caf\u00e9", "non-ASCII"),
        ("A" * 65, "65 characters long, over 64"),
        ("-lead", "must start with a letter or digit"),
        (".hidden", "must start with a letter or digit"),
        ("a:b", "contains ':'"),
        ("a@b", "contains '@'"),
    ],
)
def test_invalid_identifiers_say_why(name, reason):
    with pytest.raises(TopicError, match="tenant") as info:
        validate_identifier(name, "tenant")
    assert reason in str(info.value)
    assert isinstance(info.value, ValueError)


def test_topic_layout():
    assert topic("brussels", "ctrl-1", Kind.TELEMETRY) == "luciole/v1/brussels/ctrl-1/telemetry"
    assert topic("t", "c", "cmd") == "luciole/v1/t/c/cmd"


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("luciole/v1/t/c", "has 4 levels"),
        ("luciole/v1/t/c/telemetry/x", "has 6 levels"),
        ("lucy/v1/t/c/telemetry", "does not start with 'luciole'"),
        ("luciole/v2/t/c/telemetry", "version 'v2'"),
        ("luciole/v1/t/c/metrics", "unknown kind 'metrics'"),
        ("luciole/v1/+/c/telemetry", "tenant '+'"),
        ("luciole/v1/t/#/telemetry", "controller '#'"),
        ("luciole/v1//c/telemetry", "tenant '' is empty"),
    ],
)
def test_parse_topic_rejects(name, reason):
    with pytest.raises(TopicError) as info:
        parse_topic(name)
    assert reason in str(info.value)


def test_topic_refuses_bad_parts():
    with pytest.raises(TopicError, match="controller 'a/b'"):
        topic("t", "a/b", Kind.EVENT)
    with pytest.raises(TopicError, match="unknown kind"):
        topic("t", "c", "nope")


@given(IDENTIFIERS, IDENTIFIERS, st.sampled_from(Kind))
def test_round_trip(tenant, controller, kind):
    parts = parse_topic(topic(tenant, controller, kind))
    assert parts == TopicParts(tenant, controller, kind)
    assert parts.kind is kind


def test_subscriptions():
    assert INGEST_SHARE_GROUP == "ingest"
    assert shared_subscription(Kind.TELEMETRY) == "$share/ingest/luciole/v1/+/+/telemetry"
    assert shared_subscription("event", group="alerts") == "$share/alerts/luciole/v1/+/+/event"
    assert subscription(Kind.ACK) == "luciole/v1/+/+/ack"
    assert subscription(Kind.CMD, tenant="t", controller="c") == "luciole/v1/t/c/cmd"
    assert subscription("state", tenant="t") == "luciole/v1/t/+/state"
    with pytest.raises(TopicError):
        subscription(Kind.CMD, tenant="#")
    with pytest.raises(TopicError):
        shared_subscription(Kind.TELEMETRY, group="a/b")
