"""Alert SMS templates against the Devino channel's own segment counter (through
Dispatcher.estimate: the budget is in the parts the provider will charge)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from notify_devino.alertmanager.payload import WebhookMessage, parse_payload
from notify_devino.alertmanager.templates import (
    AlertTemplate,
    Estimator,
    TemplateError,
    check_template,
    transliterate,
)
from notify_devino.config import parse_config
from notify_devino.dispatcher import Dispatcher
from notify_devino.plugins import PluginManager

from .payloads import alert, body_v025

pytestmark = pytest.mark.devino

CONFIG = """\
version: 1
channels:
  sms:
    type: devino_soap
    settings: {login: alerts, password: devino-test-password, sender: ALERTS,
               price_per_segment: "2.50"}
"""


@pytest.fixture
async def estimate() -> AsyncIterator[Estimator]:
    plugins = PluginManager(autoload=False)
    import notify_devino_soap.hooks

    plugins.register(notify_devino_soap.hooks, name="devino_soap")
    async with Dispatcher(parse_config(CONFIG), plugins=plugins) as dispatcher:

        async def count(text: str):  # type: ignore[no-untyped-def]
            return await dispatcher.estimate(text)

        yield count


def group(
    count: int, *, summary: str = "Disk almost full", status: str = "firing"
) -> WebhookMessage:
    alerts = [
        alert(
            "DiskFull",
            status=status,
            fingerprint=f"{i:016x}",
            labels={"instance": f"db-{i}:9100", "severity": "critical", "job": "node"},
            annotations={"summary": f"{summary} on db-{i}"},
            ends_at="2026-12-01T10:00:00Z" if status == "resolved" else "0001-01-01T00:00:00Z",
        )
        for i in range(1, count + 1)
    ]
    body = body_v025(alerts, groupLabels={"alertname": "DiskFull"})
    body["commonLabels"] = {"alertname": "DiskFull", "severity": "critical", "job": "node"}
    return parse_payload(body)


async def test_one_firing_alert(estimate: Estimator) -> None:
    rendered = await AlertTemplate().render(group(1), estimate, ack_code="4821")
    assert rendered.text == (
        "FIRING: DiskFull critical\ndb-1:9100 node: Disk almost full on db-1\nReply 4821 to ack"
    )
    assert rendered.estimate.segments == 1
    assert rendered.estimate.encoding == "GSM-7"
    assert (rendered.shown, rendered.more, rendered.fits) == (1, 0, True)
    assert rendered.estimate.cost is not None
    assert str(rendered.estimate.cost) == "2.50"


async def test_a_resolved_group_says_so_and_carries_no_code(estimate: Estimator) -> None:
    rendered = await AlertTemplate().render(group(2, status="resolved"), estimate)
    assert rendered.text.splitlines()[0] == "RESOLVED 2: DiskFull critical"
    assert "ack" not in rendered.text


@pytest.mark.parametrize("budget", [1, 2, 3])
async def test_fifty_alerts_keep_the_budget_with_plus_n_more(
    estimate: Estimator, budget: int
) -> None:
    rendered = await AlertTemplate(max_segments=budget).render(group(50), estimate, ack_code="4821")
    assert rendered.fits
    assert rendered.estimate.segments <= budget
    lines = rendered.text.splitlines()
    assert lines[0] == "FIRING 50: DiskFull critical"
    assert lines[-1] == "Reply 4821 to ack"
    assert lines[-2] == f"+{50 - rendered.shown} more"
    assert rendered.more == 50 - rendered.shown
    assert len(lines) == rendered.shown + 3
    # whole alert lines only, and as many as fit: one more would break the budget
    for index, line in enumerate(lines[1:-2], start=1):
        assert line == f"db-{index}:9100: Disk almost full on db-{index}"
    one_more = AlertTemplate(max_segments=budget).text(
        group(50), rendered.shown + 1, ack_code="4821"
    )
    assert (await estimate(one_more)).segments > budget


async def test_cyrillic_is_ucs2_with_a_warning_and_keeps_its_budget(
    estimate: Estimator,
) -> None:
    message = group(50, summary="Диск почти заполнен")
    rendered = await AlertTemplate(max_segments=2).render(message, estimate, ack_code="4821")
    assert rendered.estimate.encoding == "UCS-2"
    assert rendered.fits
    assert rendered.estimate.segments <= 2
    assert rendered.text.splitlines()[-2] == f"+{rendered.more} more"
    assert any("UCS-2" in w for w in rendered.warnings)
    assert any("transliterate: true" in w for w in rendered.warnings)
    latin = await AlertTemplate(max_segments=2, transliterate=True).render(
        message, estimate, ack_code="4821"
    )
    assert latin.estimate.encoding == "GSM-7"
    assert "Disk pochti zapolnen on db-1" in latin.text
    assert latin.shown > rendered.shown  # three times the room per part


async def test_one_typographic_dash_is_named_as_forcing_ucs2(estimate: Estimator) -> None:
    message = group(1, summary="Disk almost full — act now")
    rendered = await AlertTemplate().render(message, estimate)
    assert rendered.estimate.encoding == "UCS-2"
    assert any("EM DASH" in w or "—" in w for w in rendered.warnings), rendered.warnings


async def test_a_first_line_too_long_loses_words_not_parts_of_words(
    estimate: Estimator,
) -> None:
    body = body_v025([alert("X" * 10)], groupLabels={"alertname": "Very " * 80 + "long"})
    rendered = await AlertTemplate(max_segments=1).render(
        parse_payload(body), estimate, ack_code="1234"
    )
    assert rendered.fits
    first, *_, last = rendered.text.splitlines()
    assert last == "Reply 1234 to ack"
    assert first.endswith("Very ...")
    assert all(word in ("FIRING:", "Very", "...") for word in first.split())


async def test_truncated_alerts_count_in_plus_n_more(estimate: Estimator) -> None:
    message = group(1).model_copy(update={"truncated_alerts": 7})
    rendered = await AlertTemplate().render(message, estimate)
    assert "+7 more" in rendered.text.splitlines()


def test_a_template_with_an_unknown_name_fails_when_checked() -> None:
    template = AlertTemplate("{{ status }} {{ no_such_thing }}", name="db")
    with pytest.raises(TemplateError) as caught:
        check_template(template)
    assert "template of db" in str(caught.value)
    assert "no_such_thing" in str(caught.value)
    assert "ack_code" in str(caught.value)  # the variables it could have used


def test_a_template_that_does_not_compile_names_its_line() -> None:
    with pytest.raises(TemplateError) as caught:
        AlertTemplate("ok\n{% for x in %}", name="db")
    assert "line 2" in str(caught.value)


def test_the_sandbox_refuses_unsafe_attributes() -> None:
    template = AlertTemplate("{{ alerts.__class__.__mro__ }}", name="evil")
    with pytest.raises(TemplateError):
        check_template(template)


def test_transliteration() -> None:
    assert transliterate("Щука — «ёж» Юг") == 'Shchuka - "ezh" Yug'


def test_the_template_in_the_docs_renders() -> None:
    from pathlib import Path

    import yaml

    from notify_devino.alertmanager.templates import sample_message

    doc = (Path(__file__).parents[2] / "docs" / "alertmanager.md").read_text()
    block = doc.split("```yaml\nalertmanager:\n  template: |\n", 1)[1].split("```", 1)[0]
    source = yaml.safe_load("template: |\n" + block)["template"]
    text = AlertTemplate(source, name="docs").text(sample_message(), ack_code="4821")
    assert text.splitlines() == [
        "FIRING Sample critical (2)",
        "a:9100 a sample alert",
        "b:9100 a sample alert",
        "ack: reply 4821",
    ]
