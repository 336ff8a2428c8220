"""The matcher grammar, case by case as Alertmanager's classic parser reads it."""

from __future__ import annotations

import pytest

from notify_devino.alertmanager.matchers import (
    Matcher,
    MatcherError,
    equality_matchers,
    matches_all,
    parse_matcher_lines,
    parse_matchers,
)


def triples(text: str) -> list[tuple[str, str, str]]:
    return [(m.name, m.op, m.value) for m in parse_matchers(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{}", []),
        ('{foo="bar"}', [("foo", "=", "bar")]),
        ("foo=bar", [("foo", "=", "bar")]),
        ('{foo=~"bar.*"}', [("foo", "=~", "bar.*")]),
        ("{foo!~bar.*}", [("foo", "!~", "bar.*")]),
        ('{foo!="bar"}', [("foo", "!=", "bar")]),
        ('{foo=""}', [("foo", "=", "")]),
        ("job=", [("job", "=", "")]),
        ('{foo="bar,quux", job="job1"}', [("foo", "=", "bar,quux"), ("job", "=", "job1")]),
        ('{foo = "bar", dings != "bums", }', [("foo", "=", "bar"), ("dings", "!=", "bums")]),
        ('quote="She said: \\"Hi, all!\\""', [("quote", "=", 'She said: "Hi, all!"')]),
        ("tricky=~~~", [("tricky", "=~", "~~")]),
        ('trickier==\\\\=\\=\\"', [("trickier", "=", '=\\=\\="')]),
        (
            'contains_quote != "\\"" , contains_comma !~ "foo,bar" , ',
            [("contains_quote", "!=", '"'), ("contains_comma", "!~", "foo,bar")],
        ),
        ("{foo=bar}}", [("foo", "=", "bar}")]),  # one brace is trimmed at each end
        ("{foo=,bar=}}", [("foo", "=", ""), ("bar", "=", "}")]),
        ("{foo=bar\\t}", [("foo", "=", "bar\\t")]),  # a spurious escape stays a backslash
        ("{foo=bar\\n}", [("foo", "=", "bar\n")]),
        ("{foo=bar\\}", [("foo", "=", "bar\\")]),  # a backslash at the end is literal
        ("{foo=bar\\\\}", [("foo", "=", "bar\\")]),
        ("{foo='}", [("foo", "=", "'")]),
        ("{foo=}b", [("foo", "=", "}b")]),
        ('team=~"db|infra"', [("team", "=~", "db|infra")]),
        ("a:b_c=x", [("a:b_c", "=", "x")]),
    ],
)
def test_matchers_parse_as_alertmanager_reads_them(
    text: str, expected: list[tuple[str, str, str]]
) -> None:
    assert triples(text) == expected


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (",", "bad matcher ''"),
        ("{,}", "bad matcher ''"),
        ('job="value', "closing double quote is missing"),
        ('job=value"', "unescaped double quote"),
        ('contains_unescaped_quote = foo"bar', "unescaped double quote"),
        ('{invalid-name = "valid label"}', "bad matcher 'invalid-name"),
        ('{foo=~"invalid[regexp"}', "not a regular expression"),
        ('"foo=\\"bar\\""', "bad matcher"),
        ("severity", "expected a label name, one of = != =~ !~"),
    ],
)
def test_bad_matchers_say_why(text: str, needle: str) -> None:
    with pytest.raises(MatcherError) as caught:
        parse_matchers(text)
    assert needle in str(caught.value)


def test_regexes_are_anchored_at_both_ends() -> None:
    (m,) = parse_matchers('team=~"db|infra"')
    assert m.matches({"team": "db"})
    assert m.matches({"team": "infra"})
    assert not m.matches({"team": "db-1"})
    assert not m.matches({"team": "my-infra"})
    (n,) = parse_matchers('instance!~"test-.*"')
    assert n.matches({"instance": "prod-1"})
    assert not n.matches({"instance": "test-1"})
    (end,) = parse_matchers('x=~"a"')
    assert not end.matches({"x": "a\n"})  # Go's $ is the end of the text, not of a line


def test_a_missing_label_has_the_empty_value() -> None:
    assert Matcher.parse('team!="db"').matches({})
    assert not Matcher.parse('team="db"').matches({})
    assert Matcher.parse('team=""').matches({})
    assert Matcher.parse('team=~"db|"').matches({})


def test_route_matchers_lines_and_matching() -> None:
    matchers = parse_matcher_lines(['severity="critical"', 'team=~"db|infra", env!="dev"'])
    assert [str(m) for m in matchers] == [
        'severity="critical"',
        'team=~"db|infra"',
        'env!="dev"',
    ]
    assert matches_all(matchers, {"severity": "critical", "team": "db", "env": "prod"})
    assert not matches_all(matchers, {"severity": "critical", "team": "db", "env": "dev"})
    assert not matches_all(matchers, {"severity": "warning", "team": "db"})
    assert matches_all((), {"anything": "x"})


def test_str_round_trips_escapes() -> None:
    m = Matcher("quote", "=", 'a "b" \\ c\nd')
    assert parse_matchers(str(m)) == [m]


def test_silence_matchers_in_the_api_form() -> None:
    found = equality_matchers({"alertname": "DiskFull", "instance": "db-1", "empty": ""})
    assert [m.to_api() for m in found] == [
        {"name": "alertname", "value": "DiskFull", "isRegex": False, "isEqual": True},
        {"name": "instance", "value": "db-1", "isRegex": False, "isEqual": True},
    ]
    assert Matcher.parse('a!~"x"').to_api() == {
        "name": "a",
        "value": "x",
        "isRegex": True,
        "isEqual": False,
    }
