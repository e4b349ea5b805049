"""The renderers: what a person and a machine read, and that the raw secret stays hidden."""

from __future__ import annotations

import io
import json

from bot.detection.types import Severity
from bot.output import Finding, Summary, renderer

RAW = "raw-value-" + "q7" * 12  # stands for a secret; any string does for the renderers


def finding(**overrides: object) -> Finding:
    values: dict[str, object] = dict(
        path="conf/app env.txt",
        line=3,
        column=5,
        end_column=5 + len(RAW),
        rule="openai_project_key",
        provider="openai",
        name="OpenAI project API key",
        severity=Severity.CRITICAL,
        preview="sk-proj-…q7q7",
        fingerprint="f" * 64,
        secret=RAW,
    )
    values.update(overrides)
    return Finding(**values)  # type: ignore[arg-type]


SLACK = dict(
    path="export.zip",
    source="slack",
    container="#ml-platform",
    item="1772528700.000200",
    author="U04ALICE01",
    details=(("channel", "#ml-platform"), ("ts", "1772528700.000200"), ("user", "U04ALICE01")),
)
SUMMARY = Summary(files=2, bytes=2048, seconds=0.25, skipped=[("logo.png", "binary")])


def render(format: str, findings: list[Finding], reveal: bool = False) -> str:
    stream = io.StringIO()
    output = renderer(format, stream, reveal=reveal)
    for item in findings:
        output.add(item)
    output.close(SUMMARY)
    return stream.getvalue()


def test_jsonl_record_fields_and_no_secret_by_default() -> None:
    text = render("jsonl", [finding(), finding(**SLACK)])
    first, second = (json.loads(line) for line in text.splitlines())
    assert first == {
        "path": "conf/app env.txt",
        "line": 3,
        "column": 5,
        "end_column": 5 + len(RAW),
        "rule": "openai_project_key",
        "provider": "openai",
        "name": "OpenAI project API key",
        "severity": "critical",
        "preview": "sk-proj-…q7q7",
        "fingerprint": "f" * 64,
    }
    assert second["source"] == "slack"
    assert (second["container"], second["item"], second["author"]) == (
        "#ml-platform",
        "1772528700.000200",
        "U04ALICE01",
    )
    assert (second["channel"], second["ts"], second["user"]) == (
        "#ml-platform",
        "1772528700.000200",
        "U04ALICE01",
    )
    assert RAW not in text


def test_reveal_adds_the_secret() -> None:
    for format in ("jsonl", "json", "sarif", "table"):
        assert RAW in render(format, [finding()], reveal=True), format
        assert RAW not in render(format, [finding()], reveal=False), format


def test_json_document() -> None:
    document = json.loads(render("json", [finding(), finding(line=9)]))
    assert [f["line"] for f in document["findings"]] == [3, 9]
    assert document["summary"]["secrets"] == 1
    assert document["summary"]["findings"] == 2
    assert document["skipped"] == [{"path": "logo.png", "reason": "binary"}]


def test_sarif_shape() -> None:
    log = json.loads(render("sarif", [finding(), finding(**SLACK, rule="slack_bot_token")]))
    assert log["version"] == "2.1.0"
    assert log["$schema"].endswith("sarif-2.1.0.json")
    (run,) = log["runs"]
    rules = run["tool"]["driver"]["rules"]
    assert [rule["id"] for rule in rules] == ["openai_project_key", "slack_bot_token"]
    assert all(rule["shortDescription"]["text"] for rule in rules)
    first, second = run["results"]
    assert first["ruleId"] == "openai_project_key" and first["ruleIndex"] == 0
    assert second["ruleIndex"] == 1
    assert first["level"] == "error"
    location = first["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == "conf/app%20env.txt"
    assert location["region"] == {"startLine": 3, "startColumn": 5, "endColumn": 5 + len(RAW)}
    assert first["partialFingerprints"] == {"leakwatch/v1": "f" * 64}
    assert "sk-proj-…q7q7" in first["message"]["text"]
    assert second["locations"][0]["logicalLocations"][0]["fullyQualifiedName"] == (
        "#ml-platform/1772528700.000200"
    )


def test_sarif_without_findings_is_a_valid_empty_run() -> None:
    log = json.loads(render("sarif", []))
    assert log["runs"][0]["results"] == []
    assert log["runs"][0]["tool"]["driver"]["name"] == "LeakWatch"


def test_table_masks_sorts_by_severity_and_summarises() -> None:
    low = finding(
        path="b.txt",
        severity=Severity.LOW,
        name="Stripe test key",
        preview="sk_test_…0000",
        fingerprint="e" * 64,
    )
    text = render("table", [low, finding()])
    lines = text.splitlines()
    assert lines[0].split() == ["SEVERITY", "TYPE", "SECRET", "WHERE"]
    assert lines[1].startswith("critical")
    assert lines[2].startswith("low")
    assert "conf/app env.txt:3:5" in lines[1]
    assert "Found 2 secrets at 2 places in 2 files" in text
    assert "skipped 1 binary file" in text
    assert RAW not in text


def test_table_when_nothing_is_found() -> None:
    assert render("table", []).startswith("No secrets found (2 files, 2.0 kB")


def test_progress_bar_waits_then_draws_and_clears() -> None:
    from bot.output import ProgressBar

    now = [0.0]
    stream = io.StringIO()
    bar = ProgressBar(stream, total=4_000_000, delay=1.0, clock=lambda: now[0])
    bar.advance(1_000_000)
    assert stream.getvalue() == ""  # a short scan never shows a bar
    now[0] = 2.0
    bar.advance(1_000_000)
    drawn = stream.getvalue()
    assert drawn.startswith("\r[") and " 50%" in drawn and "2.0 MB of 4.0 MB" in drawn
    bar.finish()
    assert stream.getvalue().endswith("\r")
