"""Configuration loading: a 60,000-contact file (about 1.8 MB) through ``load_config``, and
how fast and in how little memory each hostile file is refused.

The baselines, measured in the same run on the same text: one ``yaml.safe_load`` with the
pure-Python loader and one with the C loader (libyaml), so the figures read as "loading costs N
parses". Each figure is the best of a few runs, in this one process. The hostile files (an alias
bomb, a 10 MB file, /dev/zero, a 1 GiB sparse file and a FIFO as the password file, ...) are
each timed, then loaded again under tracemalloc for the peak of Python allocations.
"""

from __future__ import annotations

import os
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import yaml
from pydantic import BaseModel, SecretStr

from notify_devino.config import load_config
from notify_devino.errors import ConfigError

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
    run_hostile()
    return {"pure_safe_load": pure, "c_safe_load": fast, "load_config": loaded}


class _Settings(BaseModel):
    login: str
    password: SecretStr


BOMB = "version: 1\na: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + n)}: &{chr(98 + n)} [{', '.join(['*' + chr(97 + n)] * 10)}]\n" for n in range(8)
)


def hostile_files(folder: Path) -> dict[str, Path]:
    """Each hostile case as a configuration file (and what it points at)."""
    channel = "channels: {sms: {type: x, settings: {login: a, password_file: %s}}}\n"
    cases: dict[str, str] = {
        "600-byte alias bomb": BOMB + "channels: {sms: {type: x, settings: {d: *i}}}\n",
        "100,000 nested lists": "version: 1\nd: " + "[" * 100_000 + "]" * 100_000 + "\n",
        "5,000-digit integer": "version: 1\nn: " + "9" * 5000 + "\n",
        "two password: lines": "version: 1\nchannels:\n  sms:\n    type: x\n    settings:\n"
        "      password: first-password\n      password: second-password\n",
    }
    paths = {name: folder / f"case{n}.yaml" for n, name in enumerate(cases)}
    for name, text in cases.items():
        paths[name].write_text(text)
    big = folder / "big.yaml"
    with big.open("w") as out:
        out.write("version: 1\nchannels: {sms: {type: x}}\ncontacts:\n")
        line = '  p{:07d}: {{sms: "+79030000000"}}\n'
        for n in range(10_000_000 // len(line.format(0)) + 1):
            out.write(line.format(n))
    paths["10 MB contacts file"] = big
    sparse = folder / "sparse"
    with sparse.open("wb") as out:
        out.truncate(1024**3)
    fifo = folder / "fifo"
    os.mkfifo(fifo)
    (folder / "latin1").write_bytes("пароль".encode("cp1251"))
    secrets = {
        "password_file: /dev/zero": "/dev/zero",
        "password_file: /dev/urandom": "/dev/urandom",
        "password_file: 1 GiB sparse": str(sparse),
        "password_file: FIFO, no writer": str(fifo),
        "password_file: not UTF-8": str(folder / "latin1"),
    }
    for n, (name, target) in enumerate(secrets.items()):
        paths[name] = folder / f"secret{n}.yaml"
        paths[name].write_text("version: 1\n" + channel % target)
    return paths


def refuse(path: Path) -> str:
    try:
        load_config(path, env={}).channel_settings("sms", _Settings)
    except ConfigError as exc:
        return str(exc)
    raise AssertionError(f"{path} was accepted")


def run_hostile() -> None:
    print("config: hostile files, each refused with a ConfigError (time, peak Python allocations)")
    with tempfile.TemporaryDirectory() as tmp:
        for name, path in hostile_files(Path(tmp)).items():
            started = time.perf_counter()
            message = refuse(path)
            elapsed = time.perf_counter() - started
            tracemalloc.start()
            refuse(path)
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            shown = message.replace(tmp, "…")
            print(f"  {name:<32} {elapsed * 1000:7.1f} ms  {peak / 2**20:5.2f} MiB  {shown[:90]}")
