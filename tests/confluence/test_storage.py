"""Storage format (XHTML) to the text a reader sees."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.storage_xhtml import storage_to_text
from tests.confluence.conftest import detector, key


@pytest.mark.parametrize(
    ("storage", "text"),
    [
        ("<p>a&amp;b&nbsp;c &lt;tag&gt; &#x41;&#66;</p>", "a&b c <tag> AB"),
        ("<p>one</p><p>two<br/>three</p>", "one\ntwo\nthree"),
        ("<p>split <span>ab</span><strong>cd</strong><em>ef</em> word</p>", "split abcdef word"),
        ("<ul><li>first</li><li>second</li></ul>", "first\nsecond"),
        (
            "<table><tbody><tr><th>name</th><th>value</th></tr>"
            "<tr><td>token</td><td><code>abc</code></td></tr></tbody></table>",
            "name | value\ntoken | abc",
        ),
        (
            '<ac:structured-macro ac:name="code"><ac:parameter ac:name="language">bash'
            "</ac:parameter><ac:plain-text-body><![CDATA[export A=1\n  export B=&amp;2 <x>]]>"
            "</ac:plain-text-body></ac:structured-macro>",
            "bash\nexport A=1\n  export B=&amp;2 <x>",
        ),
        (
            '<ac:structured-macro ac:name="noformat"><ac:plain-text-body><![CDATA[raw text]]>'
            "</ac:plain-text-body></ac:structured-macro>",
            "raw text",
        ),
        (
            '<ac:structured-macro ac:name="info"><ac:parameter ac:name="title">Heads up'
            "</ac:parameter><ac:rich-text-body><p>body</p></ac:rich-text-body></ac:structured-macro>",
            "Heads up\nbody",
        ),
        (
            '<p><a href="https://x.example/?token=abc">docs</a></p>',
            "docs (https://x.example/?token=abc)",
        ),
        ('<p><a href="https://x.example/">https://x.example/</a></p>', "https://x.example/"),
        (
            '<p><ac:link><ri:url ri:value="https://y.example/?k=1" /><ac:plain-text-link-body>'
            "<![CDATA[label]]></ac:plain-text-link-body></ac:link></p>",
            "https://y.example/?k=1 label",
        ),
        ("<p>   lots   of\n\n  space  </p>", "lots of space"),
        ("", ""),
        ("plain text, no markup", "plain text, no markup"),
        ("<p>unclosed <b>bold", "unclosed bold"),
    ],
)
def test_storage_to_text(storage: str, text: str) -> None:
    assert storage_to_text(storage) == text


def test_keys_survive_every_kind_of_markup() -> None:
    secret = key(50)
    bodies = [
        f"<p><span>{secret[:10]}</span><span>{secret[10:30]}</span>{secret[30:]}</p>",
        f"<ac:structured-macro ac:name='code'><ac:plain-text-body><![CDATA[KEY={secret}]]>"
        "</ac:plain-text-body></ac:structured-macro>",
        f"<table><tr><td>key</td><td>{secret}</td></tr></table>",
        f"<ac:structured-macro ac:name='x'><ac:parameter ac:name='token'>{secret}"
        "</ac:parameter></ac:structured-macro>",
        f"<p><a href='https://api.example/?key={secret}'>the API</a></p>",
        f"<p>{secret[:20]}&#{ord(secret[20])};{secret[21:]}</p>",
    ]
    for body in bodies:
        assert [m.secret for m in detector().scan(storage_to_text(body))] == [secret], body


_TAGS = [
    "p",
    "span",
    "ac:structured-macro",
    "ac:plain-text-body",
    "ac:parameter",
    "td",
    "tr",
    "a",
    "br",
]
_PIECES = st.one_of(
    st.text(max_size=20),
    st.sampled_from([f"<{t}>" for t in _TAGS] + [f"</{t}>" for t in _TAGS]),
    st.sampled_from(
        ["<![CDATA[", "]]>", "&nbsp;", "&amp;", "&#", "&#x", "<!--", "-->", "<!", "<?", "<![if"]
    ),
    st.sampled_from(["<a href='", "'>", '"', "<ri:url ri:value=", "/>", "<", ">"]),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(_PIECES, max_size=40).map("".join))
def test_storage_to_text_never_raises_on_markup_like_input(storage: str) -> None:
    text = storage_to_text(storage)
    assert isinstance(text, str)
    assert "\n\n" not in text


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_storage_to_text_never_raises_on_arbitrary_text(storage: str) -> None:
    assert isinstance(storage_to_text(storage), str)


@settings(max_examples=200, deadline=None)
@given(
    st.text(
        alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="<>&\x00\r"),
        min_size=1,
        max_size=60,
    )
)
def test_text_without_markup_comes_out_whole(words: str) -> None:
    """Plain words in a paragraph read back as the same words (white space collapsed)."""
    expected = " ".join(words.split())
    assert storage_to_text(f"<p>{words}</p>") == expected
