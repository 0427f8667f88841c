"""Merge templates within limits: every kind of template error gives a clear "Part, line N: …" message,
heavy templates are stopped quickly, and checking a template never holds the write lock."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest
from sqlalchemy.engine import make_url

from crmcore.campaigns import drafts, templates
from tests.campaign_fixtures import _isolated_mail_config, add_segment  # noqa: F401

# body → what the message must say (each case from the issue, and one per error class).
ERRORS = {
    "Hello\n{% include 'footer.html' %}": "Body, line 2: {% include %} is not available",
    "{% import 'macros' as m %}": "Body, line 1: {% import %} is not available",
    "{% extends 'base' %}": "Body, line 1: {% extends %} is not available",
    "{% for i in range(10**6) %}x{% endfor %}": "Body, line 1: a loop over 1,000,000 items; at most 1,000",
    "{% macro again(n) %}{{ again(n + 1) }}{% endmacro %}\n{{ again(1) }}": "a macro calls itself (or others) more than 20 deep",
    "{% for i in range(1000) %}{% for j in range(1000) %}x{% endfor %}{% endfor %}": "the loops go round more than 10,000 times in all",
    "{% for i in range(1000) %}{% for j in range(1000) %}{% endfor %}{% endfor %}": "the loops go round more than 10,000 times in all",
    "{{ 'x' * 10**9 }}": "Body, line 1: the template repeats a text or list to more than 200,000 characters",
    "{{ [1] * 10**9 }}": "the template repeats a text or list",
    "{{ 10 ** 100000 }}": "is too large a number",
    "{% for i in range(300) %}{{ 'y' * 1000 }}{% endfor %}": "Body: the message would be more than 200,000 characters long",
    "{% for i in range(1000) %}{% for j in range(10) %}{{ ('ab' * 50000)|upper|length }}{% endfor %}{% endfor %}": "takes too long to fill in (more than 0.2 s",
    "Dear {{ first_name }},\n\n{{ 10 / 0 }}": "Body, line 3: division by zero",
    "Hi\n{{ first_name + 1 }}": "Body, line 2: the template failed with this patron's details (TypeError",
    "Hi\n\n{{ frist_name }}": "Body, line 3: 'frist_name' is undefined. The merge fields are: first_name,",
    "Hi\n{% if first_name %}": "Body, line 2:",
    "{{ first_name|safe }}": "Body, line 1: No filter named 'safe'.",
    "{{ '%1000000000s' % first_name }}": "formatting a string with % is not available",
    "{{ '{:>1000000000}'.format(first_name) }}": "the string method format() is not available",
    "{{ first_name.ljust(10**9) }}": "the string method ljust() is not available",
    "{{ ('x' * 100000)|replace('x', 'x' * 100000) }}": "the replace filter would build more than 200,000 characters",
    "{{ range(1000)|join('x' * 100000) }}": "the join filter would build more than 200,000 characters",
    "{{ first_name|truncate(10**9) }}": "a number given to a filter or method is 1,000,000,000",
    "{% macro d(s, n) %}{% if n %}{{ d(s ~ s, n - 1) }}{% else %}{{ s|length }}{% endif %}{% endmacro %}{{ d('x', 19) }}":
        "the template builds a value of more than 200,000",
    "{% set ns = namespace(s='x') %}": "'namespace' is undefined",
    "{% set s = 'x' * 150 %}{% for a in s %}{% for b in s %}{% for c in s %}{% endfor %}{% endfor %}{% endfor %}":
        "the loops go round more than 10,000 times in all",
    "{% set s = 'x' * 200000 %}{% for a in s %}{% for b in s %}{% endfor %}{% endfor %}": "the loops go round more than 10,000",
    "{% set s = 'ab' * 1000 %}{{ s.replace('a', s) }}": "the string method replace() is not available",
    "{% set s = 'x' * 200000 %}{{ [s] * 200000 }}": "the template repeats a text or list to more than 200,000",
    "{% set s = 'x' * 100 %}{{ 'a' ~ ([s] * 3000) }}": "the template repeats a text or list to more than 200,000",
    "{{ [first_name, first_name] }}": "a whole list cannot be put in a message",
    "{{ range(5)|string }}": "No filter named 'string'",
    "{{ lipsum() }}": "'lipsum' is undefined",
    "{{ first_name.__class__.__mro__ }}": "Body, line 1: the template tries something templates may not do",
}


@pytest.mark.parametrize("body,message", list(ERRORS.items()), ids=[f"case{i}" for i in range(len(ERRORS))])
def test_every_template_error_gives_a_clear_message_quickly(body, message):
    started = time.monotonic()
    with pytest.raises(ValueError) as caught:
        templates.check(subject="Hello {{ first_name }}", body=body)
    assert message in str(caught.value)
    assert str(caught.value).endswith(".") and not str(caught.value).endswith("..")
    assert time.monotonic() - started < 2  # stopped by the limits, not after doing the work


def test_the_subject_is_named_and_sizes_are_bounded():
    with pytest.raises(ValueError, match=r"^Subject, line 1: a loop over 5,000 items"):
        templates.check(subject="{% for i in range(5000) %}x{% endfor %}", body="Hello")
    with pytest.raises(ValueError, match="Subject: 301 characters; at most 300"):
        templates.check(subject="x" * 301, body="Hello")
    with pytest.raises(ValueError, match="Body: 20,001 characters; at most 20,000"):
        templates.check(subject="Hi", body="x" * 20_001)


def test_a_template_failing_only_for_some_names_passes_the_check_and_fails_for_those():
    body = "Dear {{ first_name }},\n\n{{ 10 / (first_name|length - 4) }}"
    with pytest.raises(ValueError, match="division by zero"):
        templates.check(subject="Hi", body=body)  # the sample patron, Alex, has four letters too
    body = body.replace("- 4", "- 3")
    templates.check(subject="Hi", body=body)  # passes with the sample patron...
    context = dict(templates.SAMPLE_CONTEXT)
    with pytest.raises(ValueError, match="Body, line 3: division by zero"):
        templates.render(subject="Hi", body=body, context={**context, "first_name": "Bob"})  # ...not with Bob
    assert "-10.0" in templates.render(subject="Hi", body=body, context={**context, "first_name": "Al"}).text


def test_ordinary_templates_still_work_with_loops_filters_and_escaping():
    body = "Dear {{ first_name|title }},\n\n{% for i in range(3) %}{{ i }} {% endfor %}at {{ branch|upper }}.\n{{ 'a-b'|replace('-', '+') }}"
    shown = templates.render(subject="Hi {{ first_name }}", body=body, context={**templates.SAMPLE_CONTEXT, "first_name": "jo & co <x>"})
    assert shown.subject == "Hi jo & co <x>"
    assert "Dear Jo & Co <X>,\n\n0 1 2 at CENTRAL LIBRARY.\na+b" in shown.text
    assert "Jo &amp; Co &lt;X&gt;" in shown.html and "<X>" not in shown.html


def test_checking_a_template_never_holds_the_write_lock(db, staff):
    """While drafts with a slow-but-allowed template are checked and saved in a thread, another
    connection with a small busy timeout keeps taking the write lock: it never finds it held for long."""
    if not db.is_sqlite:
        pytest.skip("the database-wide write lock is SQLite's")
    with db.write() as s:
        seg = add_segment(s, branches=["MAIN"])
    # Slow enough that a check under the lock would be seen, well inside the time a message may take.
    slow = "Dear {{ first_name }},\n{% for i in range(60) %}{{ ('ab' * 50000)|upper|length }}{% endfor %}"
    errors: list[BaseException] = []

    def compose_drafts():
        try:
            for n in range(8):
                with db.write() as s:
                    drafts.compose(s, actor=staff["manager"], name=f"Slow {n}", segment_id=seg, topic="events", subject=f"Hi {n}", body=f"{slow}\n{n}")
        except BaseException as exc:  # noqa: BLE001 (reported by the main thread)
            errors.append(exc)

    worker = threading.Thread(target=compose_drafts)
    other = sqlite3.connect(make_url(db.url).database, timeout=0.05, isolation_level=None)
    locked, took = 0, 0
    worker.start()
    try:
        while worker.is_alive():
            try:
                other.execute("BEGIN IMMEDIATE")
                other.execute("ROLLBACK")
                took += 1
            except sqlite3.OperationalError as exc:
                assert "locked" in str(exc)
                locked += 1
            time.sleep(0.005)
    finally:
        worker.join()
        other.close()
    assert errors == []
    assert locked == 0 and took >= 1


def test_a_merge_field_is_appended_after_a_space_or_on_a_fresh_line_and_unknown_ones_refused():
    from crmcore.campaigns.templates import insert_field

    assert insert_field("See you at", "branch") == "See you at {{ branch }}"
    assert insert_field("Dear\n", "first_name") == "Dear\n{{ first_name }}"
    assert insert_field("", "library_name") == "{{ library_name }}"
    with pytest.raises(ValueError, match="no merge field 'email'"):
        insert_field("x", "email")


def test_the_preview_address_carries_the_part_unchanged_under_a_policy_forbidding_scripts_and_requests():
    import base64

    from crmcore.campaigns.templates import PREVIEW_POLICY, SAMPLE_CONTEXT, preview_address, render

    page = render(subject="Hi", body="Dear {{ first_name }}, <img src=https://evil.test/x>", context=SAMPLE_CONTEXT).html
    document = base64.b64decode(preview_address(page).split(",", 1)[1]).decode()
    assert document.replace(f'<meta http-equiv="Content-Security-Policy" content="{PREVIEW_POLICY}">', "") == page
    assert document.index("Content-Security-Policy") < document.index("<body>")
    assert "&lt;img src=https://evil.test/x&gt;" in document and "script-src" not in PREVIEW_POLICY and "default-src 'none'" in PREVIEW_POLICY


def test_compiling_a_template_is_not_counted_against_the_time_one_message_may_take(monkeypatch):
    """A worker compiles a campaign's template with its first message; on a busy machine that must not fail it."""
    from crmcore.campaigns import templates

    slow_parse = templates._TEXT.parse

    def parse(source, *args, **kwargs):
        time.sleep(1.5 * templates.SECONDS_PER_MESSAGE)
        return slow_parse(source, *args, **kwargs)

    monkeypatch.setattr(templates._TEXT, "parse", parse)
    body = f"Dear {{{{ first_name }}}}, compiled slowly ({time.monotonic_ns()})."  # a text no earlier test compiled
    assert templates.render_text(body=body, context=templates.SAMPLE_CONTEXT).startswith("Dear Alex, compiled slowly")
