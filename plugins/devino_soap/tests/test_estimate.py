"""``notify-devino estimate``: encoding, parts, room left, cost and the UCS-2 warning, run as a
user runs it (a real process)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from test_cli_devino import run_cli

from notify_devino_soap.estimate import estimate


async def test_one_character_that_forces_ucs2_is_named(tmp_path: Path) -> None:
    text = "db-1 is down — failover in 5 min"
    code, out, err = await run_cli(
        "estimate", text, "--price", "1.50", "--recipients", "3", "--json"
    )
    assert code == 0, err
    data = json.loads(out)
    assert data["encoding"] == "UCS-2"
    assert (data["parts"], data["per_part"], data["left_in_last_part"]) == (1, 70, 70 - len(text))
    assert data["forcing_ucs2"] == [{"char": "—", "code_point": "U+2014", "name": "EM DASH"}]
    assert data["gsm7_parts_without_forcing"] == 1
    assert (data["price_per_segment"], data["recipients"], data["cost"]) == ("1.50", 3, "4.50")
    assert "'—' (U+2014 EM DASH) forces UCS-2" in data["warnings"][0]

    code, out, _ = await run_cli("estimate", text, "--price", "1.50")
    assert code == 0
    assert "warning: '—' (U+2014 EM DASH) forces UCS-2" in out
    assert "without it the text takes 1 part in GSM-7" in out


async def test_a_long_text_on_standard_input_with_the_configured_price(
    write_config: Callable[..., Path],
) -> None:
    config = str(
        write_config("http://127.0.0.1:9/SmsService.asmx", price_per_segment="2.00", currency="RUB")
    )
    text = "x" * 300 + "€"  # 302 septets: two parts of 153, the escape pair whole
    code, out, err = await run_cli("--config", config, "estimate", "--json", stdin=text + "\n")
    assert code == 0, err
    data = json.loads(out)
    assert (data["encoding"], data["characters"], data["units"]) == ("GSM-7", 301, 302)
    assert (data["parts"], data["left_in_last_part"]) == (2, 4)
    assert (data["cost"], data["currency"], data["warnings"]) == ("4.00", "RUB", [])

    code, out, _ = await run_cli("--config", config, "estimate", "ж" * 71)
    assert code == 0
    assert "parts:       2" in out
    assert "left:        63 in the last part" in out
    assert "cost:        4.00 RUB (2 parts x 2.00 x 1 recipient)" in out


async def test_without_a_price_the_cost_is_unknown_and_bad_prices_are_refused(
    tmp_path: Path,
) -> None:
    env = {"HOME": str(tmp_path)}
    code, out, _ = await run_cli("estimate", "hello", env=env)
    assert code == 0
    assert "cost:        unknown (pass --price or set price_per_segment)" in out
    code, _, err = await run_cli("estimate", "hello", "--price", "cheap", env=env)
    assert code == 2
    assert "'cheap' is not a number" in err
    code, _, err = await run_cli("estimate", "hello", "--price", "-1", env=env)
    assert code == 2


def test_a_text_over_2000_characters_is_flagged() -> None:
    result = estimate("🙂" * 1001)
    assert result.characters == 2002
    assert any("at most 2000" in w for w in result.warnings())
    assert estimate("🙂").to_json()["gsm7_parts_without_forcing"] is None
