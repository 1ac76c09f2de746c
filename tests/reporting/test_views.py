"""Pages, exports and the progress API: scope rules and page == API figures."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from openpyxl import load_workbook

from reporting.models import TargetVersion
from reporting.rollups import rebuild_rollups
from reporting.targets import save_target
from tests.conftest import login_as, nik_for
from tests.reporting.conftest import months_to_activate

# Data written for "today": at the two clocks (23:30 UTC = 06:30 WIB, and 00:30 WIB), when the
# UTC date is the day before Jakarta's.
pytestmark = pytest.mark.two_clocks


@pytest.fixture
def two_provinces(participant_on: Any, pay_on: Any, agent: Any) -> None:
    """Jawa Barat: 2 workers (1 active); Jawa Timur: 1 active worker."""
    today = timezone.localdate()
    start = max(date(today.year, 1, 1), today - timedelta(days=20))
    a = participant_on(start, registered_by=agent.staff)
    participant_on(start)
    c = participant_on(
        start,
        nik=nik_for(date(1992, 3, 4), "F", 7, prefix="357801"),
        birth_date=date(1992, 3, 4),
        sex="F",
        village="35.78.01.1001",
    )
    pay_on(a, today, months=months_to_activate(a, today), collected_by=agent.staff)
    pay_on(c, today, months=months_to_activate(c, today))
    save_target(year=today.year, active_target=1000, breakdowns=[("province", "35", 300)])
    rebuild_rollups(start=date(today.year, 1, 1), end=today)


def client_for(user: Any) -> Client:
    c = Client()
    login_as(c, user)
    return c


def csv_rows(response: Any) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))


def test_admin_dashboard_shows_headline_and_every_table(
    two_provinces: Any, admin_user: Any
) -> None:
    r = client_for(admin_user).get("/reports/")
    assert r.status_code == 200
    html = r.content.decode()
    for testid in [
        "headline-active",
        "progress-bar",
        "table-province",
        "table-occupation",
        "table-channel",
        "table-partner",
        "table-sex",
        "table-age_band",
        "table-league",
        'id="report-data"',
        "vendor/chartjs/chart.umd.js",
    ]:
        assert testid in html
    assert r.context["progress"].active == 2 and r.context["progress"].registered == 3
    assert "<script>" not in html  # no inline script: chart data is JSON, code is static


def test_page_and_api_give_the_same_figures(two_provinces: Any, admin_user: Any) -> None:
    c = client_for(admin_user)
    year = timezone.localdate().year
    page = c.get("/reports/", {"year": year}).context["progress"].as_dict()
    api = c.get("/api/v1/reports/progress/", {"year": year}).json()
    assert api == page
    assert api["active"] == 2 and api["target"] == 1000


def test_province_filter_drills_down_to_regencies(two_provinces: Any, admin_user: Any) -> None:
    r = client_for(admin_user).get("/reports/", {"province": "32"})
    assert r.context["region_dim"] == "regency"
    assert [row["key"] for row in r.context["tables"]["region"]] == ["32.73"]
    assert r.context["progress"].registered == 2


@pytest.mark.parametrize(
    "table",
    [
        "headline",
        "series",
        "province",
        "regency",
        "occupation",
        "channel",
        "partner",
        "sex",
        "age_band",
        "payer",
        "league",
    ],
)
def test_every_table_exports_csv_and_xlsx(two_provinces: Any, admin_user: Any, table: str) -> None:
    c = client_for(admin_user)
    r = c.get(f"/reports/export/{table}.csv", {"province": "32"})
    assert r.status_code == 200 and r["Content-Type"].startswith("text/csv")
    assert len(csv_rows(r)) >= 1
    x = c.get(f"/reports/export/{table}.xlsx", {"province": "32"})
    assert x.status_code == 200
    sheet = load_workbook(io.BytesIO(x.content)).active
    assert sheet is not None and sheet.max_row == len(csv_rows(r))


def test_export_has_the_page_figures(two_provinces: Any, admin_user: Any) -> None:
    rows = csv_rows(client_for(admin_user).get("/reports/export/province.csv"))
    by_code = {row[0]: row for row in rows[1:]}
    assert by_code["35"][3] == "1" and by_code["35"][11] == "300" and by_code["35"][12] == "299"
    assert by_code["32"][2] == "2"


def test_regional_admin_sees_only_their_province(two_provinces: Any, regional_admin: Any) -> None:
    c = client_for(regional_admin)
    r = c.get("/reports/", {"province": "32"})  # asks for another province: ignored
    assert r.status_code == 200
    assert r.context["filters"].province == "35"
    assert r.context["progress"].registered == 1
    assert [row["key"] for row in r.context["tables"]["region"]] == ["35.78"]
    assert "Jawa Barat" not in r.content.decode()
    api = c.get("/api/v1/reports/progress/", {"province": "32"}).json()
    assert api["registered"] == 1 and api["filters"]["province"] == "35"
    assert api["target"] == 300
    for table in ["province", "regency", "headline", "league", "occupation"]:
        body = c.get(f"/reports/export/{table}.csv", {"province": "32"}).content.decode()
        assert "32.73" not in body and "Jawa Barat" not in body and "agent_bdg" not in body
    headline = csv_rows(c.get("/reports/export/headline.csv"))
    assert headline[2][1] == "1"  # rows: header, data day, registered, ...


def test_supervisor_and_agent_see_their_branch_league_only(
    two_provinces: Any, supervisor: Any, agent: Any, other_agent: Any
) -> None:
    for user in (supervisor, agent):
        c = client_for(user)
        r = c.get("/reports/")
        assert r.status_code == 200
        assert [row["username"] for row in r.context["league"]] == [agent.username]
        assert "progress" not in r.context
        assert c.get("/reports/export/province.csv").status_code == 403
        assert c.get("/reports/export/league.csv").status_code == 200
        assert c.get("/api/v1/reports/progress/").status_code == 403
    r = client_for(other_agent).get("/reports/")
    assert r.context["league"] == []  # Surabaya's agent registered no one


def test_page_shows_the_top_of_the_league_and_the_export_all_of_it(
    two_provinces: Any,
    admin_user: Any,
    other_agent: Any,
    participant_on: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import reporting.views

    today = timezone.localdate()
    participant_on(
        max(date(today.year, 1, 1), today - timedelta(days=3)),
        nik=nik_for(date(1990, 1, 2), "M", 31, prefix="357801"),
        birth_date=date(1990, 1, 2),
        sex="M",
        village="35.78.01.1001",
        registered_by=other_agent.staff,
    )
    rebuild_rollups(start=date(today.year, 1, 1), end=today)
    monkeypatch.setattr(reporting.views, "LEAGUE_ON_PAGE", 1)
    c = client_for(admin_user)
    r = c.get("/reports/")
    assert len(r.context["league"]) == 1 and r.context["league_total"] == 2
    assert 'data-testid="league-more"' in r.content.decode()
    exported = csv_rows(c.get("/reports/export/league.csv"))
    assert len(exported) == 1 + 2  # header + every agent
    monkeypatch.setattr(reporting.views, "LEAGUE_ON_PAGE", 50)
    r = c.get("/reports/")
    assert len(r.context["league"]) == 2 and r.context["league_total"] == 2
    assert 'data-testid="league-more"' not in r.content.decode()


def test_anonymous_is_sent_to_login_and_api_refuses(two_provinces: Any) -> None:
    c = Client()
    assert c.get("/reports/").status_code == 302
    assert c.get("/api/v1/reports/progress/").status_code == 401  # asks for a token


def test_nav_link_for_admins_and_supervisors_only(
    two_provinces: Any, admin_user: Any, supervisor: Any, agent: Any
) -> None:
    assert 'href="/reports/"' in client_for(admin_user).get("/").content.decode()
    assert 'href="/reports/"' in client_for(supervisor).get("/").content.decode()
    assert 'href="/reports/"' not in client_for(agent).get("/").content.decode()


def test_target_form_saves_a_new_version(two_provinces: Any, admin_user: Any) -> None:
    year = timezone.localdate().year
    c = client_for(admin_user)
    before = TargetVersion.objects.filter(year=year).count()
    r = c.post(
        f"/reports/targets/{year}/",
        {
            "active_target": "2000",
            "starting_point": "",
            "note": "revised",
            "breakdowns": "province,35,400\noccupation,petani,900",
            "m06": "700",
        },
    )
    assert r.status_code == 302
    version = TargetVersion.objects.filter(year=year).order_by("-version").first()
    assert version is not None and version.version == before + 1
    assert version.changed_by == admin_user and version.source == "form"
    assert version.state["active_target"] == 2000 and version.state["milestones"] == {"6": 700}
    assert len(version.state["breakdowns"]) == 2


def test_target_form_rejects_bad_quota_lines(two_provinces: Any, admin_user: Any) -> None:
    year = timezone.localdate().year
    r = client_for(admin_user).post(
        f"/reports/targets/{year}/", {"active_target": "2000", "breakdowns": "region,35,400"}
    )
    assert r.status_code == 200 and r.context["form"].errors


def test_only_admins_edit_targets(two_provinces: Any, regional_admin: Any) -> None:
    year = timezone.localdate().year
    assert client_for(regional_admin).get(f"/reports/targets/{year}/").status_code == 403


def test_admin_change_appends_a_version(two_provinces: Any, admin_user: Any) -> None:
    from reporting.models import Target

    target = Target.objects.get(year=timezone.localdate().year)
    before = TargetVersion.objects.filter(year=target.year).count()
    r = client_for(admin_user).post(
        f"/admin/reporting/target/{target.pk}/change/",
        {
            "year": target.year,
            "active_target": "5000",
            "starting_point": "",
            "note": "",
            "milestones-TOTAL_FORMS": "0",
            "milestones-INITIAL_FORMS": "0",
            "breakdowns-TOTAL_FORMS": "0",
            "breakdowns-INITIAL_FORMS": "0",
        },
    )
    assert r.status_code == 302, r.content.decode()[:2000]
    latest = TargetVersion.objects.filter(year=target.year).order_by("-version").first()
    assert latest is not None and latest.version == before + 1 and latest.source == "admin"
    assert latest.state["active_target"] == 5000 and latest.changed_by == admin_user


def test_as_of_day_in_the_url_sets_the_figures_day(two_provinces: Any, admin_user: Any) -> None:
    today = timezone.localdate()
    earlier = today - timedelta(days=1)
    if earlier.year != today.year:  # 1 January: the day before is in last year's rollups
        rebuild_rollups(start=earlier, end=earlier)
    c = client_for(admin_user)
    r = c.get("/reports/", {"as_of": earlier.isoformat()})
    assert r.context["filters"].as_of == earlier and r.context["progress"].data_day == earlier
    assert r.context["progress"].active == 0  # the two payments were made today
    api = c.get("/api/v1/reports/progress/", {"as_of": earlier.isoformat()}).json()
    assert api["active"] == 0 and api["as_of"] == earlier.isoformat()
    future = c.get("/reports/", {"as_of": (today + timedelta(days=9)).isoformat()})
    assert future.context["filters"].as_of == today


@pytest.mark.django_db
def test_progress_api_takes_admin_tokens_only(refdata: Any) -> None:
    from django.test import Client

    from enrollment.api.clients import create_api_client
    from enrollment.models import ApiClient

    admin_token = create_api_client(name="ministry", scope=ApiClient.Scope.ADMIN).token
    channel_token = create_api_client(
        name="bank", scope=ApiClient.Scope.CHANNEL, payment_channel="bank"
    ).token
    c = Client()
    ok = c.get("/api/v1/reports/progress/", HTTP_AUTHORIZATION=f"Token {admin_token}")
    assert ok.status_code == 200 and "active" in ok.content.decode()
    channel = c.get("/api/v1/reports/progress/", HTTP_AUTHORIZATION=f"Token {channel_token}")
    assert channel.status_code == 403
    anonymous = c.get("/api/v1/reports/progress/")
    assert anonymous.status_code in (401, 403)


def test_filters_with_nul_or_huge_values_are_ignored_not_500(
    two_provinces: Any, admin_user: Any
) -> None:
    c = client_for(admin_user)
    assert c.get("/reports/?province=3%002").status_code == 400  # the page names the NUL
    assert c.get("/api/v1/reports/progress/?province=3%002").status_code == 400
    for query in (
        "?occupation=" + "x" * 500,
        "?partner=99999999999999999999",
        "?year=-819&as_of=2024-13-40",
    ):
        assert c.get("/reports/" + query).status_code == 200  # the page falls back
        # the API names the parameter (tests/api/test_schema.py: what its schema refuses)
        assert c.get("/api/v1/reports/progress/" + query).status_code == 400


def test_the_dashboard_splits_participants_by_who_pays(
    two_provinces: Any, admin_user: Any, participant_on: Any
) -> None:
    """Self-paid, sponsored and budget-paid (a regency's APBD batch): the page's table, the CSV
    export and the province filter agree."""
    from contributions.models import Coverage
    from contributions.services import post_sponsor_batch
    from enrollment.models import Partner

    regency = Partner.objects.create(code="PPU", name="Pemkab PPU", kind="sponsor",
                                     payer_type="apbd")  # fmt: skip
    today = timezone.localdate()
    worker = participant_on(today.replace(day=1))
    post_sponsor_batch(sponsor=regency, reference="APBD-1", rows=[(worker.kpj_number, 1)],
                       paid_at=timezone.now(), admin_approval=True)  # fmt: skip
    assert Coverage.objects.get(pk=worker.pk).payer_type == "apbd"
    c = client_for(admin_user)
    page = c.get("/reports/").content.decode()
    assert 'data-testid="table-payer"' in page
    rows = {row[0]: row for row in csv_rows(c.get("/reports/export/payer.csv"))[1:]}
    # key, label, registered, active, grace, lapsed, active rate
    assert rows["self"][3] == "2" and rows["self"][2] == "3"  # two_provinces: 2 of 3 active
    assert rows["budget"][2:4] == ["1", "1"] and rows["budget:apbd"][3] == "1"
    assert rows["sponsored"][2] == "0"
    jatim = {row[0]: row for row in csv_rows(c.get("/reports/export/payer.csv",
                                                   {"province": "35"}))[1:]}  # fmt: skip
    assert jatim["self"][2:4] == ["1", "1"] and jatim["budget"][2] == "0"
