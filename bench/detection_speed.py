"""Detection engine speed: MB/s of `Detector.scan` alone, peak memory, hostile input.

    .venv/bin/python -m bench.detection_speed                 # ~100 MB, both engines
    .venv/bin/python -m bench.detection_speed --mb 20 --engines hyperscan

The corpus is built in memory from a seed: chat lines, wiki prose, code, config files and logs,
with one format-valid fake key (bot.detection.fakes) per ~10 KB, so the engine does the work it
does on real text: candidates, confirmations, filters, fingerprints. Measured:

- one call over the whole corpus, and the same text as ~8 KB documents (one call each, as the
  pipeline makes them), best of --repeat runs;
- peak memory: the process's maximum resident size, and the Python heap's peak (tracemalloc)
  during one whole-corpus scan;
- a 10 MB single line built to make backtracking regexes slow, beside 10 MB of ordinary text.
"""

from __future__ import annotations

import argparse
import gc
import random
import resource
import string
import time
import tracemalloc
from collections.abc import Callable

from bot.detection.engine import Detector
from bot.detection.fakes import fake_secret
from bot.detection.fingerprint import Fingerprinter
from bot.detection.rules import default_rules
from bot.detection.scanners import available_engines

MB = 1_000_000
KEY_EVERY = 10_000  # bytes of text per fake key

PROSE = """the deploy pipeline failed again after the upgrade so we rolled back and opened a
ticket with the vendor about latency on the summariser service during the nightly batch while the
dashboard shows error rates back to normal thanks for the quick fix please review my change
before standup tomorrow the runbook explains how to rotate credentials safely"""
WORDS = PROSE.split()
CODE = [
    "def handle(event: dict[str, Any]) -> Response:",
    "    result = client.messages.create(model=MODEL, max_tokens=1024, messages=history)",
    "    if response.status_code == 429: time.sleep(backoff * 2 ** attempt)",
    "for (const item of items) { total += item.price * item.quantity; }",
    "SELECT id, created_at, status FROM jobs WHERE status = 'failed' ORDER BY created_at DESC;",
    "    logger.info('processed %d records in %.2f s', count, elapsed)",
    "import { createClient } from '@supabase/supabase-js';",
]
CONFIG = [
    "LOG_LEVEL=info",
    "PORT=8080",
    "  replicas: 3",
    '  "timeout_seconds": 30,',
    "REGION=eu-west-1",
    "FEATURE_FLAGS=streaming,citations",
    "  image: registry.example.com/app:1.42.0",
]


def corpus(size: int, seed: int = 1) -> str:
    """About `size` bytes of mixed text with one fake key per KEY_EVERY bytes."""
    rng = random.Random(seed)
    rules = [rule.id for rule in default_rules() if not rule.generic and rule.near is None]
    serial = iter(range(seed * 10_000_000, (seed + 1) * 10_000_000))  # every key is new
    sha = "".join(rng.choice("0123456789abcdef") for _ in range(40))
    logs = [
        f"2026-03-0{d} 12:0{d}:11 INFO worker-{d} request_id={sha[:32]} done in {d * 13} ms"
        for d in range(1, 10)
    ]

    def chat() -> str:
        words = " ".join(rng.choices(WORDS, k=rng.randint(6, 24)))
        return f"[2026-03-12 10:{rng.randint(10, 59)}] {rng.choice(['ana', 'bo', 'cy'])}: {words}"

    makers: list[Callable[[], str]] = [
        chat,
        chat,
        lambda: " ".join(rng.choices(WORDS, k=rng.randint(30, 70))).capitalize() + ".",
        lambda: rng.choice(CODE),
        lambda: rng.choice(CONFIG),
        lambda: rng.choice(logs),
    ]
    lines: list[str] = []
    written = next_key = 0
    while written < size:
        if written >= next_key:
            rule_id = rules[next(serial) % len(rules)]
            line = f"here is the key: {fake_secret(rule_id, next(serial))}"
            next_key += KEY_EVERY
        else:
            line = rng.choice(makers)()
        lines.append(line)
        written += len(line) + 1
    return "\n".join(lines)


