"""The payments API's scope policy (contributions/api/payment_access.py), called directly: what
each kind of client may post a payment or a sponsor batch as, and for whom."""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import translation
from rest_framework.exceptions import APIException

from bpjsportal.core.api.errors import ApiError
from contributions.api.payment_access import (
    BatchAccess,
    PaymentAccess,
    batch_access_for,
    payment_access_for,
)
from enrollment.api.clients import create_api_client
from enrollment.api.lookups import lookups_today
from enrollment.models import Partner

pytestmark = pytest.mark.django_db

NOBODY = "00000000000"


@pytest.fixture
def gnl(refdata: Any) -> Partner:
    return Partner.objects.create(code="GNL", name="GN Lingkaran", kind="sponsor")


def client_of(scope: str, **kw: Any) -> Any:
    return create_api_client(name=f"{scope} client", scope=scope, **kw).client


def refused(call: Any) -> ApiError:
    with translation.override("en"), pytest.raises(APIException) as caught:
        call()
    assert isinstance(caught.value, ApiError)
    return caught.value


def test_a_channel_posts_as_its_channel_and_the_participant_by_default(
    make_participant: Any,
) -> None:
    p = make_participant()
    bank = client_of("channel", payment_channel="bank")
    access = payment_access_for(bank, kpj=p.kpj_number, nik="", channel=None, payer=None)
    assert access == PaymentAccess(participant=p, channel="bank", payer="participant")
    assert payment_access_for(bank, kpj="", nik=p.nik, channel="bank", payer="sponsor").payer == (
        "sponsor"
    )
    err = refused(
        lambda: payment_access_for(bank, kpj=p.kpj_number, nik="", channel="retail", payer=None)
    )
    assert (err.code, err.status_code) == ("channel_not_allowed", 400)
    assert str(err.message) == "This client posts payments as channel bank only."


def test_a_channels_miss_is_a_counted_404(make_participant: Any) -> None:
    bank = client_of("channel", payment_channel="bank")
    before = lookups_today(bank) or 0
    err = refused(lambda: payment_access_for(bank, kpj=NOBODY, nik="", channel=None, payer=None))
    assert (err.code, err.status_code) == ("participant_unknown", 404)
    assert lookups_today(bank) == before + 1
    err = refused(lambda: payment_access_for(bank, kpj="", nik="", channel=None, payer=None))
    assert (err.code, err.status_code) == ("participant_required", 400)
    assert [(e.field, e.code) for e in err.errors] == [("kpj_number", "required")]
    assert lookups_today(bank) == before + 1  # no key sent: nothing looked up, nothing counted


def test_a_partner_pays_as_sponsor_for_its_own_participants_only(
    make_participant: Any, gnl: Partner
) -> None:
    mine, other = make_participant(partner=gnl), make_participant()
    partner = client_of("partner", partner=gnl)
    access = payment_access_for(partner, kpj=mine.kpj_number, nik="", channel=None, payer=None)
    assert access == PaymentAccess(
        participant=mine, channel="partner", payer="sponsor", sponsor=gnl, payer_type="sponsor"
    )
    err = refused(  # the payer type sets the price: a partner pays as its own
        lambda: payment_access_for(partner, kpj=mine.kpj_number, nik="", channel=None,
                                   payer=None, payer_type="self")
    )  # fmt: skip
    assert (err.code, err.status_code) == ("payer_type_not_allowed", 400)
    err = refused(
        lambda: payment_access_for(partner, kpj=other.kpj_number, nik="", channel=None, payer=None)
    )
    assert (err.code, err.status_code) == ("participant_unknown", 404)
    assert lookups_today(partner) is None  # only a channel's look-ups are counted


def test_an_agent_posts_cash_it_collected(make_participant: Any, agent: Any) -> None:
    mine = make_participant(registered_by=agent.staff)
    app = client_of("agent", agent=agent.staff)
    access = payment_access_for(app, kpj=mine.kpj_number, nik="", channel="agent", payer=None)
    assert access == PaymentAccess(
        participant=mine, channel="agent", payer="agent", collected_by=agent.staff
    )
    err = refused(
        lambda: payment_access_for(
            app, kpj=mine.kpj_number, nik="", channel=None, payer="participant"
        )
    )
    assert (err.code, str(err.message)) == (
        "payer_not_allowed",
        "This client posts payments as payer agent only.",
    )


def test_an_admin_sends_channel_and_payer_itself(make_participant: Any) -> None:
    p = make_participant()
    admin = client_of("admin")
    err = refused(lambda: payment_access_for(admin, kpj=NOBODY, nik="", channel=None, payer=None))
    # the missing fields are answered before the participant is looked up
    assert (err.code, err.status_code) == ("validation_error", 400)
    assert [(e.field, e.code) for e in err.errors] == [
        ("channel", "required"),
        ("payer", "required"),
    ]
    access = payment_access_for(admin, kpj=p.kpj_number, nik="", channel="retail", payer="agent")
    assert access == PaymentAccess(participant=p, channel="retail", payer="agent")


def test_batch_access_by_scope(gnl: Partner) -> None:
    other = Partner.objects.create(code="COMBOFIT", name="ComboFit", kind="bundle")
    partner, admin = client_of("partner", partner=gnl), client_of("admin")
    assert batch_access_for(partner, sponsor_code=None) == BatchAccess(gnl, admin_approval=False)
    assert batch_access_for(partner, sponsor_code="GNL") == BatchAccess(gnl, admin_approval=False)
    err = refused(lambda: batch_access_for(partner, sponsor_code=other.code))
    assert (err.code, err.status_code) == ("sponsor_not_allowed", 400)
    assert batch_access_for(admin, sponsor_code="COMBOFIT") == BatchAccess(
        other, admin_approval=True
    )
    err = refused(lambda: batch_access_for(admin, sponsor_code=None))
    assert (err.code, err.status_code) == ("sponsor_unknown", 400)
    assert [(e.field, e.code) for e in err.errors] == [("sponsor", "sponsor_unknown")]
    channel = client_of("channel", payment_channel="bank")
    err = refused(lambda: batch_access_for(channel, sponsor_code="GNL"))
    assert (err.code, err.status_code) == ("permission_denied", 403)
