"""Personas and lapse risk on the demo library: stable under the seed, small personas merged, AUC on held-out
months, segment fields, erasure, the setting that turns lapse risk off, the page."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest
from sqlalchemy import func, select

from crmcore.admin import settings
from crmcore.campaigns.rules.compiler import compile_rules
from crmcore.campaigns.rules.language import validate
from crmcore.demo.library import generate
from crmcore.insights import features, lapse, personas, refresh, reports
from crmcore.models import Patron, PatronInsight, Persona
from crmcore.privacy import rights
from tests.test_plain_words import snake_words


@pytest.fixture
def library(db, staff):
    generate(db, patrons=1500, seed=7)
    return db


def test_personas_are_stable_under_the_same_seed(library):
    with library.read() as s:
        f = features.compute(s, cutoff=features.last_complete_month(date.today()))
    a, b = personas.cluster(f, small_k=5), personas.cluster(f, small_k=5)
    assert a.names == b.names and np.array_equal(a.labels, b.labels) and a.k_tried == b.k_tried
    assert min(a.k_tried) == 3 and a.k in a.k_tried and sum(a.sizes) == len(f.patron_ids)
    assert all(size >= 5 for size in a.sizes)


def test_a_persona_smaller_than_the_small_cell_k_is_merged_into_the_nearest():
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [1.0, 0.0]])
    labels = np.array([0] * 10 + [1] * 10 + [2] * 3)
    merged, alive = personas.merge_small(labels, centres, small_k=5)
    assert alive == [0, 1] and (merged[-3:] == 0).all()
    big, _ = personas.merge_small(labels, centres, small_k=3)
    assert np.array_equal(big, labels)


def test_persona_names_are_plain_words_from_the_centre():
    centre = {f: 0.0 for f in features.FEATURES} | {"share_digital_loan": 0.8, "share_checkout": 0.2, "active_months": 11, "age_25-44": 0.7, "tenure_years": 4}
    assert personas.describe(centre) == "Mostly digital loan, nearly every month, aged 25-44"


def test_lapse_risk_beats_chance_on_later_held_out_months(library):
    with library.read() as s:
        model = lapse.fit(s, today=date.today())
    assert model.auc > 0.6
    assert max(model.trained_on) < model.validated_on  # trained on past months, validated on later ones
    assert set(lapse.coefficients(model)) == set(features.FEATURES)


def test_the_weekly_job_stores_personas_and_risks_and_segments_use_them(library, staff):
    assert "personas" in refresh.recompute(library)
    with library.read() as s:
        stored = s.scalar(select(func.count()).select_from(PatronInsight))
        name = s.scalars(select(Persona.name).order_by(Persona.size.desc())).first()
        size = s.scalar(select(Persona.size).where(Persona.name == name))
        rules = {"all": [{"field": "persona", "op": "in", "value": [name]}]}
        validate(rules)
        assert s.scalar(select(func.count()).select_from(Patron).where(compile_rules(rules, today=date.today()))) == size
        risky = {"all": [{"field": "lapse_risk", "op": ">=", "value": 50}]}
        expected = s.scalar(select(func.count()).select_from(PatronInsight).where(PatronInsight.lapse_risk >= 0.5))
        assert 0 < s.scalar(select(func.count()).select_from(Patron).where(compile_rules(risky, today=date.today()))) == expected
        overview = reports.lapse_risk(s, actor=staff["viewer"])
        places = reports.persona_places(s, actor=staff["viewer"], by="branch")
    assert stored > 0 and overview["run"]["auc"] > 0.6
    assert places.drop(columns="persona").map(lambda v: isinstance(v, str) or v == 0 or v >= 5).all().all()  # small cells suppressed
    with pytest.raises(ValueError, match="Lapse risk"):
        validate({"all": [{"field": "lapse_risk", "op": ">=", "value": 150}]})


def test_a_patrons_persona_is_erased_with_them(library, staff):
    refresh.recompute(library)
    with library.write() as s:
        patron_id = s.scalars(select(PatronInsight.patron_id)).first()
        assert rights.access_export(s, actor=staff["admin"], patron_id=patron_id)["persona_and_lapse_risk"]
        rights.erase(s, actor=staff["admin"], patron_id=patron_id)
    with library.read() as s:
        assert s.get(PatronInsight, patron_id) is None


def test_lapse_risk_turned_off_removes_the_scores(library, staff):
    with library.write() as s:
        settings.put(s, actor=staff["admin"], key="lapse_risk_enabled", value=False)
    refresh.recompute(library)
    with library.read() as s:
        assert s.scalar(select(func.count()).select_from(PatronInsight).where(PatronInsight.lapse_risk.is_not(None))) == 0
        assert s.scalar(select(func.count()).select_from(PatronInsight).where(PatronInsight.persona_id.is_not(None))) > 0
        assert reports.lapse_risk(s, actor=staff["viewer"])["enabled"] is False


def test_the_personas_page_shows_personas_and_the_auc(app, db, staff):
    generate(db, patrons=600, seed=7)
    refresh.recompute(db)
    at = app(role="viewer", page="pages/personas.py").run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any(m.label == "AUC on held-out months" for m in at.metric)
    assert snake_words(at) == []
    board = app(role="viewer", page="pages/dashboard.py").run()
    assert not board.exception and any(h.value == "Personas" for h in board.subheader)
    (places,) = [d.value for d in board.dataframe if "persona" in d.value.columns]
    assert set(places["persona"]) == set(reports_names(db))


def reports_names(db) -> list[str]:
    with db.read() as s:
        return list(s.scalars(select(Persona.name)))


def test_one_read_of_many_months_gives_the_features_of_separate_reads(library):
    """Lapse risk reads the rollups once for all its months: each cutoff's features equal a read of its 12 months alone."""
    last = features.last_complete_month(date.today())
    with library.read() as s:
        history = features.read(s, first=date(last.year - 2, last.month, 1), last=last)
        for cutoff in (date(last.year - 1, last.month, 1), last):
            alone, together = features.compute(s, cutoff=cutoff), history.at(cutoff)
            assert len(alone.patron_ids) > 500
            assert np.array_equal(alone.patron_ids, together.patron_ids) and np.array_equal(alone.values, together.values)


