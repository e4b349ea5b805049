"""`python -m bot scan` end to end: through a real subprocess and through bot.__main__.main."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.__main__ import main
from bot.detection.fakes import fake_secret

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A clean environment: the fingerprint key file and database live under tmp_path."""
    data = tmp_path / "data"
    monkeypatch.setenv("LEAKWATCH_DATA_DIR", str(data))
    monkeypatch.delenv("LEAKWATCH_FINGERPRINT_KEY", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env is read
    return {**os.environ, "PYTHONPATH": str(REPO)}


def cli(
    *args: str, env: dict[str, str], stdin: bytes | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", "scan", "--no-progress", *args],
        input=stdin.decode() if stdin is not None else None,
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
    )


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


ScanHere = Callable[..., Result]


@pytest.fixture
def scan_here(env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> ScanHere:
    """`python -m bot scan` in this process, through bot.__main__.main(argv)."""

    def run(*args: str) -> Result:
        capsys.readouterr()
        code = main(["scan", "--no-progress", *args])
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


@pytest.fixture
def leaky(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A folder with two keys at known places, and the keys by file."""
    root = tmp_path / "repo"
    (root / "conf").mkdir(parents=True)
    openai = fake_secret("openai_project_key", 11)
    github = fake_secret("github_classic_pat", 11)
    (root / "conf" / "app.env").write_text(f"# app\nLOG_LEVEL=info\nOPENAI_API_KEY={openai}\n")
    (root / "notes.md").write_text(f"Deploy notes\n\nthe CI token is `{github}` for now\n")
    (root / "clean.txt").write_text("nothing to see here\n")
    return root, {"conf/app.env": openai, "notes.md": github}


def test_table_is_masked_and_exit_code_is_1(
    leaky: tuple[Path, dict[str, str]], env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    root, keys = leaky
    assert main(["scan", "--no-progress", str(root)]) == 1
    out = capsys.readouterr().out
    assert "OpenAI project API key" in out
    assert f"{root / 'conf' / 'app.env'}:3:16" in out
    assert f"{root / 'notes.md'}:3:18" in out
    assert "Found 2 secrets" in out
    for key in keys.values():
        assert key not in out
        assert key[:8] in out or key[:4] in out  # the masked preview keeps the prefix


def test_nothing_found_exits_0(tmp_path: Path, scan_here: ScanHere) -> None:
    (tmp_path / "ok.txt").write_text("export OPENAI_API_KEY=sk-...\nrequest_id=42\n")
    result = scan_here(str(tmp_path / "ok.txt"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("No secrets found")


def test_missing_path_exits_2(tmp_path: Path, scan_here: ScanHere) -> None:
    result = scan_here(str(tmp_path / "absent"))
    assert result.returncode == 2
    assert "no such file or directory" in result.stderr


def test_bad_option_exits_2(tmp_path: Path, env: dict[str, str]) -> None:
    assert cli("--format", "xml", str(tmp_path), env=env).returncode == 2


def test_jsonl_records_point_at_the_key(
    leaky: tuple[Path, dict[str, str]], scan_here: ScanHere
) -> None:
    root, keys = leaky
    result = scan_here(str(root), "--format", "jsonl")
    assert result.returncode == 1, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert {r["rule"] for r in records} == {"openai_project_key", "github_classic_pat"}
    for record in records:
        assert {
            "path", "line", "column", "end_column", "rule", "provider", "severity", "preview",
            "fingerprint",
        } <= set(record)  # fmt: skip
        assert "secret" not in record
        assert len(record["fingerprint"]) == 64
        key = keys[Path(record["path"]).relative_to(root).as_posix()]
        line = (Path(record["path"]).read_text().splitlines())[record["line"] - 1]
        assert line[record["column"] - 1 : record["end_column"] - 1] == key
        assert key not in result.stdout


def test_reveal_adds_the_raw_secret_only_when_asked(
    leaky: tuple[Path, dict[str, str]], scan_here: ScanHere
) -> None:
    root, keys = leaky
    hidden = scan_here(str(root), "--format", "jsonl")
    shown = scan_here(str(root), "--format", "jsonl", "--reveal")
    assert not any(key in hidden.stdout for key in keys.values())
    secrets = {json.loads(line)["secret"] for line in shown.stdout.splitlines()}
    assert secrets == set(keys.values())
    table = scan_here(str(root), "--reveal")
    assert all(key in table.stdout for key in keys.values())


def test_json_document_parses(leaky: tuple[Path, dict[str, str]], scan_here: ScanHere) -> None:
    root, _ = leaky
    result = scan_here(str(root), "--format", "json")
    document = json.loads(result.stdout)
    assert document["summary"]["findings"] == 2
    assert document["summary"]["files"] == 3
    assert {Path(f["path"]).name for f in document["findings"]} == {"app.env", "notes.md"}


def test_sarif_log(leaky: tuple[Path, dict[str, str]], env: dict[str, str]) -> None:
    root, keys = leaky
    result = cli(".", "--format", "sarif", env=env, cwd=root)
    assert result.returncode == 1
    log = json.loads(result.stdout)
    assert log["version"] == "2.1.0"
    (run,) = log["runs"]
    assert run["tool"]["driver"]["name"] == "LeakWatch"
    rule_ids = [rule["id"] for rule in run["tool"]["driver"]["rules"]]
    assert sorted(rule_ids) == ["github_classic_pat", "openai_project_key"]
    for res in run["results"]:
        assert rule_ids[res["ruleIndex"]] == res["ruleId"]
        assert len(res["partialFingerprints"]["leakwatch/v1"]) == 64
        physical = res["locations"][0]["physicalLocation"]
        uri = physical["artifactLocation"]["uri"]
        assert not uri.startswith(("/", "./"))  # relative to where the scan ran
        region = physical["region"]
        line = (root / uri).read_text().splitlines()[region["startLine"] - 1]
        assert line[region["startColumn"] - 1 : region["endColumn"] - 1] == keys[uri]
    assert not any(key in result.stdout for key in keys.values())


def test_stdin(env: dict[str, str]) -> None:
    key = fake_secret("anthropic_api_key", 12)
    result = cli("-", "--format", "jsonl", env=env, stdin=f"hello\nmy key is {key}\n".encode())
    assert result.returncode == 1, result.stderr
    (record,) = (json.loads(line) for line in result.stdout.splitlines())
    assert (record["path"], record["line"], record["column"]) == ("<stdin>", 2, 11)
    assert record["rule"] == "anthropic_api_key"


def test_binary_files_are_skipped(tmp_path: Path, scan_here: ScanHere) -> None:
    key = fake_secret("openai_project_key", 13)
    folder = tmp_path / "scanned"
    folder.mkdir()
    (folder / "blob.bin").write_bytes(b"\x00\x01\x02 header\x00" + key.encode() + b"\x00")
    result = scan_here(str(folder), "--format", "json")
    assert result.returncode == 0
    document = json.loads(result.stdout)
    assert document["skipped"] == [{"path": str(folder / "blob.bin"), "reason": "binary"}]


def test_invalid_utf8_does_not_stop_the_scan(tmp_path: Path, scan_here: ScanHere) -> None:
    key = fake_secret("openai_project_key", 14)
    (tmp_path / "mixed.txt").write_bytes(
        b"caf\xe9\n\xff\xfe\xfd garbage\nvalue \xe9\xe8 " + key.encode() + b"\n"
    )
    result = scan_here(str(tmp_path), "--format", "jsonl")
    assert result.returncode == 1, result.stderr
    (record,) = (json.loads(line) for line in result.stdout.splitlines())
    assert (record["line"], record["column"]) == (3, 10)  # "value ", 2 replaced bytes, " "


def test_ignore_file_by_fingerprint(
    leaky: tuple[Path, dict[str, str]], scan_here: ScanHere
) -> None:
    root, _ = leaky
    records = [
        json.loads(x) for x in scan_here(str(root), "--format", "jsonl").stdout.split("\n") if x
    ]
    openai = next(r for r in records if r["rule"] == "openai_project_key")
    (root / ".leakwatchignore").write_text(f"# the documented fixture\n{openai['fingerprint']}\n")
    result = scan_here(str(root), "--format", "jsonl")
    assert result.returncode == 1
    assert [json.loads(x)["rule"] for x in result.stdout.splitlines()] == ["github_classic_pat"]
    table = scan_here(str(root))
    assert "1 ignored by the ignore file" in table.stdout


def test_ignore_file_by_glob_and_extra_ignore_file(
    leaky: tuple[Path, dict[str, str]], scan_here: ScanHere, tmp_path: Path
) -> None:
    root, _ = leaky
    (root / ".leakwatchignore").write_text("*.md\n")
    result = scan_here(str(root), "--format", "jsonl")
    assert [json.loads(x)["rule"] for x in result.stdout.splitlines()] == ["openai_project_key"]
    extra = tmp_path / "more-ignores"
    extra.write_text("conf/\n")
    assert scan_here(str(root), "--ignore", str(extra)).returncode == 0
    assert scan_here(str(root), "--ignore", str(tmp_path / "absent")).returncode == 2


def test_files_over_the_size_cap_are_reported_and_skipped(
    tmp_path: Path, scan_here: ScanHere
) -> None:
    key = fake_secret("openai_project_key", 15)
    (tmp_path / "big.log").write_text("x" * 2_000_000 + key)
    result = scan_here(str(tmp_path), "--max-file-size", "1")
    assert result.returncode == 0
    assert "skipped" in result.stdout and "too large" in result.stdout


def test_a_large_file_is_read_in_chunks_with_bounded_memory(
    tmp_path: Path, env: dict[str, str]
) -> None:
    """30 MB in one file: every key at its line, once, and the process stays small."""
    keys = {}
    path = tmp_path / "big.log"
    filler = "2026-03-02T10:00:00Z INFO request served in 12 ms path=/api/v1/items status=200\n"
    with path.open("w") as handle:
        line = 0
        for block in range(6):
            for _ in range(60_000):
                handle.write(filler)
                line += 1
            key = fake_secret("openai_project_key", 100 + block)
            handle.write(f"OPENAI_API_KEY={key}\n")
            line += 1
            keys[line] = key
    # The peak RSS of this process image: /proc's VmHWM starts afresh at exec, whereas
    # getrusage's ru_maxrss survives execve and would report the forking pytest's own size.
    probe = (
        "import re, sys\n"
        "from bot.__main__ import main\n"
        "code = main(sys.argv[1:])\n"
        "status = open('/proc/self/status').read()\n"
        "peak = re.search(r'VmHWM:\\s+(\\d+) kB', status).group(1)\n"
        "sys.stderr.write(f'maxrss_kb={peak}\\n')\n"
        "sys.exit(code)\n"
    )
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            probe,
            "scan",
            "--no-progress",
            "--format",
            "jsonl",
            "--reveal",
            str(path),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 1, result.stderr
    records = [json.loads(x) for x in result.stdout.splitlines()]
    assert {r["line"]: r["secret"] for r in records} == keys
    assert all(r["column"] == len("OPENAI_API_KEY=") + 1 for r in records)
    maxrss_mb = int(result.stderr.split("maxrss_kb=")[1].split()[0]) / 1024
    assert path.stat().st_size > 25_000_000
    assert maxrss_mb < 200, f"peak RSS {maxrss_mb:.0f} MB"


def test_slack_export_findings_say_where_in_the_export(tmp_path: Path, scan_here: ScanHere) -> None:
    from bot.samples import build

    samples = build(tmp_path / "samples")
    result = scan_here(str(samples), "--format", "jsonl")
    records = [json.loads(x) for x in result.stdout.splitlines()]
    slack = [r for r in records if r.get("source") == "slack"]
    assert slack, records
    for record in slack:
        assert record["path"] == str(samples / "slack-export")
        assert record["channel"] == "#ml-platform"
        assert record["container"] == "#ml-platform"
        assert record["user"] == record["author"]
        assert record["user"].startswith("U")
        assert record["ts"] and record["item"]
    mail = [r for r in records if r.get("source") == "email"]
    assert {r["rule"] for r in mail} == {"aws_access_key", "github_classic_pat"}
    assert {r["item"] for r in mail} == {
        "<export-access-1@example.com>",
        "<ci-token-2@example.com>",
    }
    wiki = [r for r in records if r.get("source") == "confluence"]
    assert {r["rule"] for r in wiki} == {"stripe_secret_key", "slack_bot_token"}
    assert {r["container"] for r in wiki} == {"Platform"}
    assert {(r["title"], r["author"]) for r in wiki} == {
        ("Onboarding for new engineers", "Carla Nguyen")
    }


def test_the_repository_scans_clean(env: dict[str, str]) -> None:
    """Our own tree holds no key-shaped literal (fixtures are built at run time)."""
    result = cli(str(REPO), env=env)
    assert result.returncode == 0, result.stdout[-3000:]


def test_run_without_slack_scans_the_samples(tmp_path: Path, env: dict[str, str]) -> None:
    from bot.samples import placeholders

    result = subprocess.run(
        [sys.executable, "-m", "bot", "run"], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "SLACK_BOT_TOKEN" in result.stdout
    expected = len(placeholders())
    assert f"Found {expected} secrets at {expected} places" in result.stdout
    assert (tmp_path / "data" / "samples" / "slack-export" / "channels.json").is_file()


def test_store_records_each_secret_once(
    leaky: tuple[Path, dict[str, str]], env: dict[str, str], database_url: str
) -> None:
    import sqlalchemy as sa

    from bot.store import models
    from bot.store.db import Database

    root, _ = leaky
    env = {**env, "DATABASE_URL": database_url}
    first = cli(str(root), "--store", "--format", "jsonl", env=env)
    assert first.returncode == 1, first.stderr
    again = cli(str(root), "--store", "--format", "jsonl", env=env)
    assert again.returncode == 1, again.stderr
    printed = {json.loads(line)["fingerprint"] for line in first.stdout.splitlines()}
    db = Database(database_url)
    try:
        with db.session() as session:
            stored = set(session.scalars(sa.select(models.Secret.fingerprint)))
            occurrences = session.scalar(sa.select(sa.func.count()).select_from(models.Occurrence))
    finally:
        db.dispose()
    assert stored == printed
    assert occurrences == 2  # the second scan found the same two places: nothing new


def test_a_file_name_that_is_not_utf8_is_printed_and_kept_in_sarif(
    tmp_path: Path, scan_here: ScanHere
) -> None:
    folder = tmp_path / "names"
    folder.mkdir()
    name = os.fsdecode(b"caf\xe9.txt")  # Latin-1 bytes on disk, not UTF-8
    (folder / name).write_text("k " + fake_secret("openai_project_key", 16) + "\n")
    record = json.loads(scan_here(str(folder), "--format", "jsonl").stdout)
    assert record["path"] == str(folder / "caf\ufffd.txt")
    sarif = json.loads(scan_here(str(folder), "--format", "sarif").stdout)
    uri = sarif["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]
    assert uri["uri"].endswith("/caf%E9.txt")
    assert scan_here(str(folder)).returncode == 1


def test_store_keeps_the_file_line_of_a_key_in_a_later_chunk(
    tmp_path: Path, env: dict[str, str], sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file larger than one chunk: the stored occurrence has the file's line number."""
    import sqlalchemy as sa

    from bot.store import models
    from bot.store.db import Database
    from connectors.files import DEFAULT_CHUNK_CHARS

    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    path = tmp_path / "long.log"
    key = fake_secret("anthropic_api_key", 17)
    filler = "log line without secrets\n"  # 25 characters
    lines_before = 2 * DEFAULT_CHUNK_CHARS // len(filler)  # the key sits in the third chunk
    path.write_text(filler * lines_before + f"ANTHROPIC_API_KEY={key}\n")
    assert main(["scan", "--no-progress", "--store", "--format", "jsonl", str(path)]) == 1
    db = Database(sqlite_url)
    try:
        with db.session() as session:
            lines = set(session.scalars(sa.select(models.Occurrence.line)))
    finally:
        db.dispose()
    assert lines == {lines_before + 1}


def test_store_leaves_out_what_the_ignore_file_lists(
    tmp_path: Path, env: dict[str, str], sqlite_url: str
) -> None:
    """A known fixture beside a real key in the same file: only the real key is stored."""
    import sqlalchemy as sa

    from bot.store import models
    from bot.store.db import Database

    root = tmp_path / "repo"
    root.mkdir()
    fixture, real = fake_secret("openai_project_key", 41), fake_secret("github_classic_pat", 42)
    (root / "settings.py").write_text(f'FIXTURE = "{fixture}"\nDEPLOY = "{real}"\n')
    env = {**env, "DATABASE_URL": sqlite_url}
    listing = cli(str(root), "--format", "jsonl", env=env).stdout
    records = [json.loads(x) for x in listing.splitlines()]
    ignored = next(r["fingerprint"] for r in records if r["rule"] == "openai_project_key")
    (root / ".leakwatchignore").write_text(f"# the documented fixture\n{ignored}\n")

    result = cli(str(root), "--store", "--format", "jsonl", env=env)
    assert result.returncode == 1, result.stderr
    db = Database(sqlite_url)
    try:
        with db.session() as session:
            stored = list(session.scalars(sa.select(models.Secret.rule_id)))
    finally:
        db.dispose()
    assert stored == ["github_classic_pat"]


def test_store_marks_mail_sent_outside_the_company(
    tmp_path: Path, env: dict[str, str], sqlite_url: str
) -> None:
    import sqlalchemy as sa

    from bot.store import models
    from bot.store.db import Database

    key = fake_secret("anthropic_api_key", 43)
    mbox = tmp_path / "vendor.mbox"
    mbox.write_text(
        "From alice@acme.test Mon Mar  2 09:14:00 2026\n"
        "From: alice@acme.test\nTo: bob@acme.test, help@vendor.example\n"
        "Subject: the key\nMessage-ID: <key-1@acme.test>\n\n"
        f"here it is: {key}\n\n"
    )
    env = {**env, "DATABASE_URL": sqlite_url, "LEAKWATCH_COMPANY_DOMAINS": "acme.test"}
    result = cli(str(mbox), "--store", "--format", "jsonl", env=env)
    assert result.returncode == 1, result.stderr
    db = Database(sqlite_url)
    try:
        with db.session() as session:
            [(external, audience)] = session.execute(
                sa.select(models.Occurrence.is_external, models.Occurrence.audience)
            ).all()
    finally:
        db.dispose()
    assert external and audience == 2
