"""New materials you may like: the catalogue feed, interests without titles, the {{ recommendations }} block
in both parts of a message, the patron's own controls, and the measure in the campaign results."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from crmcore import imports
from crmcore.campaigns import preference_tokens, preferences, results, sending, templates
from crmcore.models import ActivityEvent, CatalogueItem, Message, Patron, PatronInterest, utcnow
from crmcore.recommendations import block, catalogue, interests
from tests.campaign_fixtures import _isolated_mail_config, add_campaign, add_patrons, add_segment, smtp  # noqa: F401

FEED = {"columns": {"link": "Link", "title": "Title", "author": "Author", "material_type": "Format", "categories": "Subjects",
                    "branch": "Branch", "cover_url": "Cover", "added_on": "Added"}}
HEADER = "Link,Title,Author,Format,Subjects,Branch,Cover,Added\n"


def feed_file(tmp_path, rows: list[str], name: str = "feed.csv"):
    path = tmp_path / name
    path.write_text(HEADER + "".join(r + "\n" for r in rows), encoding="utf-8")
    return path


def load_feed(db, actor, tmp_path, rows, **kw):
    return imports.run_import(db, actor=actor, kind="catalogue", path=feed_file(tmp_path, rows), mapping=FEED, **kw)


def today(days: int = 0) -> str:
    return (utcnow().date() - timedelta(days=days)).isoformat()


def standard_feed(db, staff, tmp_path):
    """Two mysteries (one at MAIN, one at EAST), a cookbook at MAIN, a science title anywhere."""
    summary = load_feed(db, staff["admin"], tmp_path, [
        f"https://cat.example/m1,Dead Calm,Ann Author,Book,Mystery,MAIN,,{today(1)}",
        f"https://cat.example/m2,Cold Case,Bo Writer,Book,Mystery;Thriller,EAST,,{today(2)}",
        f"https://cat.example/c1,Soup Every Day,Chef Cee,Book,Cooking,MAIN,https://covers.example/c1.jpg,{today(3)}",
        f"https://cat.example/s1,Stars,Dee Sky,eBook,Science,,,{today(4)}",
    ])
    assert summary.new == 4 and not summary.rejected
    return summary


def borrow(session, patron_id: int, category: str, n: int = 1, days_ago: int = 10) -> None:
    session.add(ActivityEvent(patron_id=patron_id, occurred_on=utcnow().date() - timedelta(days=days_ago), kind="checkout", count=n, category=category))


# --- the feed ----------------------------------------------------------------------------------------


def test_the_feed_rejects_unknown_categories_missing_titles_and_links_that_are_not_web_addresses(db, staff, tmp_path):
    summary = load_feed(db, staff["admin"], tmp_path, [
        f"https://cat.example/1,Fine,A,Book,Mystery,MAIN,,{today()}",
        f"https://cat.example/2,Bad category,A,Book,The Hound of the Baskervilles,MAIN,,{today()}",
        f"https://cat.example/3,,A,Book,Mystery,MAIN,,{today()}",
        f"javascript:alert(1),Bad link,A,Book,Mystery,MAIN,,{today()}",
        f"ftp://cat.example/5,Bad scheme,A,Book,Mystery,MAIN,,{today()}",
        f"https://cat.example/6,Bad cover,A,Book,Mystery,MAIN,data:image/png;base64;AAAA,{today()}",
    ])
    assert summary.new == 1
    found = {(r.line, r.field) for r in summary.rejected}
    assert found == {(3, "categories"), (4, "title"), (5, "link"), (6, "link"), (7, "cover_url")}
    reasons = {r.field: r.reason for r in summary.rejected}
    assert "is not an item category" in reasons["categories"] and "http" in reasons["link"]
    with db.read() as s:
        assert [i.title for i in s.scalars(select(CatalogueItem))] == ["Fine"]


def test_a_new_feed_replaces_earlier_items_older_than_the_window_and_keeps_picks(db, staff, tmp_path):
    load_feed(db, staff["admin"], tmp_path, [
        f"https://cat.example/old,Old,A,Book,Mystery,,,{today(90)}",
        f"https://cat.example/recent,Recent,A,Book,Mystery,,,{today(5)}",
    ])
    with db.write() as s:
        recent = s.scalar(select(CatalogueItem.id).where(CatalogueItem.title == "Recent"))
        catalogue.set_picks(s, actor=staff["manager"], item_ids=[recent])
    again = load_feed(db, staff["admin"], tmp_path, [f"https://cat.example/new,New,A,Book,Mystery,,,{today()}"])
    assert again.new == 1 and any("1 items of earlier feeds" in n for n in again.notes)
    with db.read() as s:
        rows = {i.title: i.is_pick for i in s.scalars(select(CatalogueItem))}
    assert rows == {"Recent": True, "New": False}  # 90 days > the 60-day window: gone


# --- interests -----------------------------------------------------------------------------------------


def test_borrowing_counts_only_with_history_opt_in_and_stated_interests_count_for_everyone(db):
    with db.write() as s:
        opted, not_opted = add_patrons(s, 2)
        s.get(Patron, opted).history_opt_in = True
        s.get(Patron, not_opted).interests = "gardening, knitting; Mystery"
        for pid in (opted, not_opted):
            borrow(s, pid, "Cooking", 3)  # a category for a patron without opt-in should never be there: it is ignored anyway
            borrow(s, pid, "Science", 1)
        s.flush()
        top = interests.top_categories(s, [opted, not_opted])
    assert top[opted] == [("Cooking", "borrowed"), ("Science", "borrowed")]
    assert top[not_opted] == [("Gardening", "interests"), ("Mystery", "interests")]  # "knitting" is not a category


def test_items_follow_the_top_categories_nearest_branch_first_deterministically(db, staff, tmp_path):
    standard_feed(db, staff, tmp_path)
    with db.write() as s:
        (pid,) = add_patrons(s, 1, branch="MAIN")
        s.get(Patron, pid).history_opt_in = True
        borrow(s, pid, "Mystery", 5)
        borrow(s, pid, "Cooking", 2)
        s.flush()
        first = block.blocks(s, [pid])[pid]
        second = block.blocks(s, [pid])[pid]
    assert [(r.item.title, r.reason) for r in first.items] == [
        ("Dead Calm", "Because you like Mystery"),  # at the home branch
        ("Soup Every Day", "Because you like Cooking"),
        ("Cold Case", "Because you like Mystery"),  # another branch: after
    ]
    assert [r.item.id for r in second.items] == [r.item.id for r in first.items]


def test_patrons_liking_the_same_at_the_same_branch_share_one_block_worked_out_once(db, staff, tmp_path):
    standard_feed(db, staff, tmp_path)
    with db.write() as s:
        a, b = add_patrons(s, 2, branch="MAIN")
        (c,) = add_patrons(s, 1, branch="EAST", start=2)
        for pid in (a, b, c):
            s.get(Patron, pid).interests = "Mystery"
        s.flush()
        chooser = block.Chooser(s)
        first = chooser.blocks(s, [a, c])
        later = chooser.blocks(s, [b])  # the next batch of the same campaign
    assert later[b] is first[a] and first[c] is not first[a]
    assert [r.item.title for r in first[a].items] == ["Dead Calm", "Cold Case"] and [r.item.title for r in first[c].items] == ["Cold Case", "Dead Calm"]
    assert first[a].__html__() is later[b].__html__() and str(first[a]) is str(later[b])  # the list's text and HTML made once


def test_patrons_without_interests_get_the_picks_or_nothing_as_the_campaign_says(db, staff, tmp_path):
    standard_feed(db, staff, tmp_path)
    with db.write() as s:
        (pid,) = add_patrons(s, 1)
        stars = s.scalar(select(CatalogueItem.id).where(CatalogueItem.title == "Stars"))
        catalogue.set_picks(s, actor=staff["manager"], item_ids=[stars])
        s.flush()
        picks = block.blocks(s, [pid], fallback="picks")[pid]
        nothing = block.blocks(s, [pid], fallback="none")[pid]
    assert [(r.item.title, r.reason) for r in picks.items] == [("Stars", block.PICK_REASON)]
    assert not nothing and str(nothing) == "" and nothing.__html__() == ""


# --- the block in messages --------------------------------------------------------------------------------


def test_the_block_renders_escaped_as_a_list_in_html_and_plain_text():
    hostile = block.Block((block.Recommendation(block.Item(1, "<script>x</script> & Co", "O'Brien <b>", 'https://cat.example/1?a=1&b="2"', None, None, ("Mystery",), False), "Mystery"),))
    shown = templates.render(subject="Hi", body="New for you:\n\n{{ recommendations }}\n\nEnjoy!", context={**templates.SAMPLE_CONTEXT, "recommendations": hostile})
    assert "<script>" not in shown.html and "&lt;script&gt;x&lt;/script&gt; &amp; Co" in shown.html
    assert "O&#x27;Brien &lt;b&gt;" in shown.html or "O&#39;Brien &lt;b&gt;" in shown.html
    assert 'href="https://cat.example/1?a=1&amp;b=&quot;2&quot;"' in shown.html
    assert '<ul class="recommendations"' in shown.html and "<p><ul" not in shown.html and "<small>Because you like Mystery</small>" in shown.html
    assert "* <script>x</script> & Co by O'Brien <b>\n  Because you like Mystery\n  https://cat.example/1" in shown.text
    staff_markup = templates.render(subject="Hi", body='<ul class="recommendations"><li>fake</li></ul>', context=templates.SAMPLE_CONTEXT)
    assert '<ul class="recommendations"' not in staff_markup.html  # staff text is escaped: only the block is markup


def test_a_campaign_with_the_block_goes_out_over_smtp_and_clearing_interests_on_the_page_changes_the_next_message(app, db, staff, smtp, tmp_path):
    standard_feed(db, staff, tmp_path)
    with db.write() as s:
        (pid,) = add_patrons(s, 1, branch="MAIN")
        s.get(Patron, pid).interests = "Cooking"
        cid = add_campaign(s, patron_ids=[pid], body="Hello {{ first_name }},\n\n{{ recommendations }}")
    assert sending.send_pending(db) == {"sent": 1}
    first = smtp.messages[-1]
    assert "Soup Every Day" in first.get_body(("plain",)).get_content() and "Because you like Cooking" in first.get_body(("html",)).get_content()
    assert '<img src="https://covers.example/c1.jpg"' in first.get_body(("html",)).get_content()
    token = preference_tokens.make(pid)
    at = app(page="pages/preferences.py", query={"token": token}).run()
    assert not at.exception and any("What we think you like: Cooking." in m.value for m in at.markdown)
    at.button(key="pref-clear-interests").click()
    at = at.run()
    assert not at.exception and any("interests are cleared" in m.value for m in at.success)
    with db.write() as s:
        assert preferences.view(s, token=token).interests == []
        s.get(Message, s.scalar(select(Message.id).where(Message.campaign_id == cid))).status = "sent"
        cid2 = add_campaign(s, patron_ids=[pid], body="Hello {{ first_name }},\n\n{{ recommendations }}")
        from crmcore.models import Campaign

        s.get(Campaign, cid2).recommendations_fallback = "none"
    assert sending.send_pending(db) == {"sent": 1}
    second = smtp.messages[-1]
    assert "Soup Every Day" not in second.get_body(("plain",)).get_content() and "Because you like" not in second.get_body(("html",)).get_content()


def test_turning_history_off_drops_the_categories_at_once(db):
    with db.write() as s:
        (pid,) = add_patrons(s, 1)
        s.get(Patron, pid).history_opt_in = True
        borrow(s, pid, "Mystery", 4)
        s.flush()
        token = preference_tokens.make(pid)
        assert preferences.view(s, token=token).interests == [("Mystery", "borrowed")]
        preferences.stop_history(s, token=token)
    with db.read() as s:
        assert s.get(Patron, pid).history_opt_in is False
        assert s.scalar(select(func.count()).where(ActivityEvent.patron_id == pid, ActivityEvent.category.is_not(None))) == 0
        assert s.scalar(select(func.sum(ActivityEvent.count)).where(ActivityEvent.patron_id == pid)) == 4  # the counts stay
        assert preferences.view(s, token=token).interests == []


def test_topics_chosen_on_the_preference_page_come_first(db):
    with db.write() as s:
        (pid,) = add_patrons(s, 1)
        s.get(Patron, pid).interests = "Cooking"
        token = preference_tokens.make(pid)
        preferences.choose_topics(s, token=token, topics=["travel", "Poetry"])
        assert [c for c, _ in preferences.view(s, token=token).interests] == ["Poetry", "Travel", "Cooking"]
        assert s.scalar(select(func.count()).select_from(PatronInterest)) == 2


def test_results_show_borrowing_in_the_recommended_categories_for_recipients_and_holdout(db, staff):
    with db.write() as s:
        ids = add_patrons(s, 6)
        for pid in ids:
            s.get(Patron, pid).history_opt_in = True
            borrow(s, pid, "Mystery", 2, days_ago=40)  # before sending: what they like
        cid = add_campaign(s, patron_ids=ids, body="{{ recommendations }}")
        from crmcore.models import Campaign

        campaign = s.get(Campaign, cid)
        campaign.launched_at = utcnow() - timedelta(days=20)
        messages = {m.patron_id: m for m in s.scalars(select(Message).where(Message.campaign_id == cid))}
        for pid in ids[:4]:
            messages[pid].status = "sent"
        for pid in ids[4:]:
            messages[pid].status, messages[pid].is_holdout = "holdout", True
        borrow(s, ids[0], "Mystery", 1, days_ago=5)  # a recipient borrows a mystery after sending
        borrow(s, ids[1], "Cooking", 1, days_ago=5)  # another borrows, but not what they like
        borrow(s, ids[5], "Mystery", 1, days_ago=25)  # a holdout patron, before sending: not counted
    with db.read() as s:
        r = results.results(s, actor=staff["manager"], campaign_id=cid)
    assert (r["liked_recipients_n"], r["liked_recipients_borrowed"]) == (4, 1)
    assert (r["liked_holdout_n"], r["liked_holdout_borrowed"]) == (2, 0)


def test_the_new_materials_page_lists_the_feed_and_saves_the_picks(app, db, staff, tmp_path):
    standard_feed(db, staff, tmp_path)
    at = app(role="manager", page="pages/new_materials.py").run()
    assert not at.exception
    assert list(at.dataframe[0].value["title"]) == ["Dead Calm", "Cold Case", "Soup Every Day", "Stars"]
    with db.read() as s:
        stars = s.scalar(select(CatalogueItem.id).where(CatalogueItem.title == "Stars"))
    at.multiselect(key="materials-picks-choice").select(stars)
    at.button[0].click()
    at = at.run()
    assert not at.exception and any("picks are saved (1)" in m.value for m in at.success)
    with db.read() as s:
        assert [i.title for i in s.scalars(select(CatalogueItem).where(CatalogueItem.is_pick.is_(True)))] == ["Stars"]


def test_chosen_topics_are_in_the_access_export_and_go_with_erasure(db, staff):
    from crmcore.privacy import rights

    with db.write() as s:
        (pid,) = add_patrons(s, 1)
        preferences.choose_topics(s, token=preference_tokens.make(pid), topics=["Mystery"])
    with db.write() as s:
        export = rights.access_export(s, actor=staff["admin"], patron_id=pid)
        assert [r["category"] for r in export["chosen_topics"]] == ["Mystery"]
        rights.erase(s, actor=staff["admin"], patron_id=pid)
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(PatronInterest)) == 0


def test_on_the_preference_page_a_patron_chooses_topics_and_stops_the_history(app, db):
    with db.write() as s:
        (pid,) = add_patrons(s, 1)
        s.get(Patron, pid).history_opt_in = True
        borrow(s, pid, "Mystery", 2)
    token = preference_tokens.make(pid)
    at = app(page="pages/preferences.py", query={"token": token}).run()
    assert not at.exception and any("What we think you like: Mystery." in m.value for m in at.markdown)
    at.multiselect(key="pref-topics").select("Poetry")
    next(b for b in at.button if b.label == "Save my topics").click()
    at = at.run()
    assert not at.exception and any("What we think you like: Poetry, Mystery." in m.value for m in at.markdown)
    at.button(key="pref-history-off").click()
    at = at.run()
    assert not at.exception and any("What we think you like: Poetry." in m.value for m in at.markdown)
    with db.read() as s:
        assert s.get(Patron, pid).history_opt_in is False
        assert s.scalar(select(func.count()).where(ActivityEvent.patron_id == pid, ActivityEvent.category.is_not(None))) == 0


def test_a_journey_preview_shows_the_block_escaped_for_the_sample_patron(app, db, staff, tmp_path):
    from crmcore.journeys import editing

    load_feed(db, staff["admin"], tmp_path, [f"https://cat.example/n1,<b>Night</b> & Day,Ann Author,Book,Mystery,MAIN,,{today(1)}"])
    with db.write() as s:
        (pid,) = add_patrons(s, 1, branch="MAIN")
        s.get(Patron, pid).interests = "Mystery"
    step = {"kind": "send", "channel": "email", "topic": "events", "subject": "Hi", "body": "Hello {{ first_name }},\n\n{{ recommendations }}"}
    shown = editing.preview(db, actor=staff["manager"], step=step, patron_id=pid)
    assert "&lt;b&gt;Night&lt;/b&gt; &amp; Day</a> by Ann Author" in shown.html and "<b>Night" not in shown.html
    assert "<small>Because you like Mystery</small>" in shown.html
    assert "* <b>Night</b> & Day by Ann Author\n  Because you like Mystery\n  https://cat.example/n1" in shown.text

    at = app(role="manager", page="pages/journeys.py").run()
    at.text_input[0].input("Welcome")
    at.button[0].click().run()
    message = next(t for t in at.text_area if t.label == "Message")
    message.input("Hello {{ first_name }},\n\n{{ recommendations }}").run()
    next(b for b in at.button if b.label == "Preview").click().run()
    assert not at.exception, at.exception
    shown_text = "\n".join(t.value for t in at.text)  # st.text: literal, never markup
    assert "* <b>Night</b> & Day by Ann Author\n  Because you like Mystery" in shown_text


def test_the_demo_library_has_a_feed_seen_in_a_campaign_preview_and_on_the_new_materials_page(app, db, staff, demo):
    from crmcore.admin import settings
    from crmcore.campaigns import drafts, segments
    from crmcore.demo import catalogue as demo_catalogue
    from crmcore.library import categories

    with db.read() as s:
        items = list(s.scalars(select(CatalogueItem).order_by(CatalogueItem.id)))
        terms = {name for name, _group in categories.vocabulary(s).values()}
        window = int(settings.get(s, "catalogue_window_days"))
        patrons = list(s.scalars(select(Patron.id).order_by(Patron.id)))
        chosen = block.blocks(s, patrons)
    assert demo["new materials"] == len(items) == len(demo_catalogue.ITEMS) and sum(i.is_pick for i in items) == demo_catalogue.PICKS
    assert all(c in terms for i in items for c in i.categories) and all(i.material_type in terms for i in items)
    assert all(utcnow().date() - i.added_on < timedelta(days=window) for i in items) and all(i.link.startswith("https://") for i in items)
    liked = [pid for pid, b in chosen.items() if any(r.because for r in b.items)]
    assert len(liked) > len(patrons) // 10 and all(chosen.values())  # many patrons' own categories; the picks for the rest

    with db.write() as s:
        segment = segments.save(s, actor=staff["manager"], name="Demo: everyone by email", rules={"all": [{"field": "consent", "op": "granted", "channel": "email", "topic": "new_materials"}]})
        cid = drafts.compose(s, actor=staff["manager"], name="New for you", segment_id=segment.id, topic="new_materials", subject="New for you, {{ first_name }}",
                             body="Dear {{ first_name }},\n\n{{ recommendations }}").id
    with db.read() as s:
        sample = [pid for pid, _label in drafts.sample_patrons(s, actor=staff["manager"], campaign_id=cid, limit=50)]
    likes = next(pid for pid in sample if pid in liked)
    other = next(pid for pid in sample if pid not in liked)
    for pid, reason in ((likes, "Because you like"), (other, block.PICK_REASON)):
        shown = drafts.preview(db, actor=staff["manager"], campaign_id=cid, patron_id=pid)
        assert reason in shown.text and "https://catalogue.example.org/record/" in shown.text and '<ul class="recommendations"' in shown.html

    at = app(role="manager", page="pages/new_materials.py").run()
    assert not at.exception
    assert list(at.dataframe[0].value["title"]) == [i.title for i in sorted(items, key=lambda i: (i.added_on, i.id), reverse=True)]
