"""Fake keys for the fault tests: one per poster, of credential types that need no context word."""

from __future__ import annotations

from bot.detection.fakes import fake_secret

# Types the detector reports on their own, pasted bare in a sentence.
STANDALONE_RULES = (
    "openai_project_key",
    "anthropic_api_key",
    "github_classic_pat",
    "stripe_secret_key",
    "huggingface_token",
    "groq_api_key",
    "gitlab_pat",
    "npm_token",
    "pypi_token",
    "sendgrid_api_key",
    "openrouter_api_key",
    "github_fine_grained_pat",
)


def key_for(index: int, seed_base: int = 0) -> str:
    """The index-th distinct fake key: rule types in turn, a fresh seed each time."""
    rule = STANDALONE_RULES[index % len(STANDALONE_RULES)]
    return fake_secret(rule, seed=seed_base + index)