def documents(text: str, size: int = 8_000) -> list[str]:
    """The text cut at line ends into documents of about `size` characters."""
    out, start = [], 0
    while start < len(text):
        end = text.find("\n", start + size)
        end = len(text) if end < 0 else end + 1
        out.append(text[start:end])
        start = end
    return out


def best_of(repeat: int, run: Callable[[], object]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process), each the best of `repeat` runs.

    On a shared machine the CPU time is the comparable figure: the scan is single-threaded
    and CPU-bound, so on an idle core its wall time comes close to its CPU time.
    """
    walls, cpus = [], []
    for _ in range(repeat):
        gc.collect()
        wall, cpu = time.perf_counter(), time.process_time()
        run()
        cpus.append(time.process_time() - cpu)
        walls.append(time.perf_counter() - wall)
    return min(walls), min(cpus)


def rate(size: int, seconds: float) -> str:
    return f"{size / MB / seconds:7.0f} MB/s" if seconds > 0 else "    (too fast to time)"


def hostile_lines(size: int) -> dict[str, str]:
    return {
        "ordinary text": corpus(size, seed=2).replace("\n", " "),
        "one letter": "a" * size,
        "key characters": ("A1b2C3d4E5" * (size // 10)),
        "repeated prefix sk-": "sk-" * (size // 3),
        "repeated prefix sk-proj-": "sk-proj-" * (size // 8),
        "equals signs": "=" * size,
        "nested quotes": "\"'" * (size // 2),
        "password= runs": "password=" * (size // 9),
        "dense password=x": "password=abcdefgh1 " * (size // 19),
        "chained eyJ tokens": "eyJabcdefghijklmnopqrs." * (size // 23),
        "PEM headers": "-----BEGIN PRIVATE KEY-----\\n" * (size // 29),
        "random base64": "".join(random.Random(3).choices(string.ascii_letters + "+/", k=size)),
    }


def measure_engines(text: str, engines: list[str], repeat: int) -> None:
    size = len(text.encode("utf-8"))
    docs = documents(text)
    print(f"corpus: {size / MB:.1f} MB, {len(docs)} documents, {len(default_rules())} rules")
    for engine in engines:
        detector = Detector.default(Fingerprinter(b"bench"), engine=engine)
        detector.scan("warm up " + fake_secret("openai_project_key"))
        found = len(detector.scan(text))
        print(f"[{engine}] {found} matches")
        for label, run in (
            ("one call", lambda d=detector: d.scan(text)),
            ("documents", lambda d=detector: [d.scan(doc) for doc in docs]),
        ):
            wall, cpu = best_of(repeat, run)
            print(
                f"[{engine}] {label:9s} wall {wall:6.2f} s {rate(size, wall)}"
                f" | CPU {cpu:6.2f} s {rate(size, cpu)}"
            )


def measure_memory(text: str, engine: str) -> None:
    detector = Detector.default(Fingerprinter(b"bench"), engine=engine)
    tracemalloc.start()
    detector.scan(text)
    heap_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(f"peak Python heap during one whole-corpus scan: {heap_peak / MB:.0f} MB")
    print(f"peak resident size of the process (corpus held in memory): {rss / MB:.0f} MB")


def measure_hostile(engine: str) -> None:
    detector = Detector.default(Fingerprinter(b"bench"), engine=engine)
    print(f"hostile 10 MB lines ({engine}):")
    for name, line in hostile_lines(10 * MB).items():
        wall, cpu = best_of(2, lambda line=line: detector.scan(line))
        print(f"  {name:26s} wall {wall:6.3f} s | CPU {cpu:6.3f} s {rate(len(line), cpu)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--engines", nargs="*", default=list(available_engines()))
    args = parser.parse_args()
    text = corpus(args.mb * MB)
    measure_engines(text, args.engines, args.repeat)
    measure_memory(text, args.engines[0])
    del text
    measure_hostile(args.engines[0])


if __name__ == "__main__":
    main()
