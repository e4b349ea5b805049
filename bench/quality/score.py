"""Score LeakWatch and the peers on the labelled corpus: precision, recall, F1.

    .venv/bin/python -m bench.quality.score                       # generate if needed, run all
    .venv/bin/python -m bench.quality.score --tools leakwatch     # just ours
    .venv/bin/python -m bench.quality.score --markdown            # tables for docs/benchmarks.md

Counting, the same for every tool: a tool's findings become the set of (path, line) it reports
(several rules on one line count once). A labelled key is found (a true positive) when a
reported line falls within its lines (a PEM key spans several). A reported line that holds no
labelled key is a false positive, attributed to the hard-negative kind written on that line
when there is one. Per provider: recall over that provider's keys; for LeakWatch, which names
the provider, also precision.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.quality.generate import LLM_PROVIDERS, generate, labels_path, normalise_provider
from bench.quality.tools import TOOLS, Report, run_tool

DEFAULT_CORPUS = Path("bench/out/quality/corpus")
HOLDOUT_CORPUS = Path("bench/out/holdout/corpus")


@dataclass
class Score:
    tool: str
    tp: int = 0
    fp: int = 0
    fn: int = 0
    seconds: float = 0.0
    missing: str = ""
    fp_kinds: Counter[str] = field(default_factory=Counter)
    by_provider: dict[str, dict[str, int]] = field(default_factory=dict)  # provider -> tp/fn/fp
    by_rule: dict[str, dict[str, int]] = field(default_factory=dict)  # labelled rule -> tp/fn
    fp_by_rule: Counter[str] = field(default_factory=Counter)  # the tool's rule on FP lines
    missed: list[dict[str, Any]] = field(default_factory=list)
    false_positives: list[dict[str, Any]] = field(default_factory=list)

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def score(report: Report, labels: dict[str, Any]) -> Score:
    result = Score(report.tool, seconds=report.seconds, missing=report.missing)
    if report.missing:
        return result
    reported: dict[tuple[str, int], list[str]] = defaultdict(list)
    providers: dict[tuple[str, int], str] = {}
    for hit in report.hits:
        reported[(hit.path, hit.line)].append(hit.rule)
        if hit.provider:
            providers[(hit.path, hit.line)] = normalise_provider(hit.provider)
    covered: set[tuple[str, int]] = set()
    for key in labels["keys"]:
        provider = normalise_provider(key["provider"])
        lines = [(key["path"], n) for n in range(key["line"], key["end_line"] + 1)]
        found = any(line in reported for line in lines)
        covered.update(lines)
        bucket = result.by_provider.setdefault(provider, {"tp": 0, "fn": 0, "fp": 0})
        rule_bucket = result.by_rule.setdefault(key["rule"], {"tp": 0, "fn": 0})
        if found:
            result.tp += 1
            bucket["tp"] += 1
            rule_bucket["tp"] += 1
        else:
            result.fn += 1
            bucket["fn"] += 1
            rule_bucket["fn"] += 1
            result.missed.append(key)
    negatives = {(n["path"], n["line"]): n["kind"] for n in labels["negatives"]}
    for line, rules in sorted(reported.items()):
        if line in covered:
            continue
        result.fp += 1
        kind = negatives.get(line, "other")
        result.fp_kinds[kind] += 1
        result.fp_by_rule.update(set(rules))
        if line in providers:
            provider_bucket = result.by_provider.setdefault(
                providers[line], {"tp": 0, "fn": 0, "fp": 0}
            )
            provider_bucket["fp"] += 1
        result.false_positives.append(
            {"path": line[0], "line": line[1], "rules": sorted(set(rules)), "kind": kind}
        )
    return result


def markdown(results: list[dict[str, Any]], labels: dict[str, Any]) -> str:
    """Tables for docs/benchmarks.md from the saved results (one dict per tool)."""
    keys = len(labels["keys"])
    out = [
        f"Corpus: {len(labels['files'])} files, {labels['bytes'] / 1e6:.1f} MB, {keys} labelled "
        f"keys, {len(labels['negatives'])} hard negatives (seed {labels['seed']}).",
        "",
        "| Tool | TP | FP | FN | Precision | Recall | F1 | Time (s) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        if r["missing"]:
            out.append(f"| {r['tool']} | not run: {r['missing']} | | | | | | |")
            continue
        out.append(
            f"| {r['tool']} | {r['tp']} | {r['fp']} | {r['fn']} | {r['precision']:.3f} "
            f"| {r['recall']:.3f} | {r['f1']:.3f} | {r['seconds']:.1f} |"
        )
    ran = [r for r in results if not r["missing"]]
    totals: Counter[str] = Counter()
    for key in labels["keys"]:
        totals[normalise_provider(key["provider"])] += 1
    out += ["", "Recall per provider (LLM providers marked *):", ""]
    out.append("| Provider | Keys | " + " | ".join(r["tool"] for r in ran) + " |")
    out.append("|---|---:|" + "---:|" * len(ran))
    for provider in sorted(totals):
        mark = "*" if provider in LLM_PROVIDERS else ""
        cells = [
            f"{r['by_provider'].get(provider, {}).get('tp', 0) / totals[provider]:.2f}" for r in ran
        ]
        out.append(f"| {provider}{mark} | {totals[provider]} | " + " | ".join(cells) + " |")
    kinds = sorted({k for r in ran for k in r["fp_kinds"]})
    if kinds:
        out += ["", "False positives by what the line held:", ""]
        out.append("| Line held | " + " | ".join(r["tool"] for r in ran) + " |")
        out.append("|---|" + "---:|" * len(ran))
        for kind in kinds:
            cells = [str(r["fp_kinds"].get(kind, 0)) for r in ran]
            out.append(f"| {kind} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def as_dict(s: Score) -> dict[str, Any]:
    return {
        "tool": s.tool,
        "tp": s.tp,
        "fp": s.fp,
        "fn": s.fn,
        "precision": s.precision,
        "recall": s.recall,
        "f1": s.f1,
        "seconds": s.seconds,
        "missing": s.missing,
        "fp_kinds": dict(s.fp_kinds),
        "by_provider": s.by_provider,
        "by_rule": s.by_rule,
        "fp_by_rule": dict(s.fp_by_rule),
        "missed": s.missed,
        "false_positives": s.false_positives,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="Detection quality against the labelled corpus")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--documents", type=int, default=800)
    parser.add_argument("--regenerate", action="store_true")
    parser.add_argument(
        "--holdout",
        action="store_true",
        help="phrasings and formats the rules were not tuned on (corpus in bench/out/holdout/)",
    )
    parser.add_argument("--tools", nargs="+", choices=list(TOOLS), default=list(TOOLS))
    parser.add_argument("--markdown", action="store_true", help="print Markdown tables")
    args = parser.parse_args()
    if args.holdout and args.corpus == DEFAULT_CORPUS:
        args.corpus = HOLDOUT_CORPUS
    if args.regenerate or not labels_path(args.corpus).exists():
        generate(args.corpus, args.seed, args.documents, args.holdout)
    raw_labels = labels_path(args.corpus).read_bytes()
    labels = json.loads(raw_labels)
    corpus_id = hashlib.sha256(raw_labels).hexdigest()[:16]  # results of another corpus are stale
    scores = []
    for tool in args.tools:
        report = run_tool(tool, args.corpus)
        scores.append(score(report, labels))
        s = scores[-1]
        print(
            f"{tool:15} tp={s.tp} fp={s.fp} fn={s.fn} precision={s.precision:.3f} "
            f"recall={s.recall:.3f} f1={s.f1:.3f} ({s.seconds:.1f} s) {s.missing}",
            flush=True,
        )
    # Results accumulate per tool, so the peers (slow) and LeakWatch can be run separately.
    path = args.corpus.with_name("results.json")
    saved = {r["tool"]: r for r in json.loads(path.read_text())} if path.exists() else {}
    saved = {tool: r for tool, r in saved.items() if r.get("corpus") == corpus_id}
    for s in scores:
        saved[s.tool] = as_dict(s) | {"corpus": corpus_id}
    ordered = [saved[tool] for tool in TOOLS if tool in saved]
    path.write_text(json.dumps(ordered, indent=1))
    print(f"details: {path}")
    if args.markdown:
        print()
        print(markdown(ordered, labels))


if __name__ == "__main__":
    main()
