"""Warming the dashboard's cache: the pages admins open first, computed after each rollup build or
refresh (`reporting.warm_dashboard`), so the first reader of new rollups does not wait.

Apart from reporting/cache.py, which the selectors use to cache their figures: warming calls the
selectors, so it sits above both.
"""

from __future__ import annotations

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone
from django.utils.translation import override

from enrollment.models import Region

from . import cohorts, selectors


def _cache_works() -> bool:
    probe = "reporting:warm-probe"
    cache.set(probe, 1, 30)
    return cache.get(probe) == 1


def warm(year: int | None = None) -> int:
    """Compute the dashboard page (in every language), the progress figures and the cohort
    section's figures for the whole country and for each province, for `year` (default this
    year) as of today - what admins and regional admins open first. Returns the number of
    entries computed or found (0 when there is no cache to fill: switched off, or Redis
    down)."""
    if not settings.REPORTING_CACHE_SECONDS or not _cache_works():
        return 0
    year = year or timezone.localdate().year
    as_of = selectors.default_as_of(year)
    provinces = [None, *Region.objects.filter(level=1).values_list("code", flat=True)]
    done = 0
    for province in provinces:
        f = selectors.Filters(year=year, as_of=as_of, province=province)
        selectors.progress(f)
        cohorts.cohort_figures(cohorts.CohortFilters(province=province or ""))  # with its page
        done += 1
        for language, _name in settings.LANGUAGES:
            with override(language):
                selectors.page_figures(f)
            done += 1
    return done
