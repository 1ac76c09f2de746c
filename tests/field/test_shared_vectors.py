"""The shared test vectors (tests/field/vectors.json), run through the server's own rules.

The field app applies the same rules offline (static/field/rules.js). Every vector is evaluated
here by the Python functions (parse_nik, _checked_participant, quote_contribution, due_date,
status_for / first_month_to_pay / months_due_now, quote_payment) and must equal its `expect`;
then node runs the same vectors through rules.js (tests/field/rules.test.js) against the very
data the phone gets (`rules_data()`) and the server's outcomes recorded here, including every
error message in Indonesian and English. A rule changed on one side only fails this test.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from datetime import date
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from django.utils import translation

from contributions import quotes
from contributions.coverage import first_month_to_pay, months_due_now, status_for
from contributions.due_dates import due_date
from contributions.errors import PaymentError
from contributions.field.reference import rules_data
from contributions.models import Coverage
from contributions.rates import QuoteError, quote_contribution
from enrollment.errors import RegistrationError
from enrollment.models import Occupation, Participant
from enrollment.nik import NikError, parse_nik
from enrollment.services import DATABASE_LOOKUP, RULE_MESSAGES, _checked_participant

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
VECTORS = json.loads((HERE / "vectors.json").read_text(encoding="utf-8"))
LANGUAGES = ("id", "en")
KINDS = ("nik", "registration", "quote", "due_date", "status", "payment_quote")

Outcome = tuple[Any, list[tuple[str, Any]]]  # (result, [(error code, message)])


def _day(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


# --- the kinds ------------------------------------------------------------------------------
def run_nik(inp: dict[str, Any]) -> Outcome:
    try:
        p = parse_nik(inp["nik"], today=date.fromisoformat(inp["today"]))
    except NikError as exc:
        return {"ok": False, "code": exc.code}, [(exc.code, exc.message)]
    result = {
        "ok": True,
        "nik": p.nik,
        "prefix6": p.prefix6,
        "province_code": p.province_code,
        "regency_code": p.regency_code,
        "district_code": p.district_code,
        "birth_date": p.birth_date.isoformat(),
        "sex": p.sex,
        "serial": p.serial,
    }
    return result, []


# What the offline form hands the rules, as the server's forms would: a birth date from
# <input type="date"> ("YYYY-MM-DD" or empty) and the income as a whole number or a digit string.
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_BIRTH_DATE_RULES = {"birth_date_future", "age_out_of_range", "nik_birth_date_mismatch"}


def _form_date(value: object) -> date | None:
    if not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def _form_income(value: object) -> object:
    if isinstance(value, str) and re.fullmatch(r"[0-9]+", value.strip()):
        return int(value.strip())
    return value  # the services refuse anything but an int (income_invalid)


def run_registration(inp: dict[str, Any]) -> Outcome:
    fields = {**VECTORS["registration_defaults"], **inp["fields"]}
    today = date.fromisoformat(inp["today"])
    born = _form_date(fields["birth_date"])
    try:
        _checked_participant(
            DATABASE_LOOKUP,
            today,
            nik=fields["nik"],
            full_name=fields["full_name"],
            # A birth date the form cannot read never reaches the services (the API's
            # serializer and the web form refuse it first): the offline form reports it as
            # birth_date_invalid in the birth date's place, with the rules that do not need it.
            birth_date=born or today,
            sex=fields["sex"],
            phone=fields["phone"],
            email=fields["email"],
            village=fields["village"],
            address=fields["address"],
            occupation=fields["occupation"],
            declared_income=_form_income(fields["declared_income"]),
            channel="agent",  # the field app registers through the agent channel only
            consent_data=fields["consent_data"],
        )
        errors = []
    except RegistrationError as exc:
        errors = list(exc.errors)
    pairs = [(e.field, e.code, e.message) for e in errors]
    if born is None:
        pairs = [p for p in pairs if p[1] not in _BIRTH_DATE_RULES]
        at = next((i for i, p in enumerate(pairs) if p[0] not in ("full_name", "sex")), len(pairs))
        invalid = RULE_MESSAGES["birth_date_invalid"]
        pairs.insert(at, ("birth_date", "birth_date_invalid", invalid))
    result = [{"field": f, "code": c} for f, c, _m in pairs]
    return {"errors": result}, [(c, m) for _f, c, m in pairs]


def _quote_result(q: Any) -> dict[str, Any]:
    return {
        "months": [
            {"month": m.month.isoformat(), "amounts": dict(m.amounts), "total": m.total}
            for m in q.months
        ],
        "per_programme": q.per_programme,
        "total": q.total,
        "monthly": q.monthly,
    }


def _history(rows: list[list[str]]) -> tuple[tuple[date, str], ...]:
    return tuple((date.fromisoformat(until), sector) for until, sector in rows)


def run_quote(inp: dict[str, Any]) -> Outcome:
    try:
        q = quote_contribution(
            declared_income=inp["income"],
            programmes=inp["programmes"],
            months=inp["months"],
            first_month=date.fromisoformat(inp["first_month"]),
            sector=inp.get("sector", "other"),
            payer_type=inp.get("payer_type", "self"),
            sector_history=_history(inp.get("history", [])),
            apply_discounts=inp.get("apply_discounts", True),
        )
    except QuoteError as exc:
        return {"error": {"code": exc.code}}, [(exc.code, exc.message)]
    return _quote_result(q), []


def run_due_date(inp: dict[str, Any]) -> Outcome:
    return {"due_date": due_date(date.fromisoformat(inp["month"])).isoformat()}, []


def run_status(inp: dict[str, Any]) -> Outcome:
    kw = {
        "paid_through": _day(inp["paid_through"]),
        "start_month": date.fromisoformat(inp["start_month"]),
        "as_of": date.fromisoformat(inp["as_of"]),
    }
    result = {
        "status": str(status_for(**kw)),
        "first_month_to_pay": first_month_to_pay(**kw).isoformat(),
        "months_due_now": months_due_now(**kw),
    }
    return result, []


def run_payment_quote(inp: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Outcome:
    p = inp["participant"]
    as_of = date.fromisoformat(inp["as_of"])
    participant = Participant(
        declared_income=p["income"],
        jht="JHT" in p["programmes"],
        occupation=Occupation(code="vector", sector=p["sector"]),
    )
    assert participant.programmes == p["programmes"], "programmes: JKK, JKM[, JHT] in this order"
    cov = None
    if p["start_month"]:
        cov = Coverage(
            start_month=date.fromisoformat(p["start_month"]),
            paid_through=_day(p["paid_through"]),
            credit=p["credit"],
        )
    # quote_payment reads the sector history itself (history=None), and only when the months
    # start before the current month: the participant's history stands in for the database's,
    # and "today" is the vector's as_of.
    history = _history(p.get("history", []))
    monkeypatch.setattr(quotes, "sector_history", lambda ids: {ids[0]: history})
    monkeypatch.setattr(quotes, "timezone", SimpleNamespace(localdate=lambda: as_of))
    try:
        due = quotes.quote_payment(
            participant,
            cov,
            months=inp["months"],
            as_of=as_of,
            payer_type=inp.get("payer_type", "self"),
        )
    except PaymentError as exc:
        return {"error": {"code": exc.code}}, [(exc.code, exc.message)]
    result = {
        "first_month": due.first_month.isoformat(),
        "months": due.months,
        "amount": due.amount,
        "credit": due.credit,
        "reactivation": due.reactivation,
    }
    return result, []


# --- the test -------------------------------------------------------------------------------
def _evaluate(case: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The server's outcome of one case, in both languages (messages are formatted at the
    moment a rule refuses, in the active language)."""
    runners: dict[str, Callable[[dict[str, Any]], Outcome]] = {
        "nik": run_nik,
        "registration": run_registration,
        "quote": run_quote,
        "due_date": run_due_date,
        "status": run_status,
        "payment_quote": lambda inp: run_payment_quote(inp, monkeypatch),
    }
    run = runners[case["kind"]]
    by_language = {}
    for language in LANGUAGES:
        with translation.override(language):
            result, errors = run(case["input"])
            by_language[language] = (result, [(code, str(text)) for code, text in errors])
    (result, errors_id), (result_en, errors_en) = by_language["id"], by_language["en"]
    assert result == result_en, case["id"]
    assert [c for c, _t in errors_id] == [c for c, _t in errors_en], case["id"]
    messages = [
        {"code": code, "id": text_id, "en": text_en}
        for (code, text_id), (_c, text_en) in zip(errors_id, errors_en, strict=True)
    ]
    return {"result": result, "messages": messages}


