"""A first read of a site: every kind of content, who wrote it, and who could read it."""

from __future__ import annotations

from tests.confluence.conftest import Cloud, found_keys, key, read_all


def test_backfill_finds_keys_in_pages_blogs_comments_and_text_attachments(cloud: Cloud) -> None:
    site = cloud.site
    alice = site.add_user("Alice Adams", "alice@example.com")
    eng = site.add_space("ENG", "Engineering")
    page = site.add_page(eng, "Deploy runbook", f"<p>OPENAI_API_KEY={key(1)}</p>", alice)
    site.add_page(eng, "Release notes", f"<p>temporary key {key(2)}</p>", alice, blog=True)
    site.add_comment(page, f"<p>use {key(3)} for staging</p>", alice)
    site.add_comment(page, f"<p>{key(4)}</p>", alice, inline_selection="OPENAI_API_KEY")
    site.add_attachment(page, "prod.env", f"OPENAI_API_KEY={key(5)}\n".encode(), alice)
    site.add_attachment(
        page, "diagram.png", b"\x89PNG\r\n" + key(6).encode(), alice, media_type="image/png"
    )

    source = cloud.source()
    found = found_keys(read_all(source))

    assert set(found) == {key(1), key(2), key(3), key(4), key(5)}
    kinds = {k: found[k][0].extra["content_type"] for k in found}
    assert kinds == {
        key(1): "page",
        key(2): "blogpost",
        key(3): "comment",
        key(4): "comment",
        key(5): "attachment",
    }
    assert found[key(4)][0].extra["comment_location"] == "inline"
    assert found[key(3)][0].title == "Comment on Deploy runbook"
    assert found[key(5)][0].title == "prod.env (attached to Deploy runbook)"
    for documents in found.values():
        document = documents[0]
        assert document.source == "confluence"
        assert document.unit == "ENG" and document.unit_name == "Engineering"
        assert document.author == alice.account_id
        assert document.author_email == "alice@example.com"
        assert document.permalink and document.permalink.startswith(cloud.standin.url + "/")
    assert [s.reason for s in source.skipped] == ["not text (image/png)"]
    downloads = cloud.standin.calls_to(r"/download")
    assert [c.path for c in downloads] == [
        f"/rest/api/content/{page.id}/child/attachment/{_env_id(site)}/download"
    ]


def _env_id(site) -> str:  # type: ignore[no-untyped-def]
    return next(c.id for c in site.contents.values() if c.title == "prod.env")


def test_a_key_split_by_markup_is_found_whole(cloud: Cloud) -> None:
    secret = key(7)
    body = (
        f"<p>token: <span>{secret[:14]}</span><strong>{secret[14:40]}</strong>"
        f"<span style='color:red'>{secret[40:]}</span></p>"
    )
    cloud.site.add_page(cloud.site.add_space("OPS"), "Split", body, cloud.admin)
    assert set(found_keys(read_all(cloud.source()))) == {secret}


def test_a_key_in_a_code_macro_and_a_table_is_found(cloud: Cloud) -> None:
    body = (
        '<ac:structured-macro ac:name="code"><ac:parameter ac:name="language">bash</ac:parameter>'
        f"<ac:plain-text-body><![CDATA[export A=1\nexport OPENAI_API_KEY={key(8)}]]>"
        "</ac:plain-text-body></ac:structured-macro>"
        f"<table><tbody><tr><th>service</th><th>key</th></tr><tr><td>bot</td><td>{key(9)}</td></tr>"
        "</tbody></table>"
    )
    cloud.site.add_page(cloud.site.add_space("OPS"), "Keys", body, cloud.admin)
    assert set(found_keys(read_all(cloud.source()))) == {key(8), key(9)}


def test_exposure_anonymous_personal_and_restricted(cloud: Cloud) -> None:
    site = cloud.site
    bob = site.add_user("Bob Brown", "bob@example.com")
    public = site.add_space("PUB", "Public docs", anonymous=True)
    team = site.add_space("TEAM", "Team")
    personal = site.add_space("", personal_of=bob)
    site.add_page(public, "Open", f"<p>{key(10)}</p>", bob)
    site.add_page(team, "Normal", f"<p>{key(11)}</p>", bob)
    locked = site.add_page(
        team, "Locked", f"<p>{key(12)}</p>", bob, restricted_to=(bob, cloud.admin)
    )
    site.add_comment(locked, f"<p>{key(24)}</p>", bob)
    site.add_page(personal, "Scratch", f"<p>{key(13)}</p>", bob)

    found = {k: docs[0] for k, docs in found_keys(read_all(cloud.source())).items()}

    assert found[key(10)].exposure.is_anonymous and found[key(10)].exposure.is_public
    assert not found[key(11)].exposure.is_anonymous and found[key(11)].exposure.is_public
    for locked_key in (key(12), key(24)):  # the page, and a comment on it
        assert found[locked_key].extra["restricted"] == "true"
        assert not found[locked_key].exposure.is_public
    assert found[key(13)].extra["space_type"] == "personal"
    assert found[key(13)].unit == "~" + bob.account_id
    assert not found[key(13)].exposure.is_public


