"""The item-category vocabulary: pre-filled, managed by admins (audited), and what imports match against."""

import pytest
from sqlalchemy import select

from crmcore.library import categories
from crmcore.models import AuditLog, CategoryTerm
from tests.test_admin_pages import texts


def test_the_vocabulary_starts_with_material_types_and_genres(db, staff):
    with db.read() as s:
        terms = categories.list_terms(s, actor=staff["admin"])
        materials = [t.name for t in categories.list_terms(s, actor=staff["admin"], group="material")]
    assert {"Book", "DVD", "eBook"} <= set(materials)
    assert {"Mystery", "Cooking"} <= {t.name for t in terms if t.group == "genre"}
    assert materials == sorted(materials)


def test_adding_and_removing_a_term_is_audited_and_case_never_makes_a_second(db, staff):
    with db.write() as s:
        term = categories.add_term(s, actor=staff["admin"], name="  Seed   library ", group="material")
    assert term.name == "Seed library"
    with db.write() as s, pytest.raises(ValueError, match="already an item category"):
        categories.add_term(s, actor=staff["admin"], name="SEED LIBRARY", group="genre")
    for bad, message in [("", "Give the category a name"), ("x" * 81, "at most 80")]:
        with db.write() as s, pytest.raises(ValueError, match=message):
            categories.add_term(s, actor=staff["admin"], name=bad, group="genre")
    with db.write() as s, pytest.raises(ValueError, match="group is one of"):
        categories.add_term(s, actor=staff["admin"], name="Zines", group="titles")
    with db.read() as s:
        assert categories.vocabulary(s)["seed library"] == ("Seed library", "material")
    with db.write() as s:
        assert categories.remove_term(s, actor=staff["admin"], term_id=term.id) == "Seed library"
    with db.write() as s, pytest.raises(ValueError, match="not there any more"):
        categories.remove_term(s, actor=staff["admin"], term_id=term.id)
    with db.read() as s:
        assert "seed library" not in categories.vocabulary(s)
        actions = s.execute(select(AuditLog.action).where(AuditLog.entity == "category_term").order_by(AuditLog.id)).scalars().all()
    assert actions == ["category.added", "category.removed"]


def test_categories_page_lists_terms_by_group_adds_and_removes(app, db):
    at = app(role="admin", page="pages/categories.py").run()
    assert not at.exception
    assert "Material types" in " ".join(h.value for h in at.subheader)
    shown = [df.value["term"].tolist() for df in at.dataframe]
    assert "DVD" in shown[0] and "Mystery" in shown[1]

    at.text_input[0].input("Zines **bold**")
    at.selectbox[0].select("genre")
    at.button(key="FormSubmitter:category-add-Add term").click().run()
    assert not at.exception and "Zines **bold** added to genres." in texts(at)
    with db.read() as s:
        assert s.execute(select(CategoryTerm.group).where(CategoryTerm.name == "Zines **bold**")).scalar_one() == "genre"

    at.text_input[0].input("dvd")
    at.button(key="FormSubmitter:category-add-Add term").click().run()
    assert "'DVD' is already an item category" in texts(at)

    at.selectbox[1].select("Zines **bold** (genres)")
    at.button(key="FormSubmitter:category-remove-Remove term").click().run()
    assert not at.exception and "Zines **bold** removed" in texts(at)
    with db.read() as s:
        assert s.execute(select(CategoryTerm).where(CategoryTerm.name == "Zines **bold**")).first() is None


@pytest.mark.parametrize("role", ["manager", "outreach", "viewer"])
def test_only_admins_see_the_categories_page(app, role):
    at = app(role=role, page="pages/categories.py").run()
    assert "Item categories" not in [t.value for t in at.title]
    shown = {str(v) for frame in at.dataframe for v in frame.value.to_numpy().ravel()}  # whatever page they land on
    assert not shown & {"Graphic novel", "Mystery", "Large print"}
