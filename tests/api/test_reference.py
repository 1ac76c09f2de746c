"""Regions, occupations and quotes."""

from __future__ import annotations

from typing import Any


def test_regions_by_level_and_parent(admin_api: Any) -> None:
    r = admin_api.get("/api/v1/regions/", {"level": "regency", "parent": "32"})
    assert r.status_code == 200
    codes = [x["code"] for x in r.json()["results"]]
    assert "32.73" in codes and all(c.startswith("32.") for c in codes)
    assert r.json()["results"][0]["level"] == "regency"


def test_provinces(admin_api: Any) -> None:
    r = admin_api.get("/api/v1/regions/", {"level": "province"})
    assert len(r.json()["results"]) == 38


def test_regions_bad_level_is_400(admin_api: Any) -> None:
    r = admin_api.get("/api/v1/regions/", {"level": "planet"})
    assert r.status_code == 400 and r.json()["code"] == "level_invalid"


def test_regions_bad_cursor_is_400(admin_api: Any) -> None:
    r = admin_api.get("/api/v1/regions/", {"cursor": "garbage!!"})
    assert r.status_code == 400 and r.json()["code"] == "invalid_cursor"


def test_occupations(admin_api: Any) -> None:
    r = admin_api.get("/api/v1/occupations/")
    assert r.status_code == 200
    assert any(o["code"] == "petani" for o in r.json())


def test_quote_per_programme_month_and_total(admin_api: Any) -> None:
    r = admin_api.get(
        "/api/v1/quotes/", {"income": 1_000_000, "programmes": "JKK,JKM,JHT", "months": 3}
    )
    assert r.status_code == 200, r.content
    q = r.json()
    assert q["months"] == 3 and len(q["monthly"]) == 3
    assert set(q["per_programme"]) == {"JKK", "JKM", "JHT"}
    assert q["total"] == sum(m["total"] for m in q["monthly"])
    assert q["monthly"][0]["amounts"]["JHT"] == 20_000
    assert all(isinstance(v, int) for v in q["per_programme"].values())


def test_quote_income_not_a_level_names_nearest(admin_api: Any) -> None:
    r = admin_api.get("/api/v1/quotes/", {"income": 1_100_000})
    assert r.status_code == 400
    assert r.json()["code"] == "income_not_level"
    assert r.json()["nearest"] == [1_000_000, 1_200_000]


def test_quote_months_out_of_range(admin_api: Any) -> None:
    for months in (0, 13):
        r = admin_api.get("/api/v1/quotes/", {"income": 1_000_000, "months": months})
        assert r.status_code == 400
        assert r.json()["code"] == "months_out_of_range"


def test_quote_bad_numbers_and_programmes(admin_api: Any) -> None:
    assert admin_api.get("/api/v1/quotes/", {}).json()["code"] == "income_required"
    assert admin_api.get("/api/v1/quotes/", {"income": "1e6"}).json()["code"] == "income_invalid"
    assert admin_api.get("/api/v1/quotes/", {"income": "１０００"}).json()["code"] == (
        "income_invalid"
    )
    r = admin_api.get("/api/v1/quotes/", {"income": 1_000_000, "programmes": "JHT"})
    assert r.json()["code"] == "programmes_invalid"