def _reference(cases: list[dict[str, Any]]) -> dict[str, list[str]]:
    """The NIK prefixes and villages the registration vectors ask about that the database knows
    (rules_data() has the occupations): what the phone's lookups hold for these cases."""
    defaults = VECTORS["registration_defaults"]
    prefixes, villages = set(), set()
    for case in cases:
        if case["kind"] != "registration":
            continue
        fields = {**defaults, **case["input"]["fields"]}
        nik, village = fields["nik"], fields["village"]
        if isinstance(nik, str) and len(nik) >= 6 and DATABASE_LOOKUP.prefix_known(nik[:6]):
            prefixes.add(nik[:6])
        if isinstance(village, str) and DATABASE_LOOKUP.village(village) is not None:
            villages.add(village)
    return {"nik_prefixes": sorted(prefixes), "villages": sorted(villages)}


def _node() -> str:
    node = shutil.which("node") or ("/usr/bin/node" if os.path.exists("/usr/bin/node") else None)
    if node is None:
        pytest.fail(
            "node (Node.js >= 18) is not installed: the offline rules (static/field/rules.js) "
            "cannot be checked against the server's. Install Node.js and run again."
        )
    return node


@pytest.mark.django_db
def test_shared_vectors_server_and_browser_agree(
    refdata: Any, settings: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The defaults the vectors are written for (environment variables could change them).
    settings.BPU_MIN_AGE, settings.BPU_MAX_AGE = 15, 65
    settings.BPU_DUE_DAY, settings.BPU_DUE_SKIPS_WEEKENDS, settings.BPU_GRACE_MONTHS = 15, True, 3
    node = _node()  # before the work: a missing node fails at once
    cases = VECTORS["cases"]
    ids = [c["id"] for c in cases]
    assert len(ids) == len(set(ids)), "vector ids must be unique"
    assert {c["kind"] for c in cases} == set(KINDS)

    outcomes, wrong = {}, []
    for case in cases:
        outcome = _evaluate(case, monkeypatch)
        outcomes[case["id"]] = outcome
        if outcome["result"] != case["expect"]:
            wrong.append(f"{case['id']}: expected {case['expect']}, server {outcome['result']}")
    assert not wrong, "the server disagrees with vectors.json:\n" + "\n".join(wrong)

    data_file, outcomes_file = tmp_path / "rules_data.json", tmp_path / "outcomes.json"
    data_file.write_text(json.dumps(rules_data(), ensure_ascii=False), encoding="utf-8")
    outcomes_file.write_text(
        json.dumps({"reference": _reference(cases), "cases": outcomes}, ensure_ascii=False),
        encoding="utf-8",
    )
    env = {
        **os.environ,
        "FIELD_RULES_DATA": str(data_file),
        "FIELD_SERVER_OUTCOMES": str(outcomes_file),
    }
    # `node --test tests/field/` with the directory's test files named: Node 18-20 search a
    # directory argument, Node 22+ take it for a module and fail (nodejs/node#64555).
    files = sorted(str(p.relative_to(ROOT)) for p in HERE.glob("*.test.js"))
    assert files, "no tests/field/*.test.js"
    proc = subprocess.run(
        [node, "--test", *files],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    command = " ".join(["node --test", *files])
    assert proc.returncode == 0, (
        f"{command} failed (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    )
