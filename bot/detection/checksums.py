"""Checksums embedded in credential formats: they reject look-alikes offline, with no network.

Each checksum is named in rules.yaml (`checksum:`) and has two halves: `is_valid(secret)` for the
engine and `apply(secret)` for fakes.py, which rewrites the tail of a fake so that it verifies.

- GitHub `ghp_`/`gho_`/`ghu_`/`ghr_` and npm `npm_`: the last 6 characters are the CRC32 (zlib)
  of the random part before them, in base62 (`0-9A-Za-z`), left-padded with `0`.
  https://github.blog/2021-04-05-behind-githubs-new-authentication-token-formats/
- GitLab routable tokens (`glpat-….01.<len><crc>`): 2 base36 characters of payload length, then
  7 of the CRC32 of everything before them, lowercase base36. Legacy 20-character tokens carry
  none. https://gitlab.com/gitlab-org/gitlab/-/merge_requests/169322
- Atlassian `ATATT3…`: the last 8 characters are the CRC32 of everything before them, uppercase
  hex (recomputed on public samples; see reference/credentials.md).
- HTTP Basic credentials are not a checksum but a structure: base64 of `user:password`
  (RFC 7617). A random base64 word after "basic" is not credentials.
"""

from __future__ import annotations

import base64
import binascii
import re
import string
import zlib
from collections.abc import Callable
from dataclasses import dataclass

_BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
_BASE36 = string.digits + string.ascii_lowercase


def _encode(number: int, alphabet: str, width: int) -> str:
    digits = ""
    while number:
        number, remainder = divmod(number, len(alphabet))
        digits = alphabet[remainder] + digits
    return digits.rjust(width, alphabet[0])


def _crc32(text: str) -> int:
    return zlib.crc32(text.encode("ascii")) & 0xFFFFFFFF


def _github_body(secret: str) -> tuple[str, str]:
    """(random part, checksum) of `prefix_` + random + 6 checksum characters."""
    body = secret.split("_", 1)[1]
    return body[:-6], body[-6:]


def _github_valid(secret: str) -> bool:
    random_part, check = _github_body(secret)
    return _encode(_crc32(random_part), _BASE62, 6) == check


def _github_apply(secret: str) -> str:
    random_part, _ = _github_body(secret)
    return secret[:-6] + _encode(_crc32(random_part), _BASE62, 6)


_GITLAB_ROUTABLE = re.compile(r"^(?P<signed>.+\.01\.(?P<length>[0-9a-z]{2}))(?P<crc>[0-9a-z]{7})$")


def _gitlab_valid(secret: str) -> bool:
    found = _GITLAB_ROUTABLE.match(secret)
    if found is None:
        return "." not in secret  # the legacy 20-character form has no checksum
    return _encode(_crc32(found["signed"]), _BASE36, 7) == found["crc"]


def _gitlab_apply(secret: str) -> str:
    if "." not in secret:
        return secret  # legacy form: nothing to compute
    prefix, dot, rest = secret.partition("-")
    payload = rest.split(".", 1)[0]
    signed = f"{prefix}{dot}{payload}.01.{_encode(len(payload), _BASE36, 2)}"
    return signed + _encode(_crc32(signed), _BASE36, 7)


def _atlassian_valid(secret: str) -> bool:
    return f"{_crc32(secret[:-8]):08X}" == secret[-8:]


def _atlassian_apply(secret: str) -> str:
    return secret[:-8] + f"{_crc32(secret[:-8]):08X}"


def _basic_valid(secret: str) -> bool:
    try:
        decoded = base64.b64decode(secret + "=" * (-len(secret) % 4), validate=True)
        text = decoded.decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return False
    user, colon, password = text.partition(":")
    return bool(colon and user and password and text.isprintable())


def _basic_apply(secret: str) -> str:
    return base64.b64encode(secret.encode("utf-8")).decode("ascii")


@dataclass(frozen=True)
class Checksum:
    name: str
    is_valid: Callable[[str], bool]
    apply: Callable[[str], str]


CHECKSUMS: dict[str, Checksum] = {
    checksum.name: checksum
    for checksum in (
        Checksum("github_crc32", _github_valid, _github_apply),
        Checksum("npm_crc32", _github_valid, _github_apply),
        Checksum("gitlab_routable", _gitlab_valid, _gitlab_apply),
        Checksum("atlassian_crc32", _atlassian_valid, _atlassian_apply),
        Checksum("basic_credentials", _basic_valid, _basic_apply),
    )
}
