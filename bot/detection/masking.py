"""Masked previews of secrets: enough for a person to recognise their key, too little to use it.

The known prefix stays (it says what the key is), then an ellipsis, then the last characters of
the random body: 4 when the body has at least 16 characters, fewer for short bodies, so that
never more than a quarter of the random part is shown.
"""

from __future__ import annotations

import re

ELLIPSIS = "…"

# Prefixes that carry no secret, longest first where one starts another. Sources in rules.yaml.
_KNOWN_PREFIX = re.compile(
    r"""^(?:
        sk-(?:proj|svcacct|admin|None|or-v1|ant-(?:api\d\d|admin\d\d|oat\d\d|ort\d\d))- |
        github_pat_ | gh[pousr]_ | glpat- | gl(?:rt|dt|ptt|cbt|ft|imt|agent|oas|soat|ffct)- |
        xox[abcdeoprs]-(?:\d+-)? | xoxe\.xox[bp]-\d- | xapp-\d- |
        (?:sk|rk|pk)_(?:live|test)_ | whsec_ | sk_ | sk- | SG\. | AKIA | ASIA | ABIA | ACCA | AIza |
        ATATT3xFfGF0 | ATCTT3xFfG | ABSKQmVkcm9ja0FQSUtleS | bedrock-api-key- | npm_ |
        pypi-AgEIcHlwaS5vcmc | pypi- | hf_ | api_org_ | r8_ | tgp_v1_ | pplx- | xai- | gsk_ | fw_ |
        pcsk_ | lsv2_(?:pt|sk)_ | pa- | AC | SK | GR1348941 | dop_v1_ | dapi | shpat_ | lin_api_ |
        ntn_ | dp\.pt\. | hvs\. | AGE-SECRET-KEY-1 | PMAK- | eyJ
    )""",
    re.VERBOSE,
)
_PEM_HEADER = re.compile(r"^-----BEGIN [A-Z0-9 ]*-----")


def mask(secret: str) -> str:
    """`sk-proj-…9fQa`: the known prefix, an ellipsis, at most a quarter of the body's tail."""
    pem = _PEM_HEADER.match(secret)
    if pem:
        return pem.group(0) + ELLIPSIS
    prefix_match = _KNOWN_PREFIX.match(secret)
    prefix = prefix_match.group(0) if prefix_match else ""
    body = secret[len(prefix) :]
    if len(body) < 8:  # the prefix alone would say too much of a short secret
        prefix, body = "", secret
    shown = min(4, len(body) // 4)
    tail = body[len(body) - shown :] if shown else ""
    return f"{prefix}{ELLIPSIS}{tail}"
