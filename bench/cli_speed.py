"""Whole-CLI throughput and peak memory: LeakWatch beside Kingfisher and detect-secrets.

    .venv/bin/python -m bench.cli_speed                 # ~100 MB, 3 timed runs per tool
    .venv/bin/python -m bench.cli_speed --mb 20 --runs 1

Builds (once, then reuses) a folder of realistic text under bench/out/speed/: chat logs, wiki
pages, mails and config files from the quality corpus generator (bench/quality/generate.py), a
few hundred documents per file, each copy given its own header so no two files are identical
(Kingfisher skips blobs it has seen). Then it times each tool over the same folder, from process
start to exit, and reads the peak resident memory of the process tree from wait4(2):

    leakwatch       python -m bot scan DIR --format jsonl   (output to /dev/null)
    kingfisher      kingfisher scan DIR --jobs 1 --no-validate --format json
    detect-secrets  detect-secrets scan --all-files         (on a subset: it runs at well under
                                                             1 MB/s; --detect-secrets-mb)

A first untimed run of each tool warms the page cache (and Kingfisher's rule cache). The best of
`--runs` timed runs is reported, as MB/s of input bytes over wall seconds.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out" / "speed"
PEERS = ROOT / "bench" / ".venv-peers"
FILE_TARGET_BYTES = 256 * 1024
KEEP_ONE_KEY_IN = 40


@dataclass
class Measure:
    tool: str
    megabytes: float
    seconds: float
    cpu_seconds: float  # user + system, of the process and the children it waited for
    peak_mb: float
    note: str = ""

    @property
    def rate(self) -> float:
        return self.megabytes / self.seconds if self.seconds else 0.0

    @property
    def cpu_rate(self) -> float:
        return self.megabytes / self.cpu_seconds if self.cpu_seconds else 0.0


def build_corpus(target_mb: float, seed: int = 11) -> Path:
    """~target_mb of text in files of about FILE_TARGET_BYTES; reused when already there."""
    folder = OUT / f"text-{target_mb:g}mb-seed{seed}-v2"
    stamp = folder / ".complete"
    if stamp.exists():
        return folder
    if folder.exists():
        shutil.rmtree(folder)
    from bench.quality.generate import Generator
    from bot.detection.rules import default_rules

    generator = Generator(seed, default_rules())
    pages = generator.build(600)
    # The quality corpus is dense with keys (one every ~800 bytes); real text is not. Keep one
    # key in KEEP_ONE_KEY_IN and drop the others' lines.
    dropped: dict[str, set[int]] = {}
    for number, label in enumerate(generator.corpus.keys):
        if number % KEEP_ONE_KEY_IN:
            lines = range(label.line - 1, label.end_line)
            dropped.setdefault(label.path, set()).update(lines)
    texts: dict[str, list[str]] = {}
    for page in pages:
        kind = page.path.split("/")[0]
        skip = dropped.get(page.path, set())
        kept = [line for index, line in enumerate(page.lines) if index not in skip]
        texts.setdefault(kind, []).append("\n".join(kept) + "\n")
    base = {kind: "".join(chunks) for kind, chunks in texts.items()}
    target = int(target_mb * 1_000_000)
    written, copy = 0, 0
    while written < target:
        for kind, text in base.items():
            # Cut each kind into files of about FILE_TARGET_BYTES, every copy with its own header.
            for start in range(0, len(text), FILE_TARGET_BYTES):
                part = text[start : start + FILE_TARGET_BYTES]
                body = f"# {kind} archive, part {copy}-{start // FILE_TARGET_BYTES}\n{part}"
                path = folder / kind / f"{copy:04d}" / f"part-{start // FILE_TARGET_BYTES:03d}.txt"
                path.parent.mkdir(parents=True, exist_ok=True)
                data = body.encode()
                path.write_bytes(data)
                written += len(data)
                if written >= target:
                    break
            if written >= target:
                break
        copy += 1
    stamp.write_text(str(written))
    return folder


def subset(folder: Path, megabytes: float) -> Path:
    """The first files of `folder` (sorted) up to `megabytes`, copied beside it."""
    target = folder.with_name(folder.name + f"-first{megabytes:g}mb")
    if (target / ".complete").exists():
        return target
    if target.exists():
        shutil.rmtree(target)
    total = 0
    for path in sorted(p for p in folder.rglob("*.txt")):
        destination = target / path.relative_to(folder)
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, destination)
        total += path.stat().st_size
        if total >= megabytes * 1_000_000:
            break
    (target / ".complete").write_text(str(total))
    return target


def huge_file(folder: Path, megabytes: float) -> Path:
    """One file of `megabytes`: the corpus files one after another, repeated as needed."""
    target = OUT / f"one-file-{megabytes:g}mb.txt"
    if target.exists() and target.stat().st_size >= megabytes * 1_000_000:
        return target
    written = 0
    with target.open("wb") as out:
        while written < megabytes * 1_000_000:
            for path in sorted(folder.rglob("*.txt")):
                data = path.read_bytes()
                out.write(data)
                written += len(data)
                if written >= megabytes * 1_000_000:
                    break
    return target


def size_of(folder: Path) -> int:
    if folder.is_file():
        return folder.stat().st_size
    return sum(p.stat().st_size for p in folder.rglob("*.txt"))


def timed(
    command: list[str], cwd: Path | None = None, env: dict[str, str] | None = None
) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds and peak RSS (MB) of a command and the children it waited for."""
    started = time.perf_counter()
    process = subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode not in (0, 1, 200):  # 200: Kingfisher's "findings" exit code
        raise RuntimeError(f"{command[0]} exited with {process.returncode}")
    return seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def kingfisher_binary() -> str:
    found = glob.glob(
        str(PEERS / "lib" / "python3*" / "site-packages" / "kingfisher" / "bin" / "kingfisher")
    )
    if not found:
        raise FileNotFoundError(
            "kingfisher-bin is not installed in bench/.venv-peers (bench/README.md)"
        )
    return found[0]


