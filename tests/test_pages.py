"""Every page renders without an error for every role that may see it; the sign-in gate works."""

import pytest

import ui
from crmcore.admin import sessions
from crmcore.admin.permissions import Role, allowed
from tests.conftest import PASSWORD

PAGE_ROLES = [(spec.path, role.value) for spec in ui.PAGES for role in Role if spec.perm is None or allowed(role, spec.perm)]


@pytest.mark.parametrize("page,role", PAGE_ROLES)
def test_page_renders_for_every_role_allowed_to_see_it(app, page, role):
    at = app(role=role, page=page).run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def test_a_visitor_sees_only_the_sign_in_form(app):
    at = app().run()
    assert not at.exception
    assert [b.label for b in at.button] == ["Sign in"]


def test_sign_in_with_a_wrong_password_says_so_without_naming_the_account(app):
    at = app().run()
    at.text_input[0].input("manager")
    at.text_input[1].input("not the password")
    at.button[0].click().run()
    assert len(at.error) == 1 and "wrong username or password" in at.error[0].value
    assert ui.SESSION not in at.session_state


def test_sign_in_then_sign_out(app, staff, db):
    at = app(page="pages/campaigns.py").run()  # a deep link: the page's own address shows the form…
    assert not at.exception and [b.label for b in at.button] == ["Sign in"]
    at.text_input[0].input("manager")
    at.text_input[1].input(PASSWORD)
    at.button[0].click().run()
    assert not at.exception
    session_id = at.session_state[ui.SESSION]
    assert sessions.current(db, session_id=session_id).id == staff["manager"].id
    # …and the browser is sent once through /session/<ticket> (which sets its cookie) back to that page.
    redirect = at.get("html")[-1].proto.body
    assert "window.location.replace" in redirect and '/session/' in redirect and "next=%2Fcampaigns" in redirect
    at.run()
    at.sidebar.button[0].click().run()
    assert ui.SESSION not in at.session_state
    assert [b.label for b in at.button] == ["Sign in"]
    assert sessions.current(db, session_id=session_id) is None  # ended for every tab of that browser