def test_features_and_scores_read_in_chunks_equal_those_read_at_once(library, monkeypatch):
    with library.read() as s:
        model = lapse.fit(s, today=date.today())
        whole = features.compute(s, cutoff=features.last_complete_month(date.today()))
        monkeypatch.setattr(features, "CHUNK", 97)  # many small chunks of rollup and patron rows
        chunked = features.compute(s, cutoff=features.last_complete_month(date.today()))
    assert np.array_equal(whole.patron_ids, chunked.patron_ids) and np.array_equal(whole.values, chunked.values)
    at_once = model.pipeline.predict_proba(whole.values)[:, 1]
    monkeypatch.setattr(lapse, "SCORE_CHUNK", 100)
    assert np.array_equal(lapse.score(model, chunked.values), at_once)


def test_lapse_risk_trained_on_a_sample_of_patrons_still_beats_chance_and_is_deterministic(library, monkeypatch):
    with library.read() as s:
        everyone = lapse.fit(s, today=date.today())
        monkeypatch.setattr(lapse, "TRAIN_PATRONS", 500)  # 1,500 patrons: every 3rd is read
        a, b = lapse.fit(s, today=date.today()), lapse.fit(s, today=date.today())
    assert everyone.sample_every == 1 and a.sample_every == 3
    assert a.valid_rows < everyone.valid_rows / 2 and a.auc > 0.6
    assert a.auc == b.auc and lapse.coefficients(a) == lapse.coefficients(b)


def test_an_erased_patrons_rollups_are_not_read(library, staff):
    cutoff = features.last_complete_month(date.today())
    with library.read() as s:
        patron_id = int(features.compute(s, cutoff=cutoff).patron_ids[0])
    with library.write() as s:
        rights.erase(s, actor=staff["admin"], patron_id=patron_id)
    with library.read() as s:
        assert patron_id not in features.compute(s, cutoff=cutoff).patron_ids


def test_the_command_line_recomputes_personas_and_risk(library, monkeypatch, capsys):
    from crmcore import cli

    monkeypatch.setenv("DATABASE_URL", library.engine.url.render_as_string(hide_password=False))
    assert cli.main(["insights", "refresh"]) == 0
    out = capsys.readouterr().out
    with library.read() as s:
        stored = s.scalar(select(func.count()).select_from(PatronInsight).where(PatronInsight.lapse_risk.is_not(None)))
        run = reports.last_run(s, "lapse_risk")
    assert stored > 500 and f"{stored:,} patrons" in out and f"AUC {run['auc']}" in out and "personas" in out
