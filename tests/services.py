"""Access to the local services some tests need (PostgreSQL, Dovecot).

On a laptop without a service, its tests skip with the reason. In CI, .ci/run sets
LEAKWATCH_REQUIRE_SERVICES=1 and a missing service fails the test instead.
"""

from __future__ import annotations

import os
import socket

import pytest

POSTGRES_HOST = "127.0.0.1"
POSTGRES_PORT = 5432
POSTGRES_ADMIN_URL = f"postgresql+psycopg://postgres@{POSTGRES_HOST}:{POSTGRES_PORT}/test"


def services_required() -> bool:
    return os.environ.get("LEAKWATCH_REQUIRE_SERVICES", "") == "1"


def unavailable(reason: str) -> None:
    """Skip the calling test, or fail it when services are required."""
    if services_required():
        pytest.fail(f"required service unavailable: {reason}", pytrace=False)
    pytest.skip(reason)


def is_port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False
