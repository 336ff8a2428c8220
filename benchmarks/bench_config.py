"""Configuration loading: a 60,000-contact file (about 1.8 MB) through ``load_config``.

The baselines, measured in the same run on the same text: one ``yaml.safe_load`` with the
pure-Python loader and one with the C loader (libyaml), so the figures read as "loading costs N
parses". Each figure is the best of a few runs, in this one process.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from notify_devino.config import load_config

CONTACTS = 60_000
RUNS = 3


def config_text(contacts: int = CONTACTS) -> str:
    lines = [
        "version: 1",
        "channels:",
        "  sms: {type: devino_soap, settings: {login: a, password: b}}",
        "  email: {type: smtp, settings: {host: h}}",
        "contacts:",
    ]
    for n in range(contacts):
        lines.append(f'  p{n:05d}: {{sms: "+7903{n:07d}"}}')
    lines += ["groups:", "  first: [" + ", ".join(f"p{n:05d}" for n in range(100)) + "]"]
    return "\n".join(lines) + "\n"


def best(runs: int, work: Callable[[], object]) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return min(times)


def run() -> dict[str, float]:
    text = config_text()
    print(
        f"config: load_config of {CONTACTS:,} contacts ({len(text) / 1e6:.1f} MB), best of {RUNS}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.yaml"
        path.write_text(text)
        pure = best(RUNS, lambda: yaml.load(text, Loader=yaml.SafeLoader))
        fast = (
            best(RUNS, lambda: yaml.load(text, Loader=yaml.CSafeLoader))
            if yaml.__with_libyaml__
            else float("nan")
        )
        loaded = best(RUNS, lambda: load_config(path, env={}))
    print(f"  yaml.safe_load, pure Python:  {pure:7.2f} s  (baseline)")
    print(f"  yaml.load, CSafeLoader:       {fast:7.2f} s  ({fast / pure:.2f}x the baseline)")
    print(f"  load_config:                  {loaded:7.2f} s  ({loaded / pure:.2f}x the baseline)")
    return {"pure_safe_load": pure, "c_safe_load": fast, "load_config": loaded}
