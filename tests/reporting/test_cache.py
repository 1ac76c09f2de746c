"""The dashboard's figures cache (reporting/cache.py): a hit reads no rollup row, and every
change the figures depend on - a rebuild, an intraday refresh, a target, a partner's name - is
seen by the next read, never an old figure. Real Redis, real PostgreSQL."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any
from unittest import mock

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.utils.translation import override

from enrollment.models import Partner, Region
from reporting import cache, selectors, warming
from reporting.models import Target
from reporting.rollups import rebuild_rollups
from reporting.rollups.refresh import refresh_day
from reporting.selectors import Filters
from reporting.targets import save_target
from tests.reporting.conftest import months_to_activate

# Data written for "today": at the two clocks (23:30 UTC = 06:30 WIB, and 00:30 WIB), when the
# UTC date is the day before Jakarta's.
pytestmark = pytest.mark.two_clocks

ROLLUP_TABLES = ("reporting_provincerollup", "reporting_dailyrollup", "reporting_demographic")


def rollup_reads(queries: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in queries.captured_queries if any(t in q["sql"] for t in ROLLUP_TABLES)]


def today_filters(**kw: Any) -> Filters:
    today = timezone.localdate()
    return Filters(year=today.year, as_of=today, **kw)


@pytest.fixture
def built(participant_on: Any, pay_on: Any) -> dict[str, Any]:
    today = timezone.localdate()
    start = max(date(today.year, 1, 1), today - timedelta(days=10))
    a = participant_on(start)
    participant_on(start)
    pay_on(a, today, months=months_to_activate(a, today))
    save_target(year=today.year, active_target=1000)
    rebuild_rollups(start=date(today.year, 1, 1), end=today)
    return {"start": start, "a": a}


def test_a_second_read_takes_the_figures_from_the_cache(built: Any) -> None:
    f = today_filters()
    first = selectors.page_figures(f)
    with CaptureQueriesContext(connection) as queries:
        again = selectors.page_figures(f)
    assert rollup_reads(queries) == []
    assert again[0] == first[0] and again[1] == first[1]
    assert again[0].registered == 2 and again[0].active == 1


def test_a_rebuild_is_seen_by_the_next_read(built: Any, participant_on: Any, pay_on: Any) -> None:
    f = today_filters()
    assert selectors.progress(f).registered == 2
    assert selectors.page_figures(f)[0].active == 1
    b = participant_on(built["start"])
    pay_on(b, timezone.localdate(), months=months_to_activate(b, timezone.localdate()))
    rebuild_rollups(start=date(f.year, 1, 1), end=f.as_of)
    assert selectors.progress(f).registered == 3
    page, tables = selectors.page_figures(f)
    assert (page.registered, page.active) == (3, 2)
    assert sum(r["registered"] for r in tables["region"]) == 3


def test_an_intraday_refresh_is_seen_by_the_next_read(
    built: Any, participant_on: Any, pay_on: Any
) -> None:
    f = today_filters()
    before = selectors.progress(f)
    c = participant_on(built["start"])
    pay_on(c, f.as_of, months=months_to_activate(c, f.as_of))
    assert refresh_day(f.as_of) == 1
    after = selectors.progress(f)
    assert (after.registered, after.active) == (before.registered + 1, before.active + 1)
    assert after.payments == before.payments + 1


def test_a_target_change_is_seen_without_a_rebuild(built: Any) -> None:
    f = today_filters()
    assert selectors.progress(f).target == 1000
    save_target(year=f.year, active_target=2000)  # the form's and the admin's path
    assert selectors.progress(f).target == 2000
    Target.objects.filter(year=f.year).get().save()  # an ORM save: the signal's token
    target = Target.objects.get(year=f.year)
    target.active_target = 3000
    target.save()
    assert selectors.progress(f).target == 3000


def test_a_renamed_partner_is_seen_in_the_breakdown(built: Any, participant_on: Any) -> None:
    partner = Partner.objects.create(code="GRB", name="Old name")
    participant_on(built["start"], partner=partner)
    rebuild_rollups(start=date(timezone.localdate().year, 1, 1), end=timezone.localdate())
    f = today_filters()
    labels = {r["label"] for r in selectors.breakdown(f, "partner")}
    assert "Old name" in labels
    partner.name = "New name"
    partner.save()
    labels = {r["label"] for r in selectors.breakdown(f, "partner")}
    assert "New name" in labels and "Old name" not in labels


def test_labels_are_cached_per_language(built: Any) -> None:
    f = today_filters()
    with override("id"):
        id_labels = [r["label"] for r in selectors.breakdown(f, "sex")]
    with override("en"):
        en_labels = [r["label"] for r in selectors.breakdown(f, "sex")]
    assert id_labels != en_labels  # "Laki-laki" / "Male"


def test_warm_fills_the_national_and_every_province_page(built: Any) -> None:
    cache.bump()
    provinces = Region.objects.filter(level=1).count()
    assert provinces == 38
    # progress + the page in each language, for the country and each province
    assert warming.warm() == (1 + provinces) * (1 + len(settings.LANGUAGES))
    for province in (None, "32", "35"):
        f = today_filters(province=province)
        with override("id"), CaptureQueriesContext(connection) as queries:
            selectors.page_figures(f)
            selectors.progress(f)
        assert rollup_reads(queries) == [], province


def test_no_cache_when_switched_off(built: Any, settings: Any) -> None:
    settings.REPORTING_CACHE_SECONDS = 0
    assert warming.warm() == 0
    f = today_filters()
    selectors.progress(f)
    with CaptureQueriesContext(connection) as queries:
        selectors.progress(f)
    assert rollup_reads(queries) != []


def test_the_version_goes_up_with_each_write_in_its_transaction(
    built: Any, participant_on: Any, pay_on: Any
) -> None:
    from reporting.models import FiguresVersion
    from reporting.targets import on_reference_data_loading

    def version() -> int:
        return FiguresVersion.objects.get(pk=1).number

    before = version()
    on_reference_data_loading()  # regions and occupations loaded by COPY: no signal of theirs
    assert version() == before + 1
    assert refresh_day(timezone.localdate()) == 0  # nothing new: nothing written
    assert version() == before + 1
    pay_on(participant_on(built["start"]), timezone.localdate())
    assert refresh_day(timezone.localdate()) == 1
    assert version() == before + 2
    FiguresVersion.objects.all().delete()  # a flushed table: the next write puts the row back
    Partner.objects.create(code="X1", name="X")
    assert version() == 1


def test_the_filters_of_a_cached_value_are_the_readers(built: Any) -> None:
    """`as_of` is named in the filters unless it is the default (today): a value cached today
    and read tomorrow for the same day names it."""
    f = today_filters()
    assert "as_of" not in selectors.progress(f).filters
    assert "as_of" not in selectors.page_figures(f)[0].filters
    tomorrow = f.as_of + timedelta(days=1)
    with (
        mock.patch("reporting.selectors.timezone.localdate", return_value=tomorrow),
        CaptureQueriesContext(connection) as queries,
    ):
        p = selectors.progress(f)
        page, _tables = selectors.page_figures(f)
    assert rollup_reads(queries) == []  # the same key: a hit
    assert p.filters["as_of"] == f.as_of.isoformat()
    assert page.filters["as_of"] == f.as_of.isoformat()
