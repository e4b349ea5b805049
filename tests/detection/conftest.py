"""Detectors for the detection tests: one per engine, built once per session."""

from __future__ import annotations

import pytest

from bot.detection.engine import Detector
from bot.detection.fingerprint import Fingerprinter
from bot.detection.scanners import available_engines

ENGINES = available_engines()


@pytest.fixture(scope="session")
def fingerprinter() -> Fingerprinter:
    return Fingerprinter(b"detection-tests-key")


@pytest.fixture(scope="session", params=ENGINES)
def detector(request: pytest.FixtureRequest, fingerprinter: Fingerprinter) -> Detector:
    return Detector.default(fingerprinter, engine=request.param)
