"""The OpenAPI document against the handlers: every route documented and every documented
path routed, answers matching their documented schemas, and a schemathesis fuzz of a real
``serve`` process from the document."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import negative_data_rejection, positive_data_acceptance

from notify_devino.service import openapi
from notify_devino.service.app import make_app
from notify_devino.service.store import SqliteStore

from .harness import sandbox_config
from .test_soak import ROOT, free_port

DOCUMENT = openapi.document()
TOKEN = "fuzz-token-0123456789abcdef"


def routes_of(app: Any) -> set[tuple[str, str]]:
    found = set()
    for route in app.router.routes():
        resource = route.resource
        if resource is None:
            continue
        info = resource.get_info()
        if "app" in info:  # a sub-application
            found |= routes_of(info["app"])
            continue
        if route.method != "HEAD":
            found.add((route.method.lower(), resource.canonical))
    return found


def test_every_route_is_documented_and_every_documented_path_is_routed(tmp_path: Path) -> None:
    app = make_app(sandbox_config("http://127.0.0.1:9"), store=SqliteStore(tmp_path / "o.db"))
    routed = routes_of(app)
    documented = {(method, path) for path, item in DOCUMENT["paths"].items() for method in item}
    assert routed == documented


def validator(name: str) -> Any:
    return jsonschema_rs.validator_for(
        {"$ref": f"#/components/schemas/{name}", "components": DOCUMENT["components"]}
    )


def test_the_document_is_served_and_its_schemas_compile() -> None:
    for name in DOCUMENT["components"]["schemas"]:
        validator(name)
    assert DOCUMENT["openapi"].startswith("3.1")


@pytest.fixture(scope="module")
def serve_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A ``serve`` process on a sandbox process: the fuzz target."""
    tmp = tmp_path_factory.mktemp("fuzz")
    (tmp / "sandbox.yaml").write_text(
        "version: 1\naccounts: [{login: demo, password: demo-password, balance: 1000000}]\n"
        "delivery: {gateway: 0.05, sent: 0.1, delivered: 0.2}\n"
    )
    sandbox = subprocess.Popen(
        [sys.executable, "-m", "tests.service.sandbox_process", str(tmp / "sandbox.yaml")],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert sandbox.stdout is not None
    assert sandbox.stdin is not None
    base = sandbox.stdout.readline().strip()
    port = free_port()
    config = tmp / "notify-devino.yaml"
    config.write_text(
        textwrap.dedent(
            f"""\
            version: 1
            default_channel: sms
            logging: {{format: json, level: error}}
            channels:
              sms:
                type: devino_soap
                settings: {{url: "{base}/SmsService.asmx", login: demo,
                            password: demo-password, sender: ALERTS}}
            contacts:
              ann: {{sms: "+79031234567"}}
            service:
              listen: {{host: 127.0.0.1, port: {port}}}
              store: sqlite://{tmp}/outbox.db
              tokens: [{{name: fuzz, token: {TOKEN}, scopes: [admin]}}]
            """
        )
    )
    log = (tmp / "serve.log").open("wb")
    serve = subprocess.Popen(
        [sys.executable, "-m", "notify_devino", "--config", str(config), "serve"],
        cwd=ROOT,
        stdout=log,
        stderr=log,
        env={**os.environ},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if requests.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, (tmp / "serve.log").read_text()
            time.sleep(0.05)
        yield url
    finally:
        serve.terminate()
        assert serve.wait(timeout=20) == 0
        log.close()
        sandbox.stdin.close()
        sandbox.wait(timeout=10)
        sandbox.stdout.close()
        text = (tmp / "serve.log").read_text()
        assert "Traceback" not in text, text
        assert TOKEN not in text


schema = schemathesis.openapi.from_dict(DOCUMENT)


@pytest.mark.devino
@pytest.mark.slow
@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_fuzz_the_api_from_its_document(case: Any, serve_url: str) -> None:
    response = case.call(
        base_url=serve_url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
    )
    # A request valid by the schema may still name a contact, group, route or channel this
    # configuration does not have: a 400 that says which. So positive data may be refused.
    # A body over the size limit is refused with 413 before it is read, whatever it holds.
    excluded = [positive_data_acceptance]
    if response.status_code == 413:
        excluded.append(negative_data_rejection)
    case.validate_response(response, excluded_checks=excluded)
    assert response.status_code < 500, response.text
    if response.headers.get("Content-Type", "").startswith("application/json"):
        body = json.loads(response.text)
        if response.status_code >= 400:
            assert "Traceback" not in response.text
            assert body["error"]["code"]
    assert response.headers.get("x-request-id")