def test_hidden_email_is_looked_up_and_missing_when_the_profile_hides_it(cloud: Cloud) -> None:
    site = cloud.site
    shy = site.add_user("Shy Person", "shy@example.com", email_visible=False)
    space = site.add_space("ENG")
    site.add_page(space, "A", f"<p>{key(14)}</p>", shy)
    document = found_keys(read_all(cloud.source()))[key(14)][0]
    assert document.author == shy.account_id
    assert document.author_email is None  # the notifier falls back to the security channel


def test_configured_spaces_only(cloud: Cloud) -> None:
    site = cloud.site
    site.add_page(site.add_space("ENG"), "A", f"<p>{key(15)}</p>", cloud.admin)
    site.add_page(site.add_space("HR"), "B", f"<p>{key(16)}</p>", cloud.admin)
    source = cloud.source(cloud.config(spaces=("HR",)))
    assert [u.id for u in source.units()] == ["HR"]
    assert set(found_keys(read_all(source))) == {key(16)}


def test_many_results_are_paged_through_the_wiki_context_path(cloud: Cloud) -> None:
    space = cloud.site.add_space("BIG")
    for n in range(23):
        cloud.site.add_page(space, f"Page {n}", f"<p>{key(100 + n)}</p>", cloud.admin)
    source = cloud.source(page_size=5)
    assert set(found_keys(read_all(source))) == {key(100 + n) for n in range(23)}
    searches = cloud.standin.calls_to(r"^/rest/api/search$")
    assert len(searches) == 5
    assert all("cursor" in call.params for call in searches[1:])  # Cloud pages by cursor


def test_data_center_with_a_personal_access_token(data_center: Cloud) -> None:
    site = data_center.site
    carol = site.add_user("Carol Chen", "carol@example.com")
    space = site.add_space("DC", "Data Center space")
    page = site.add_page(space, "Setup", f"<p>{key(17)}</p>", carol)
    site.add_comment(page, f"<p>{key(18)}</p>", carol)
    site.add_attachment(page, "settings.json", f'{{"key": "{key(19)}"}}'.encode(), carol)
    source = data_center.source(
        data_center.config(user="", token="", pat="stand-in-personal-access-token"), page_size=1
    )

    found = found_keys(read_all(source))

    assert set(found) == {key(17), key(18), key(19)}
    assert data_center.standin.calls_to(r"^/download/attachments/")  # Data Center's download link
    document = found[key(17)][0]
    assert document.author == carol.username
    assert document.author_email == "carol@example.com"  # from /rest/api/user?username=
    assert {
        call.auth for call in data_center.standin.calls if call.path != "/rest/api/space/DC"
    } == {"bearer"}
    assert any(
        "start" in call.params for call in data_center.standin.calls_to(r"^/rest/api/search$")
    )


def test_an_edit_during_an_offset_paged_backfill_skips_nothing(data_center: Cloud) -> None:
    """Data Center pages search results by offset; an edit moves a page to the end of the
    lastmodified order and shifts the rest, so the next page overlaps the previous one."""
    site = data_center.site
    space = site.add_space("DC")
    pages = [
        site.add_page(space, f"P{n}", f"<p>{key(200 + n)}</p>", data_center.admin)
        for n in range(12)
    ]
    edited: list[bool] = []

    def edit_once(path: str, params: dict[str, str]) -> None:
        if path == "/rest/api/search" and params.get("start", "0") != "0" and not edited:
            edited.append(True)
            site.edit(pages[0], f"<p>{key(200)} edited</p>", data_center.admin)

    data_center.standin.before_request = edit_once
    config = data_center.config(user="", token="", pat="stand-in-personal-access-token")

    found = found_keys(read_all(data_center.source(config, page_size=5)))

    assert edited
    assert set(found) == {key(200 + n) for n in range(12)}