def commands(
    folder: Path, workdir: Path
) -> dict[str, tuple[list[str], Path | None, dict[str, str] | None]]:
    env = {**os.environ, "LEAKWATCH_DATA_DIR": str(workdir / "data")}
    leakwatch = [
        sys.executable,
        "-m",
        "bot",
        "scan",
        str(folder),
        "--format",
        "jsonl",
        "--no-progress",
    ]
    result: dict[str, tuple[list[str], Path | None, dict[str, str] | None]] = {
        "leakwatch": (leakwatch, ROOT, env),
    }
    try:
        result["kingfisher"] = (
            [
                kingfisher_binary(),
                "scan",
                str(folder),
                "--jobs",
                "1",
                "--no-validate",
                "--no-update-check",
                "--format",
                "json",
                "--output",
                str(workdir / "kf.json"),
            ],
            None,
            None,
        )
    except FileNotFoundError as error:
        print(f"kingfisher: {error}", file=sys.stderr)
    return result


def measure(folder: Path, runs: int, detect_secrets_mb: float) -> list[Measure]:
    megabytes = size_of(folder) / 1_000_000
    results = []
    with tempfile.TemporaryDirectory(prefix="cli-speed-") as scratch:
        workdir = Path(scratch)
        for tool, (command, cwd, env) in commands(folder, workdir).items():
            timed(command, cwd, env)  # warm-up: page cache, rule caches, fingerprint key file
            best = min((timed(command, cwd, env) for _ in range(runs)), key=lambda m: m[0])
            results.append(Measure(tool, megabytes, *best))
            _print(results[-1])
        detect_secrets = PEERS / "bin" / "detect-secrets"
        if detect_secrets.exists() and detect_secrets_mb > 0:
            part = subset(folder, detect_secrets_mb)
            part_mb = size_of(part) / 1_000_000
            measured = timed([str(detect_secrets), "scan", "--all-files", "."], cwd=part)
            results.append(
                Measure("detect-secrets", part_mb, *measured, note=f"first {part_mb:.0f} MB")
            )
            _print(results[-1])
    return results


def _print(m: Measure) -> None:
    print(
        f"{m.tool:15} {m.megabytes:7.1f} MB  wall {m.seconds:7.2f} s {m.rate:8.2f} MB/s  "
        f"cpu {m.cpu_seconds:7.2f} s {m.cpu_rate:8.2f} MB/s  peak {m.peak_mb:6.0f} MB",
        flush=True,
    )


def markdown(results: list[Measure]) -> str:
    lines = [
        "| Tool | Input (MB) | Wall (s) | MB/s (wall) | CPU (s) | MB per CPU second "
        "| Peak RSS (MB) | Note |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for m in results:
        lines.append(
            f"| {m.tool} | {m.megabytes:.1f} | {m.seconds:.2f} | {m.rate:.1f} "
            f"| {m.cpu_seconds:.2f} | {m.cpu_rate:.1f} | {m.peak_mb:.0f} | {m.note} |"
        )
    by_tool = {m.tool: m for m in results if not m.note}  # the same folder for both
    if "leakwatch" in by_tool and "kingfisher" in by_tool:
        ours, theirs = by_tool["leakwatch"], by_tool["kingfisher"]
        lines.append("")
        lines.append(
            f"LeakWatch / Kingfisher (one thread): {ours.rate / theirs.rate:.2f}× by wall time, "
            f"{ours.cpu_rate / theirs.cpu_rate:.2f}× by CPU time."
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description="Whole-CLI MB/s and peak memory beside peers")
    parser.add_argument("--mb", type=float, default=100, help="size of the text corpus")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per tool (best is kept)")
    parser.add_argument("--detect-secrets-mb", type=float, default=5, help="0 to skip it")
    parser.add_argument(
        "--one-file-mb",
        type=float,
        default=0,
        help="also scan one file of this size with LeakWatch: memory must stay flat",
    )
    args = parser.parse_args()
    started = time.perf_counter()
    folder = build_corpus(args.mb)
    print(
        f"corpus: {folder} ({size_of(folder) / 1e6:.1f} MB, "
        f"{sum(1 for _ in folder.rglob('*.txt'))} files; {time.perf_counter() - started:.0f} s)"
    )
    results = measure(folder, args.runs, args.detect_secrets_mb)
    if args.one_file_mb:
        big = huge_file(folder, args.one_file_mb)
        with tempfile.TemporaryDirectory(prefix="cli-speed-") as scratch:
            command, cwd, env = commands(big, Path(scratch))["leakwatch"]
            measured = timed(command, cwd, env)
        results.append(Measure("leakwatch", big.stat().st_size / 1e6, *measured, note="one file"))
        _print(results[-1])
    print()
    print(markdown(results))
    (OUT / "results.json").write_text(
        json.dumps([m.__dict__ | {"rate": m.rate} for m in results], indent=1)
    )


if __name__ == "__main__":
    main()
