"""The manager dashboard's figures: definitions (figures; programs for the imported programs; lifetime for the lifetime totals), summary
tables (summaries), and the one call that computes everything the page shows, suppressed (dashboard)."""

from crmcore.kpis import figures, lifetime, programs
from crmcore.kpis.dashboard import Card, Chart, Dashboard, FilterOptions, dashboard, dashboard_data, filter_options
from crmcore.kpis.figures import Filters
from crmcore.kpis.summaries import Summaries, compute_summaries, refresh_summaries

# Every figure's definition, in the order the README lists them (tests/test_kpis.py checks the README).
DEFINITIONS = (
    figures.registered_patrons,
    figures.active_patrons,
    figures.new_registrations,
    figures.lapsed_patrons,
    figures.at_risk_patrons,
    figures.activity_per_capita,
    figures.program_attendance,
    figures.outreach_interactions,
    figures.activity_by_month,
    figures.registrations_by_month,
    figures.penetration_by_zone,
    figures.lifecycle_counts,
    figures.lifecycle_flows,
    figures.cohort_retention,
    figures.branch_comparison,
    figures.age_band_by_branch,
    figures.outreach_by_month,
    programs.program_totals,
    programs.programs_by_month,
    programs.programs_by_branch,
    programs.programs_by_label,
    programs.programs_by_zone,
    lifetime.lifetime_bands,
)

__all__ = ["Card", "Chart", "DEFINITIONS", "Dashboard", "FilterOptions", "Filters", "Summaries", "compute_summaries", "dashboard", "dashboard_data", "figures", "filter_options", "refresh_summaries"]
