"""A labelled corpus for detection quality: chat logs, wiki pages, emails and config files.

    .venv/bin/python -m bench.quality.generate --out bench/out/quality/corpus --seed 7

Writes plain-text files under OUT and the labels beside them (OUT.labels.json, kept outside the
scanned folder): every fake key's path, first and last line, rule id and provider, and every
hard negative's path, line and kind. Fake keys come from `fake_secret` (format-valid, checksums
right), drawn across every rule and weighted towards LLM providers, and are placed in many
contexts: inline in a sentence, after "here's the key:", in code blocks, .env lines, JSON, YAML,
URLs, quotes, curl headers, SDK calls, quoted email replies, HTML.

Hard negatives sit among them: placeholders (`sk-...`, `YOUR_API_KEY`, `${OPENAI_API_KEY}`,
`os.environ[...]`), masked and truncated keys, providers' published documentation examples,
UUIDs, git SHAs, MD5/SHA-1/SHA-256 digests, SRI hashes, base64 blobs, identifiers and prose.

The same seed gives the same corpus. Files are named .txt/.md/.html/.env/.json/.yaml/.py (never
.eml or .mbox) so that every scanner reads them as plain text and line numbers agree.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import random
import shutil
import string
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bot.detection.fakes import fake_secret
from bot.detection.rules import Rule, default_rules

# Providers whose keys buy model inference: the "every LLM provider" list, compared
# after `normalise_provider` (lower case, letters and digits only).
_LLM = """openai anthropic google gemini azureopenai aws awsbedrock bedrock cohere mistral
    mistralai groq huggingface replicate together togetherai perplexity xai deepseek openrouter
    fireworks fireworksai elevenlabs pinecone langsmith langchain voyage voyageai deepinfra
    stability stabilityai"""
LLM_PROVIDERS = frozenset(_LLM.split())
LLM_WEIGHT = 4

PEOPLE = ["alice", "bob", "carla", "dmitri", "esther", "farid", "grace", "hiro", "ines", "jamal"]
CHANNELS = ["#ml-platform", "#backend", "#data-eng", "#incidents", "#random", "#devops", "#evals"]
TOPICS = [
    "the eval pipeline",
    "the staging deploy",
    "the billing export",
    "the summariser service",
    "the embeddings backfill",
    "the nightly batch",
    "the RAG prototype",
    "the support bot",
    "the data warehouse sync",
    "the feature-flag rollout",
]
PROSE = [
    "Can someone take a look at {topic} before the standup?",
    "I think {topic} is failing because of the new rate limits.",
    "Merged the fix for {topic}, deploying after lunch.",
    "Does anyone know who owns {topic} these days?",
    "Latency on {topic} went from 300 ms to 2 s after the upgrade.",
    "Rolled back {topic}; the error rate is back to normal.",
    "The dashboard for {topic} is in Grafana under the platform folder.",
    "We should move {topic} to the shared cluster next sprint.",
    "FYI the retro for {topic} is on Thursday at 15:00.",
    "Thanks, that did it. {topic} is green again.",
    "Who has access to the vendor console for {topic}?",
    "The model keeps timing out in {topic}, retries are set to 3.",
    "Let's keep the discussion about {topic} in the thread please.",
    "Reminder: rotate credentials through the vault, not by hand.",
    "Lunch order closes at 11:30, the form is pinned in the channel.",
    "I'll be out tomorrow, ping me on the phone if something burns.",
    "New runbook for on-call is on the wiki, please read it before your shift.",
    "Token usage doubled this week, mostly from the batch jobs.",
    "Does the SDK retry on 429 or do we have to do it ourselves?",
    "The PR needs one more approval, it's a two-line change.",
]
LEAD_INS = [
    "here's the key: {key}",
    "here is the API key you asked for {key}",
    "try this one: {key}",
    "use {key} for now, I'll make you your own later",
    "the old one was revoked, new key is {key}",
    "key: {key}",
    "token={key}",
    "can you check if {key} still works?",
    "I added `{key}` to the runner config",
    'set it like this: "{key}"',
    "it's {key} (don't share it outside the team)",
    "pasting for the record — {key}",
]
# The held-out style (--holdout): phrasings and formats the detection rules were not tuned on.
HOLDOUT_LEAD_INS = [
    "ping me if {key} doesn't work",
    "creds below\n{key}",
    "(temporary) {key}",
    "fwiw I used **{key}** yesterday",
    "new one → {key}",
    "you can borrow mine: {key} — rotate it after the demo",
    "{key}",
    "export it: {key};",
    "does '{key}' look right to you?",
    "prod was {key}, staging is the same for now",
]
HOLDOUT_STYLES = ["ruby", "xml", "ini", "powershell", "notebook", "k8s", "js", "go"]
ENV_NAMES = {
    "default": ["API_KEY", "SECRET_KEY", "ACCESS_TOKEN", "SERVICE_TOKEN", "AUTH_TOKEN"],
}


@dataclass
class Label:
    path: str
    line: int
    end_line: int
    rule: str
    provider: str
    context: str


@dataclass
class Negative:
    path: str
    line: int
    kind: str


@dataclass
class Corpus:
    keys: list[Label] = field(default_factory=list)
    negatives: list[Negative] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    bytes: int = 0


class Page:
    """The lines of one file being written, with the labels that point into it."""

    def __init__(self, path: str, corpus: Corpus) -> None:
        self.path = path
        self.corpus = corpus
        self.lines: list[str] = []

    def add(self, text: str) -> None:
        self.lines.extend(text.split("\n"))

    def key(self, text: str, fake: Fake, context: str) -> None:
        """Add `text`, which holds `fake.value`, and label the lines the value spans."""
        at = text.index(fake.value)
        first = len(self.lines) + text.count("\n", 0, at) + 1
        last = first + fake.value.count("\n")
        self.corpus.keys.append(Label(self.path, first, last, fake.rule, fake.provider, context))
        self.add(text)

    def negative(self, text: str, kind: str) -> None:
        self.corpus.negatives.append(Negative(self.path, len(self.lines) + 1, kind))
        self.add(text)

    def write(self, root: Path) -> None:
        target = root / self.path
        target.parent.mkdir(parents=True, exist_ok=True)
        data = ("\n".join(self.lines) + "\n").encode("utf-8")
        target.write_bytes(data)
        self.corpus.files.append(self.path)
        self.corpus.bytes += len(data)


@dataclass(frozen=True)
class Fake:
    rule: str
    provider: str
    value: str  # the secret, as labelled
    text: str  # what is pasted: the value, or a connection URL around a password
    shape: str  # "token", "multiline" (PEM, JSON), "url", "generic" (needs a keyword)
    keyword: str  # the word a generic value is assigned to ("password", "aws_secret_access_key")


class Generator:
    def __init__(self, seed: int, rules: tuple[Rule, ...], holdout: bool = False) -> None:
        self.rng = random.Random(seed)
        self.holdout = holdout
        self.lead_ins = HOLDOUT_LEAD_INS if holdout else LEAD_INS
        self.seed = seed
        self.rules = rules
        self.weights = [
            LLM_WEIGHT if normalise_provider(r.provider) in LLM_PROVIDERS else 1 for r in rules
        ]
        self.counter = 0
        self.corpus = Corpus()
        self.pages: list[Page] = []
        self.shapes = {r.id: _shape(r, fake_secret(r.id, 0), random.Random(0))[0] for r in rules}

    # Keys -------------------------------------------------------------------------------------

    def fake(self, *shapes: str) -> Fake:
        """A new fake of a rule, drawn by weight among the rules pasted in one of `shapes`."""
        eligible = [i for i, rule in enumerate(self.rules) if self.shapes[rule.id] in shapes]
        index = self.rng.choices(eligible, [self.weights[i] for i in eligible])[0]
        rule = self.rules[index]
        self.counter += 1
        value = fake_secret(rule.id, self.seed * 100_000 + self.counter)
        shape, text = _shape(rule, value, self.rng)
        return Fake(rule.id, rule.provider, value, text, shape, _keyword(rule))

    def env_name(self, fake: Fake) -> str:
        if fake.shape == "url":
            return self.rng.choice(["DATABASE_URL", "BROKER_URL", "CACHE_URL", "WEBHOOK_URL"])
        provider = normalise_provider(fake.provider).upper() or "SERVICE"
        return f"{provider}_{self.rng.choice(ENV_NAMES['default'])}"

    def key_line(self, fake: Fake, style: str) -> str:
        """One line (or block for multi-line values) holding the fake in a given style."""
        value, name = fake.text, self.env_name(fake)
        if fake.shape == "generic":
            key = fake.keyword
            return {
                "env": f"{key.upper()}={value}",
                "export": f"export {key.upper()}={value}",
                "yaml": f"  {key}: {value}",
                "json": f'  "{key}": "{value}",',
                "python": f'{key} = "{value}"',
                "ruby": f'{key} = "{value}"',
                "xml": f'<add key="{key}" value="{value}" />',
                "ini": f"{key} = {value}",
                "powershell": f'$env:{key.upper()} = "{value}"',
                "notebook": f'os.environ["{key.upper()}"] = "{value}"',
                "k8s": f'- name: {key.upper()}\n  value: "{value}"',
                "js": f"const {key} = '{value}';",
                "go": f'{key} := "{value}"',
            }.get(style, f"{key}: {value}")
        if style == "env":
            return f"{name}={value}"
        if style == "export":
            return f"export {name}={value}"
        if style == "yaml":
            return f"  {name.lower()}: {value}"
        if style == "yaml_quoted":
            return f'  {name.lower()}: "{value}"'
        if style == "json":
            return f'  "{name.lower()}": "{value}",'
        if style == "python":
            return f'client = Client(api_key="{value}")'
        if style == "curl":
            host = f"https://api.{fake.provider}.example/v1/models"
            return f'curl {host} -H "Authorization: Bearer {value}"'
        if style == "url" and fake.shape == "token":
            return f"https://hooks.internal.example/run?token={value}&retry=1"
        if style == "single_quoted":
            return f"KEY = '{value}'"
        if style == "log_json":
            return f'{{"level":"error","msg":"401 from upstream","key":"{value}","attempt":3}}'
        if style == "docker":
            return f"docker run -e {name}={value} registry.example/worker:1.4"
        if style == "toml":
            return f'{name.lower()} = "{value}"'
        if style == "ruby":
            return f'Client.configure {{ |c| c.api_key = "{value}" }}'
        if style == "xml":
            return f'<add key="{name}" value="{value}" />'
        if style == "ini":
            return f"{name.lower()} = {value}"
        if style == "powershell":
            return f'$env:{name} = "{value}"'
        if style == "notebook":
            return f'os.environ["{name}"] = "{value}"'
        if style == "k8s":
            return f'- name: {name}\n  value: "{value}"'
        if style == "js":
            return f"const client = new Client({{ apiKey: '{value}' }});"
        if style == "go":
            return f'client := api.NewClient("{value}")'
        return value

    # Negatives --------------------------------------------------------------------------------

    def negative(self) -> tuple[str, str]:
        kind = self.rng.choice(NEGATIVE_KINDS)
        return NEGATIVES[kind](self), kind

    # Documents --------------------------------------------------------------------------------

    def prose(self) -> str:
        return self.rng.choice(PROSE).format(topic=self.rng.choice(TOPICS))

    def chat(self, index: int) -> Page:
        page = Page(f"chat/{self.rng.choice(CHANNELS)[1:]}-{index:04d}.txt", self.corpus)
        day = self.rng.randint(1, 28)
        for _ in range(self.rng.randint(15, 60)):
            who = self.rng.choice(PEOPLE)
            stamp = (
                f"[2026-03-{day:02d} {self.rng.randint(8, 19):02d}:{self.rng.randint(0, 59):02d}]"
            )
            roll = self.rng.random()
            if roll < 0.10:
                fake = self.fake("token", "url", "generic")
                if fake.shape == "generic":
                    words = _spoken_name(fake)
                    spoken = [
                        f"the {words} for staging is {fake.text}",
                        f"{words}: {fake.text}",
                        f"staging {words} = {fake.text}",
                    ]
                    if self.holdout:
                        spoken = [f"{words} is {fake.text} fyi", f"use {fake.text} as the {words}"]
                    text = self.rng.choice(spoken)
                else:
                    text = self.rng.choice(self.lead_ins).format(key=fake.text)
                page.key(f"{stamp} {who}: {text}", fake, "chat_inline")
            elif roll < 0.14:
                fake = self.fake("token", "url", "generic")
                style = self.rng.choice(
                    HOLDOUT_STYLES
                    if self.holdout
                    else ["env", "export", "python", "curl", "json", "log_json", "docker", "url"]
                )
                page.add(f"{stamp} {who}: this is what I have in my setup:")
                page.add("```")
                page.key(self.key_line(fake, style), fake, f"chat_code_{style}")
                page.add("```")
            elif roll < 0.15:
                fake = self.fake("multiline")
                page.add(f"{stamp} {who}: here's the deploy key, don't lose it")
                page.add("```")
                page.key(fake.value, fake, "chat_code_block_multiline")
                page.add("```")
            elif roll < 0.33:
                text, kind = self.negative()
                page.negative(f"{stamp} {who}: {text}", kind)
            else:
                page.add(f"{stamp} {who}: {self.prose()}")
        return page

    def wiki(self, index: int) -> Page:
        html = self.rng.random() < 0.4
        page = Page(f"wiki/page-{index:04d}.{'html' if html else 'md'}", self.corpus)
        title = f"Runbook: {self.rng.choice(TOPICS)}"
        page.add(f"<h1>{title}</h1>" if html else f"# {title}")
        page.add("")
        for _ in range(self.rng.randint(4, 10)):
            page.add(f"<h2>{self.prose()}</h2>" if html else f"## {self.prose()}")
            for _ in range(self.rng.randint(1, 4)):
                page.add(
                    f"<p>{self.prose()} {self.prose()}</p>"
                    if html
                    else f"{self.prose()} {self.prose()}"
                )
            roll = self.rng.random()
            if roll < 0.25:
                fake = self.fake("token", "url", "generic")
                style = self.rng.choice(
                    HOLDOUT_STYLES
                    if self.holdout
                    else ["env", "yaml", "yaml_quoted", "json", "python", "curl", "export", "toml"]
                )
                page.add("<pre><code>" if html else "```")
                page.key(self.key_line(fake, style), fake, f"wiki_code_{style}")
                page.add("</code></pre>" if html else "```")
            elif roll < 0.35:
                fake = self.fake("token", "url")
                variant = self.rng.randrange(3)
                if variant == 0:
                    line = (
                        f"<p>The shared key for the sandbox is <code>{fake.text}</code>.</p>"
                        if html
                        else f"The shared key for the sandbox is `{fake.text}`."
                    )
                elif variant == 1:  # a row of a table of environments
                    env = self.rng.choice(["staging", "prod", "sandbox"])
                    line = (
                        f"<tr><td>{env}</td><td>{fake.provider}</td><td>{fake.text}</td></tr>"
                        if html
                        else f"| {env} | {fake.provider} | {fake.text} |"
                    )
                else:  # at the end of a sentence, the full stop right after it
                    line = (
                        f"<p>Until the vault is set up, use {fake.text}.</p>"
                        if html
                        else f"Until the vault is set up, use {fake.text}."
                    )
                page.key(line, fake, "wiki_inline")
            elif roll < 0.38:
                fake = self.fake("multiline")
                page.add("<pre>" if html else "```")
                page.key(fake.value, fake, "wiki_multiline")
                page.add("</pre>" if html else "```")
            for _ in range(self.rng.randint(0, 3)):
                text, kind = self.negative()
                page.negative(f"<p>{text}</p>" if html else text, kind)
        return page

    def email(self, index: int) -> Page:
        page = Page(f"mail/message-{index:04d}.txt", self.corpus)
        sender, receiver = self.rng.sample(PEOPLE, 2)
        page.add(
            f"Date: Mon, {self.rng.randint(1, 28)} Mar 2026 10:{self.rng.randint(10, 59)}:00 +0000"
        )
        page.add(f"From: {sender.title()} <{sender}@example.com>")
        page.add(f"To: {receiver}@example.com")
        page.add(f"Subject: Re: {self.rng.choice(TOPICS)}")
        page.add("")
        page.add(f"Hi {receiver.title()},")
        page.add("")
        for _ in range(self.rng.randint(3, 8)):
            roll = self.rng.random()
            if roll < 0.2:
                fake = self.fake("token", "url")
                page.add("Here is the new token, please update the job:")
                page.add("")
                page.key(f"    {fake.text}", fake, "email_indented")
                page.add("")
            elif roll < 0.3:
                fake = self.fake("token", "url")
                page.key(
                    f"> {self.rng.choice(self.lead_ins).format(key=fake.text)}",
                    fake,
                    "email_quoted_reply",
                )
            elif roll < 0.55:
                text, kind = self.negative()
                page.negative(text, kind)
            else:
                page.add(f"{self.prose()} {self.prose()}")
        page.add("")
        page.add(f"Thanks,\n{sender.title()}")
        return page

    def config(self, index: int) -> Page:
        kind = self.rng.choice(["env", "yaml", "json", "python"])
        suffix = {"env": "env", "yaml": "yaml", "json": "json", "python": "py"}[kind]
        page = Page(f"config/service-{index:04d}.{suffix}", self.corpus)
        settings = [
            ("LOG_LEVEL", "info"),
            ("PORT", str(self.rng.choice([8000, 8080, 9000]))),
            ("WORKERS", str(self.rng.randint(1, 16))),
            ("REGION", self.rng.choice(["eu-west-1", "us-east-1", "ap-southeast-2"])),
            ("MODEL", self.rng.choice(["gpt-4.1-mini", "claude-sonnet-4", "gemini-2.5-flash"])),
            ("TIMEOUT_SECONDS", str(self.rng.randint(5, 120))),
            ("FEATURE_FLAGS", "streaming,citations"),
        ]
        if kind == "json":
            page.add("{")
        for name, value in settings:
            if kind == "env":
                page.add(f"{name}={value}")
            elif kind == "yaml":
                page.add(f"  {name.lower()}: {value}")
            elif kind == "json":
                page.add(f'  "{name.lower()}": "{value}",')
            else:
                page.add(f'{name} = "{value}"')
            roll = self.rng.random()
            if roll < 0.3:
                fake = self.fake("token", "url", "generic")
                style = {"env": "env", "yaml": "yaml", "json": "json", "python": "python"}[kind]
                page.key(self.key_line(fake, style), fake, f"config_{kind}")
            elif roll < 0.6:
                text, negative_kind = self.negative()
                line = {
                    "env": f"# {text}",
                    "yaml": f"  # {text}",
                    "json": f'  "_comment_{self.rng.randint(0, 999)}": {json.dumps(text)},',
                    "python": f"# {text}",
                }[kind]
                page.negative(line, negative_kind)
        if kind == "json":
            page.add('  "version": 1')
            page.add("}")
        return page

    def build(self, documents: int) -> list[Page]:
        makers = [self.chat, self.wiki, self.email, self.config]
        self.pages = [makers[index % len(makers)](index) for index in range(documents)]
        return self.pages


def normalise_provider(provider: str) -> str:
    return "".join(c for c in provider.lower() if c.isalnum())


def _shape(rule: Rule, value: str, rng: random.Random) -> tuple[str, str]:
    """How a fake is pasted: on its own, or inside the text that makes it a credential."""
    if "\n" in value:
        return "multiline", value
    if "://" in value:
        return "url", value
    if any(keyword.lower() in value.lower() for keyword in rule.keywords) and not rule.generic:
        return "token", value
    if rule.keywords in (("bearer",), ("basic",)):  # an HTTP Authorization header
        return "token", f"Authorization: {rule.keywords[0].title()} {value}"
    if "://" in rule.pattern:  # a password that is a credential inside a connection URL
        schemes = [k for k in rule.keywords if k.isalpha()] or ["postgresql"]
        scheme = rng.choice(schemes)
        user = rng.choice(["app", "reporting", "svc_etl", "admin"])
        host = rng.choice(["db.internal", "10.0.3.17", "cache-1.prod.example.net"])
        return "url", f"{scheme}://{user}:{value}@{host}:5432/main"
    return "generic", value


def _spoken_name(fake: Fake) -> str:
    """What a person calls a key in a sentence: "the Cohere key", "the aws secret access key"."""
    words = fake.keyword.replace("_", " ")
    if fake.provider == "Any" or len(words.split()) > 3:
        return words
    return f"{fake.provider} {'token' if 'token' in fake.rule else 'key'}"


def _keyword(rule: Rule) -> str:
    """The name a generic value is assigned to, as people write it (AWS_SECRET_ACCESS_KEY)."""
    if "password" in rule.keywords:
        return "password"
    if rule.id.startswith("generic_"):
        return "api_key"
    words = [k for k in rule.keywords if k.replace("_", "").isalpha()]
    if not words:
        return "api_key"
    named = [k for k in words if "_" in k]
    if named:  # a variable name of its own: co_api_key, npm_token, secret_access_key
        return named[0] if not named[0].startswith("secret") else f"{words[0]}_{named[0]}"
    return f"{words[0]}_{'auth_token' if 'token' in rule.id else 'api_key'}"


# Hard negatives: (generator) -> text of one line. None of them is a credential.


def _rand(rng: random.Random, alphabet: str, count: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(count))


def _placeholder(g: Generator) -> str:
    return g.rng.choice(
        [
            "export OPENAI_API_KEY=sk-...",
            "OPENAI_API_KEY=sk-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
            "api_key: YOUR_API_KEY",
            'client = OpenAI(api_key=os.environ["OPENAI_API_KEY"])',
            "const key = process.env.ANTHROPIC_API_KEY;",
            "ANTHROPIC_API_KEY=${ANTHROPIC_API_KEY}",
            "Authorization: Bearer <token>",
            "set GROQ_API_KEY=<your-groq-key>",
            "token: {{ secrets.HF_TOKEN }}",
            "SLACK_BOT_TOKEN=xoxb-your-bot-token",
            "STRIPE_SECRET_KEY=sk_live_REPLACE_ME",
            "password=changeme",
            "api_key = 'INSERT_KEY_HERE'",
            "GITHUB_TOKEN=ghp_XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
            "key = sk-ant-api03-...",
            "OPENROUTER_API_KEY=sk-or-v1-<redacted>",
            "aws_secret_access_key = <SECRET>",
            "DATABASE_URL=postgres://user:password@localhost:5432/app",
        ]
    )


def _masked(g: Generator) -> str:
    fake = g.fake("token")
    value = fake.value
    style = g.rng.choice(["ellipsis", "stars", "dots", "truncated"])
    if style == "ellipsis":
        shown = value[: max(8, len(value) // 5)] + "…" + value[-4:]
    elif style == "stars":
        shown = value[:7] + "*" * (len(value) - 11) + value[-4:]
    elif style == "dots":
        shown = value[:10] + "..." + value[-4:]
    else:
        shown = value[: len(value) // 2] + "..."
    return g.rng.choice(
        [
            f"the key ending in {shown} was rotated yesterday",
            f"Dashboard shows {shown} as active",
            f"revoked: {shown}",
        ]
    )


def _docs_example(g: Generator) -> str:
    # Published documentation examples, assembled so that this file holds none verbatim.
    aws_id = "".join(["AKIA", "IOSFODNN7", "EXAMPLE"])
    aws_secret = "".join(["wJalrXUtnFEMI", "/K7MDENG/", "bPxRfiCY", "EXAMPLEKEY"])
    jwt = ".".join(
        [
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9",
            "eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ",
            "SflKxwRJSMeKKF2QT4fwpMeJf36POk6y" + "JV_adQssw5c",
        ]
    )
    stripe = "sk_" + "test_" + "4eC39HqLyjWDarjtT1zdp7dc"
    slack = "xoxb-" + "not-a-real-token-this-will-not-work"
    return g.rng.choice(
        [
            f"From the AWS docs: aws_access_key_id = {aws_id}",
            f"aws_secret_access_key = {aws_secret}  # the example from the CLI guide",
            f"The sample token on jwt.io is {jwt}",
            f"Stripe's docs use {stripe} in every curl example",
            f"SLACK_TOKEN={slack}",
        ]
    )


def _uuid(g: Generator) -> str:
    value = uuid.UUID(int=g.rng.getrandbits(128), version=4)
    return g.rng.choice(
        [
            f"request_id={value}",
            f"trace id {value} shows the timeout",
            f'"tenant_id": "{value}"',
            f"client_id: {value}",
        ]
    )


def _git_sha(g: Generator) -> str:
    sha = _rand(g.rng, "0123456789abcdef", 40)
    return g.rng.choice(
        [
            f"deployed commit {sha}",
            f"revert {sha} broke the build",
            f"git checkout {sha[:12]} && make test",
            f"ref: {sha}",
        ]
    )


def _hash(g: Generator) -> str:
    data = _rand(g.rng, string.ascii_letters, 32).encode()
    md5, sha1, sha256 = (
        hashlib.md5(data).hexdigest(),
        hashlib.sha1(data).hexdigest(),
        hashlib.sha256(data).hexdigest(),
    )
    sri = base64.b64encode(hashlib.sha512(data).digest()).decode()
    return g.rng.choice(
        [
            f"md5sum: {md5}  release.tar.gz",
            f"sha1 {sha1}",
            f"sha256:{sha256}",
            f"checksum = {sha256}",
            f'"integrity": "sha512-{sri}"',
            f"image digest registry.example/app@sha256:{sha256}",
        ]
    )


def _base64_blob(g: Generator) -> str:
    blob = base64.b64encode(g.rng.randbytes(g.rng.randint(30, 120))).decode()
    return g.rng.choice(
        [
            f"thumbnail: data:image/png;base64,{blob}",
            f"the payload was {blob}",
            f'"certificate_chain_fingerprint": "{blob}"',
        ]
    )


def _identifier(g: Generator) -> str:
    words = ["Token", "Refresh", "Handler", "Secret", "Manager", "Provider", "Client", "Factory"]
    name = "".join(g.rng.sample(words, 4))
    return g.rng.choice(
        [
            f"see {name}.java line {g.rng.randint(10, 900)}",
            f"the class {name}Impl moved to the auth module",
            f"PASSWORD_RESET_TOKEN_TTL_SECONDS = {g.rng.randint(60, 3600)}",
            f"secret_key_base is read from the keystore at boot ({name})",
            f"password: {{{{ vault_lookup('{name.lower()}') }}}}",
        ]
    )


def _prose_negative(g: Generator) -> str:
    return g.rng.choice(
        [
            "Never paste API keys in this channel; use the vault and share the path.",
            "The token expired, so I made a new one in the console and stored it in the vault.",
            "Our OpenAI key is stored in the vault under platform/openai.",
            "The Anthropic admin key is only used by the billing exporter.",
            "Rotate your GitHub token every 90 days, the policy is on the wiki.",
            "password reset emails are delayed, the SMTP relay is slow today",
        ]
    )


def _public_identifier(g: Generator) -> str:
    """Identifiers that look random and are not secrets: publishable keys, object and file ids."""
    base62 = string.ascii_letters + string.digits
    mode = g.rng.choice(["live", "test"])
    file_id = _rand(g.rng, string.ascii_uppercase + string.digits, 9)
    return g.rng.choice(
        [
            f"Stripe.js is set up with pk_{mode}_{_rand(g.rng, base62, 99)}",
            f"refund for charge ch_{_rand(g.rng, base62, 24)} went through",
            f"customer cus_{_rand(g.rng, base62, 14)} asked for an invoice copy",
            f"see the file F0{file_id} in the thread",
            f"request req_{_rand(g.rng, base62, 24)} timed out after 30 s",
            f"the Sentry event id is {_rand(g.rng, '0123456789abcdef', 32)}",
            f"pipeline run {_rand(g.rng, base62, 22)} is stuck in queued",
        ]
    )


def _lookalike(g: Generator) -> str:
    """Key prefixes in ordinary words and explanations, with no key after them."""
    return g.rng.choice(
        [
            "we pinned sk-learn (scikit-learn) to 1.5 because of the pickle format change",
            "OpenAI project keys start with sk-proj- and service accounts with sk-svcacct-",
            "GitHub classic tokens have the ghp_ prefix, fine-grained ones github_pat_",
            "Slack bot tokens start with xoxb- and user tokens with xoxp-",
            "an AWS access key id starts with AKIA (long-term) or ASIA (temporary)",
            "Anthropic keys look like sk-ant-api03- followed by about 95 characters",
            "set the header x-api-key to your key, not Authorization",
        ]
    )


NEGATIVES: dict[str, Callable[[Generator], str]] = {
    "public_identifier": _public_identifier,
    "lookalike": _lookalike,
    "placeholder": _placeholder,
    "masked": _masked,
    "docs_example": _docs_example,
    "uuid": _uuid,
    "git_sha": _git_sha,
    "hash": _hash,
    "base64": _base64_blob,
    "identifier": _identifier,
    "prose": _prose_negative,
}
NEGATIVE_KINDS = list(NEGATIVES)


def generate(out: Path, seed: int = 7, documents: int = 800, holdout: bool = False) -> Corpus:
    generator = Generator(seed, default_rules(), holdout)
    pages = generator.build(documents)
    if out.exists():
        shutil.rmtree(out)
    for page in pages:
        page.write(out)
    corpus = generator.corpus
    labels = {
        "seed": seed,
        "holdout": holdout,
        "files": corpus.files,
        "bytes": corpus.bytes,
        "keys": [asdict(label) for label in corpus.keys],
        "negatives": [asdict(negative) for negative in corpus.negatives],
    }
    labels_path(out).write_text(json.dumps(labels, indent=1))
    return corpus


def labels_path(out: Path) -> Path:
    return out.with_name(out.name + ".labels.json")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("bench/out/quality/corpus"))
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--documents", type=int, default=800)
    parser.add_argument("--holdout", action="store_true", help="the held-out phrasings")
    args = parser.parse_args()
    corpus = generate(args.out, args.seed, args.documents, args.holdout)
    print(
        f"{len(corpus.files)} files, {corpus.bytes / 1e6:.1f} MB, {len(corpus.keys)} keys, "
        f"{len(corpus.negatives)} hard negatives -> {args.out} ({labels_path(args.out).name})"
    )


if __name__ == "__main__":
    main()
