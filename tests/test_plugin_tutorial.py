"""docs/plugins.md, the plugin tutorial, works as written: its blocks become a project,
installed the way pip lays one out; its own tests pass, the command line lists it, and a
configuration routes a notification through it."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import sys
import tomllib
from pathlib import Path

from notify_devino.testing import run_cli

TUTORIAL = Path(__file__).parents[1] / "docs" / "plugins.md"
BLOCK = re.compile(r"^```\w+ file=(\S+)\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def install(project: Path, site: Path) -> dict[str, str]:
    """Lay out the project in ``site`` as pip would (its package and a .dist-info): building
    a wheel would need the network at test time. :return: the environment that sees it."""
    meta = tomllib.loads((project / "pyproject.toml").read_text())["project"]
    shutil.copytree(project / "notify_devino_jsonl", site / "notify_devino_jsonl")
    info = site / f"{meta['name'].replace('-', '_')}-{meta['version']}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {meta['name']}\nVersion: {meta['version']}\n"
    )
    groups = meta["entry-points"]
    (info / "entry_points.txt").write_text(
        "".join(
            f"[{group}]\n" + "".join(f"{name} = {value}\n" for name, value in points.items())
            for group, points in groups.items()
        )
    )
    (info / "RECORD").write_text("")
    path = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    return {"PYTHONPATH": path}


async def test_the_tutorial_plugin_works_from_nothing(tmp_path: Path) -> None:
    files = dict(BLOCK.findall(TUTORIAL.read_text()))
    assert set(files) == {
        "pyproject.toml",
        "notify_devino_jsonl/channel.py",
        "notify_devino_jsonl/hooks.py",
        "notify-devino.yaml",
        "tests/test_jsonl.py",
    }
    project = tmp_path / "notify-devino-jsonl"
    for name, text in files.items():
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text(text)
    (project / "notify_devino_jsonl" / "__init__.py").write_text("")
    site = tmp_path / "site"
    site.mkdir()
    env = install(project, site)

    # step 4: the command line lists it, with its distribution and version
    code, out, err = await run_cli("plugins", "--json", env=env)
    assert code == 0, err
    listed = {p["name"]: p for p in json.loads(out)}["jsonl"]
    assert (listed["distribution"], listed["version"], listed["channel_types"]) == (
        "notify-devino-jsonl",
        "0.1.0",
        ["jsonl"],
    )

    # step 6: its own tests pass, on the kit
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        cwd=project,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, output.decode()
    assert "2 passed" in output.decode()

    # step 5: a configuration routes a notification through it
    written = tmp_path / "alerts.jsonl"
    config = tmp_path / "notify-devino.yaml"
    config.write_text(files["notify-devino.yaml"].replace("alerts.jsonl", str(written)))
    code, out, err = await run_cli(
        "--config", str(config), "notify", "db-1 is down", "--to", "alice", "--json", env=env
    )
    assert code == 0, err
    assert json.loads(out)["recipients"][0]["carried_by"] == "audit"
    (line,) = [json.loads(x) for x in written.read_text().splitlines()]
    assert (line["to"], line["text"], line["metadata"]["route"]) == (
        "alice",
        "db-1 is down",
        "everything",
    )
