"""Who a partner may pay for (contributions/sponsorship.py) and sponsor-batch replays.

The probes: a partner's batch naming any KPJ succeeded and then widened what it could read;
a replay with other rows of the same count and total got the first batch back; concurrent
identical retries got a 409 instead of the replay."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from contributions.errors import BatchError, ConsentError
from contributions.models import Payment, SponsorBatch, SponsorConsent
from contributions.services import post_sponsor_batch
from contributions.sponsorship import grant_sponsor_consent, withdraw_sponsor_consent
from enrollment import permissions
from enrollment.models import Partner
from tests.contributions.conftest import assert_ledger_consistent
from tests.contributions.test_concurrency import run_together

pytestmark = pytest.mark.django_db


@pytest.fixture
def sponsor(refdata: Any) -> Partner:
    return Partner.objects.create(code="GNL", name="GN Lingkaran", kind="sponsor")


def _batch(sponsor: Partner, rows: list[tuple[str, int]], ref: str = "B", **kw: Any) -> Any:
    return post_sponsor_batch(
        sponsor=sponsor, reference=ref, rows=rows, paid_at=kw.pop("paid_at", timezone.now()), **kw
    )


def _row_errors(exc: pytest.ExceptionInfo[BatchError]) -> list[tuple[int, str, str]]:
    return [(r.row, r.code, r.message) for r in exc.value.rows]


def test_a_partner_cannot_pay_for_someone_it_did_not_register(
    sponsor: Partner, make_participant: Any
) -> None:
    """Not registered by the sponsor and no consent: the row is answered word for word like a
    KPJ that does not exist, and nothing is written."""
    stranger = make_participant()
    with pytest.raises(BatchError) as exists:
        _batch(sponsor, [(stranger.kpj_number, 1)])
    with pytest.raises(BatchError) as missing:
        _batch(sponsor, [("99999999999", 1)])
    with pytest.raises(BatchError) as by_nik:
        _batch(sponsor, [(stranger.nik, 1)])
    assert _row_errors(exists) == [(1, "participant_unknown", "KPJ atau NIK tidak dikenal.")]
    assert _row_errors(missing) == _row_errors(exists)
    assert [(r, c, m) for r, c, m in _row_errors(by_nik)] == [
        (1, "participant_unknown", "KPJ atau NIK tidak dikenal.")
    ]
    assert exists.value.message == missing.value.message
    assert not Payment.objects.exists() and not SponsorBatch.objects.exists()


def test_a_wrong_total_reveals_nothing_about_someone_out_of_scope(
    sponsor: Partner, make_participant: Any
) -> None:
    stranger = make_participant()
    with pytest.raises(BatchError) as err:
        _batch(sponsor, [(stranger.kpj_number, 1)], total_amount=1)
    assert err.value.code == "batch_invalid"  # never amount_mismatch with the real total
    assert "Rp" not in err.value.message


def test_consent_confirmed_in_person_lets_the_partner_pay_and_see_nothing_more(
    sponsor: Partner, make_participant: Any, agent: Any
) -> None:
    from enrollment.api.clients import create_api_client

    worker = make_participant(registered_by=agent.staff)
    client = create_api_client(name="GNL app", scope="partner", partner=sponsor).client
    consent, created = grant_sponsor_consent(
        participant=worker,
        sponsor=sponsor,
        method=SponsorConsent.Method.IN_PERSON,
        user=agent,
        note="Met at Pasar Kosambi, KTP seen",
    )
    assert created and consent.granted_by == agent
    batch, created = _batch(sponsor, [(worker.kpj_number, 1)])
    assert created and Payment.objects.get(batch=batch).participant == worker
    # paying opened nothing else: not in the partner's reads, edits, lists or look-ups
    for action in ("view_participants", "edit_participant", "see_full_nik"):
        assert not permissions.participants_in_scope(client, action).filter(pk=worker.pk).exists()
    assert permissions.participants_in_scope(client, "record_payment").filter(pk=worker.pk)
    assert_ledger_consistent()


def test_withdrawn_consent_closes_the_door_again(sponsor: Partner, make_participant: Any) -> None:
    worker = make_participant()
    grant_sponsor_consent(
        participant=worker, sponsor=sponsor, method="admin", user=None, note="APBD list 2026"
    )
    assert withdraw_sponsor_consent(participant=worker, sponsor=sponsor, user=None)
    assert not withdraw_sponsor_consent(participant=worker, sponsor=sponsor, user=None)
    with pytest.raises(BatchError) as err:
        _batch(sponsor, [(worker.kpj_number, 1)])
    assert err.value.rows[0].code == "participant_unknown"
    again, created = grant_sponsor_consent(
        participant=worker, sponsor=sponsor, method="in_person", user=None, note="asked again"
    )
    assert created and again.withdrawn_at is None and again.method == "in_person"
    assert SponsorConsent.objects.count() == 1  # one row per pair; the audit trail has each step


def test_consent_rules(sponsor: Partner, make_participant: Any) -> None:
    worker = make_participant()
    own = make_participant(partner=sponsor)
    for kwargs, code in (
        ({"participant": worker, "method": "sms"}, "method_invalid"),
        ({"participant": worker, "method": "in_person", "note": "  "}, "note_required"),
        ({"participant": own, "method": "admin"}, "sponsor_is_registrar"),
    ):
        with pytest.raises(ConsentError) as err:
            grant_sponsor_consent(sponsor=sponsor, user=None, **{"note": "n", **kwargs})
        assert err.value.code == code
    sponsor.active = False
    sponsor.save()
    with pytest.raises(ConsentError) as err:
        grant_sponsor_consent(participant=worker, sponsor=sponsor, method="admin", user=None)
    assert err.value.code == "sponsor_inactive"
    assert not SponsorConsent.objects.exists()


def test_an_administrators_batch_is_the_approval_and_is_recorded(
    sponsor: Partner, make_participant: Any, admin_user: Any
) -> None:
    a, b = make_participant(), make_participant()
    grant_sponsor_consent(participant=b, sponsor=sponsor, method="admin", user=None, note="x")
    withdraw_sponsor_consent(participant=b, sponsor=sponsor, user=None)
    batch, created = _batch(
        sponsor, [(a.kpj_number, 1), (b.kpj_number, 2)], admin_approval=True, user=admin_user
    )
    assert created and batch.row_count == 2
    consents = SponsorConsent.objects.filter(sponsor=sponsor, withdrawn_at__isnull=True)
    assert {c.participant_id for c in consents} == {a.pk, b.pk}
    assert {(c.method, c.granted_by_id) for c in consents} == {("admin", admin_user.pk)}
    assert all("B" in c.note for c in consents)


# --- the payment date window on the batch path ----------------------------------------------------
def test_batch_dates_outside_the_window_are_refused(
    sponsor: Partner, make_participant: Any, settings: Any
) -> None:
    worker = make_participant(partner=sponsor)
    settings.PAYMENT_MAX_AGE_DAYS = 10
    with pytest.raises(BatchError) as err:
        _batch(sponsor, [(worker.kpj_number, 1)], paid_at=timezone.now() - timedelta(days=11))
    assert err.value.code == "paid_at_too_old"
    settings.PAYMENT_MAX_AGE_DAYS = 400
    yesterday = timezone.now() - timedelta(days=1)
    with pytest.raises(BatchError) as err:  # registered today: a payment yesterday is impossible
        _batch(sponsor, [(worker.kpj_number, 1)], paid_at=yesterday)
    assert [(r.row, r.code) for r in err.value.rows] == [(1, "paid_at_before_registration")]
    with pytest.raises(BatchError) as err:
        _batch(sponsor, [(worker.kpj_number, 1)], paid_at=timezone.now().replace(year=1))
    assert err.value.code == "paid_at_too_old"
    assert not Payment.objects.exists()


# --- concurrent identical retries get the replay --------------------------------------------------
@pytest.mark.django_db(transaction=True)
def test_identical_retries_at_the_same_moment_get_one_batch(tx_refdata: Any) -> None:
    from enrollment.services import register_participant
    from tests.conftest import nik_for, registration_data

    sponsor = Partner.objects.create(code="SRT", name="Sertakan", kind="sponsor")
    people = [
        register_participant(
            **registration_data(nik=nik_for(serial=700 + i), phone=f"0812300070{i:02d}"),
            partner=sponsor,
        )
        for i in range(3)
    ]
    rows = [(p.kpj_number, 1) for p in people]
    paid_at = timezone.now()
    results = run_together(
        *[
            (lambda: post_sponsor_batch(sponsor=sponsor, reference="X", rows=rows, paid_at=paid_at))
            for _ in range(4)
        ]
    )
    assert not [r for r in results if isinstance(r, Exception)], results
    assert sorted(created for _b, created in results) == [False, False, False, True]
    assert len({batch.pk for batch, _c in results}) == 1
    assert SponsorBatch.objects.count() == 1 and Payment.objects.count() == 3
    assert_ledger_consistent()
