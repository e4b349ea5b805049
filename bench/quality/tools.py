"""Run LeakWatch and the peer scanners over one folder; read each one's report as (path, line).

Every runner returns `Report`: the findings as (path relative to the folder, first line, rule
as the tool names it) and the wall time. The peers run from bench/.venv-peers (see
bench/README.md); a peer that is not installed is reported as missing, not as zero findings.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PEERS_BIN = ROOT / "bench" / ".venv-peers" / "bin"


@dataclass(frozen=True)
class Hit:
    path: str
    line: int
    rule: str
    provider: str = ""


@dataclass
class Report:
    tool: str
    hits: list[Hit] = field(default_factory=list)
    seconds: float = 0.0
    missing: str = ""  # why the tool could not run


class ToolMissing(RuntimeError):
    pass


def _peer(name: str) -> str:
    path = PEERS_BIN / name
    if not path.exists():
        raise ToolMissing(
            f"{path} not found: install bench/requirements-peers.txt (bench/README.md)"
        )
    return str(path)


def _relative(path: str, root: Path) -> str:
    candidate = Path(path)
    if candidate.is_absolute():
        try:
            return candidate.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            return candidate.as_posix()
    return candidate.as_posix().removeprefix("./")


def _run(command: list[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, check=False)
    elapsed = time.perf_counter() - started
    if result.returncode not in (0, 1, 200):  # Kingfisher exits 200 when it finds something
        sys.stderr.write(result.stderr.decode(errors="replace")[-2000:])
        raise RuntimeError(f"{command[0]} exited with {result.returncode}")
    return elapsed


def leakwatch(root: Path, workdir: Path) -> Report:
    out = workdir / "leakwatch.jsonl"
    env = {**os.environ, "LEAKWATCH_DATA_DIR": str(workdir / "data")}
    command = [sys.executable, "-m", "bot", "scan", str(root), "--format", "jsonl"]
    command.append("--no-progress")
    started = time.perf_counter()
    with out.open("wb") as stream:
        result = subprocess.run(command, cwd=ROOT, env=env, stdout=stream, check=False)
    seconds = time.perf_counter() - started
    if result.returncode not in (0, 1):
        raise RuntimeError(f"leakwatch exited with {result.returncode}")
    hits = []
    for line in out.read_text().splitlines():
        record = json.loads(line)
        hits.append(
            Hit(_relative(record["path"], root), record["line"], record["rule"], record["provider"])
        )
    return Report("leakwatch", hits, seconds)


def detect_secrets(root: Path, workdir: Path) -> Report:
    out = workdir / "detect-secrets.json"
    command = [_peer("detect-secrets"), "scan", "--all-files", "."]
    started = time.perf_counter()
    with out.open("wb") as stream:
        subprocess.run(command, cwd=root, stdout=stream, check=True)
    seconds = time.perf_counter() - started
    results = json.loads(out.read_text())["results"]
    hits = [
        Hit(_relative(path, root), item["line_number"], item["type"])
        for path, items in results.items()
        for item in items
    ]
    return Report("detect-secrets", hits, seconds)


def credsweeper(root: Path, workdir: Path) -> Report:
    out = workdir / "credsweeper.json"
    seconds = _run([_peer("credsweeper"), "--path", str(root), "--save-json", str(out)])
    hits = []
    for candidate in json.loads(out.read_text()):
        for data in candidate["line_data_list"]:
            hits.append(Hit(_relative(data["path"], root), data["line_num"], candidate["rule"]))
    return Report("credsweeper", hits, seconds)


def kingfisher(root: Path, workdir: Path) -> Report:
    out = workdir / "kingfisher.json"
    command = [
        _peer("kingfisher"),
        "scan",
        str(root),
        "--format",
        "json",
        "--no-validate",
        "--no-dedup",
        "--no-update-check",
        "--jobs",
        "1",
        "--output",
        str(out),
    ]
    seconds = _run(command)
    hits = [
        Hit(_relative(f["finding"]["path"], root), f["finding"]["line"], f["rule"]["id"])
        for f in json.loads(out.read_text())["findings"]
    ]
    return Report("kingfisher", hits, seconds)


def betterleaks(root: Path, workdir: Path) -> Report:
    out = workdir / "betterleaks.json"
    seconds = _run([_peer("betterleaks"), str(root), "--no-banner", "--output", str(out)])
    hits = [
        Hit(_relative(f["location"]["path"], root), f["location"]["start_line"], f["rule_id"])
        for f in json.loads(out.read_text())["findings"]
    ]
    return Report("betterleaks", hits, seconds)


TOOLS: dict[str, Callable[[Path, Path], Report]] = {
    "leakwatch": leakwatch,
    "detect-secrets": detect_secrets,
    "credsweeper": credsweeper,
    "kingfisher": kingfisher,
    "betterleaks": betterleaks,
}


def run_tool(name: str, root: Path) -> Report:
    root = root.resolve()
    with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as workdir:
        try:
            return TOOLS[name](root, Path(workdir))
        except ToolMissing as missing:
            return Report(name, missing=str(missing))
