"""Every page renders without an error for every role that may see it; the sign-in gate works."""

import pytest

import ui
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
    assert "user_id" not in at.session_state


def test_sign_in_then_sign_out(app, staff):
    at = app().run()
    at.text_input[0].input("manager")
    at.text_input[1].input(PASSWORD)
    at.button[0].click().run()
    assert at.session_state["user_id"] == staff["manager"].id
    assert not at.exception
    at.sidebar.button[0].click().run()
    assert "user_id" not in at.session_state
    assert [b.label for b in at.button] == ["Sign in"]
