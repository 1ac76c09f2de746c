"""The NIK at rest: found by its keyed hash, stored only encrypted, keys rotatable."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from enrollment import pii
from enrollment.models import Participant, nik_q
from enrollment.selectors import search_participants
from enrollment.services import register_participant
from tests.conftest import login_as, nik_for, registration_data

pytestmark = pytest.mark.usefixtures("refdata")

OLD_KEYS = "k1:" + pii.generate_encryption_key()
NEW_KEY = "k2:" + pii.generate_encryption_key()
HMAC_OLD = "old-hmac-key-" + "o" * 32
HMAC_NEW = "new-hmac-key-" + "n" * 32


def register_three() -> list[Participant]:
    return [
        register_participant(**registration_data(nik=nik_for(serial=s), phone=f"08123456789{s}"))
        for s in (1, 2, 3)
    ]


def stored(pk: int) -> tuple[bytes, str]:
    with connection.cursor() as cur:
        cur.execute(
            "SELECT nik_digest, nik_encrypted FROM enrollment_participant WHERE id = %s", [pk]
        )
        digest, token = cur.fetchone()
    return bytes(digest), token


def test_the_database_holds_no_plaintext_nik() -> None:
    p = register_participant(**registration_data())
    nik = nik_for()
    with connection.cursor() as cur:
        cur.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_name = 'enrollment_participant' AND column_name = 'nik'"
        )
        assert cur.fetchall() == []
        cur.execute(
            "SELECT row_to_json(p)::text FROM enrollment_participant p WHERE id = %s", [p.pk]
        )
        (row_json,) = cur.fetchone()
    assert nik not in row_json
    digest, token = stored(p.pk)
    assert nik not in token and nik.encode() not in digest and len(digest) == 32
    assert token.startswith(pii.keys().current_id + ":")
    assert digest == pii.nik_digest(nik)
    assert Participant.objects.get(pk=p.pk).nik == nik  # read back through the property


def test_same_nik_encrypts_differently_each_time() -> None:
    nik = nik_for()
    assert pii.encrypt_nik(nik) != pii.encrypt_nik(nik)  # a fresh nonce per value
    assert pii.decrypt_nik(pii.encrypt_nik(nik)) == nik


def test_lookup_by_nik_uses_the_digest_and_decrypts_nothing(monkeypatch: Any) -> None:
    people = register_three()
    target = people[1]
    decrypts: list[str] = []
    real = pii.decrypt_nik
    monkeypatch.setattr(pii, "decrypt_nik", lambda t: decrypts.append(t) or real(t))
    with CaptureQueriesContext(connection) as ctx:
        found = list(Participant.objects.filter(nik_q(nik_for(serial=2))))
        searched = list(search_participants(Participant.objects.all(), nik_for(serial=2)))
    assert [p.pk for p in found] == [p.pk for p in searched] == [target.pk]
    assert decrypts == [], "a NIK search must not decrypt rows"
    assert len(ctx.captured_queries) == 2
    assert all("nik_digest" in q["sql"] for q in ctx.captured_queries)
    assert not Participant.objects.filter(nik_q(nik_for(serial=9))).exists()


@pytest.mark.not_on_cluster(
    "the plan is Citus's (a fan-out to the shards, each probing its index), not one server's"
)
def test_nik_search_plan_is_an_index_probe_not_a_table_scan() -> None:
    p = register_participant(**registration_data())
    with connection.cursor() as cur:  # 20,000 more rows, so the planner has a real choice
        cur.execute(
            """
            INSERT INTO enrollment_participant (nik_digest, nik_encrypted, kpj_number, full_name,
                birth_date, sex, phone, email, language, village_id, province_id, regency_id,
                address, occupation_id, declared_income, jht, channel, consent_data,
                consent_reminders, created_at, updated_at)
            SELECT sha256(g::text::bytea), 'placeholder:' || g, lpad(g::text, 11, '0'), 'X',
                   DATE '1990-01-01', 'M', '+6281200000000', '', 'id', village_id, province_id,
                   regency_id, 'Jl', occupation_id, 1000000, false, 'self', true, false,
                   now(), now()
            FROM generate_series(1, 20000) g, enrollment_participant p WHERE p.id = %s
            """,
            [p.pk],
        )
        cur.execute("ANALYZE enrollment_participant")
    qs = Participant.objects.filter(nik_q(nik_for()))
    plan = qs.explain()
    assert "Index" in plan and "nik_digest" in plan, plan
    assert "Seq Scan" not in plan, plan
    assert [x.pk for x in qs] == [p.pk]


def test_participant_built_with_nik_keeps_it_without_a_round_trip() -> None:
    p = Participant(nik=nik_for(serial=4))
    assert p.nik == nik_for(serial=4)
    assert p.nik_digest == pii.nik_digest(nik_for(serial=4))
    assert p.masked_nik == nik_for(serial=4)[:4] + "*" * 10 + nik_for(serial=4)[-2:]


def test_unknown_key_id_and_tampered_token_are_clear_errors() -> None:
    token = pii.encrypt_nik(nik_for())
    with pytest.raises(pii.NikKeyError, match="rotate_nik_keys"):
        pii.decrypt_nik("gone:" + token.partition(":")[2])
    body = token.partition(":")[2]
    tampered = token.partition(":")[0] + ":" + ("A" if body[0] != "A" else "B") + body[1:]
    with pytest.raises(pii.NikDecryptError):
        pii.decrypt_nik(tampered)


@pytest.mark.parametrize(
    "value",
    ["", "k1", "k1:short", "bad id:{0}", "a:{0},a:{0}"],
)
def test_malformed_encryption_keys_are_refused(value: str) -> None:
    with pytest.raises(pii.NikKeyError):
        pii.parse_encryption_keys(value.format(pii.generate_encryption_key()))


def test_masks() -> None:
    assert pii.mask_nik("3273051705900001") == "3273**********01"
    assert pii.mask_phone("+6281234567890") == "+62812*****890"
    assert "34567" not in pii.mask_phone("+6281234567890")


def test_rotation_reencrypts_in_batches_resumably_and_keeps_values() -> None:
    with override_settings(NIK_ENCRYPTION_KEYS=OLD_KEYS):
        people = register_three()
    niks = {p.pk: nik_for(serial=s) for p, s in zip(people, (1, 2, 3), strict=True)}
    before = {p.pk: (stored(p.pk), p.sync_txid) for p in Participant.objects.all()}
    assert all(tok.startswith("k1:") for (_, tok), _ in before.values())

    with override_settings(NIK_ENCRYPTION_KEYS=NEW_KEY + "," + OLD_KEYS):
        # Old tokens still decrypt while both keys are listed.
        assert {p.pk: p.nik for p in Participant.objects.all()} == niks
        call_command("rotate_nik_keys", batch_size=2, max_batches=1, stdout=_Null())
        rotated = [pk for pk in niks if stored(pk)[1].startswith("k2:")]
        assert len(rotated) == 2, "one batch of two, then stop (resumable)"
        call_command("rotate_nik_keys", batch_size=2, stdout=_Null())
        after = {p.pk: (stored(p.pk), p.sync_txid) for p in Participant.objects.all()}
        assert all(tok.startswith("k2:") for (_, tok), _ in after.values())
        tokens = {pk: tok for pk, ((_, tok), _) in after.items()}
        call_command("rotate_nik_keys", stdout=_Null())  # idempotent: nothing left to do
        assert {pk: stored(pk)[1] for pk in niks} == tokens

    with override_settings(NIK_ENCRYPTION_KEYS=NEW_KEY):  # the old key can go now
        assert {p.pk: p.nik for p in Participant.objects.all()} == niks
    for pk in niks:
        assert after[pk][0][0] == before[pk][0][0], "digests unchanged by re-encryption"
        assert after[pk][1] == before[pk][1], "sync position unchanged: clients see no change"


def test_hmac_rotation_with_rehash() -> None:
    with override_settings(NIK_HMAC_KEY=HMAC_OLD):
        people = register_three()
    nik = nik_for(serial=2)
    from enrollment.errors import DuplicateNik

    with override_settings(NIK_HMAC_KEY=HMAC_NEW, NIK_HMAC_OLD_KEY=HMAC_OLD):
        # During the rotation both digests find the row, and registering a NIK still stored
        # under the old digest is refused (the constraint alone would not see it).
        assert Participant.objects.filter(nik_q(nik)).get().pk == people[1].pk
        with pytest.raises(DuplicateNik):
            register_participant(**registration_data(nik=nik, phone="081234567892"))
        call_command("rotate_nik_keys", rehash=True, batch_size=2, stdout=_Null())
    with override_settings(NIK_HMAC_KEY=HMAC_NEW):
        assert Participant.objects.filter(nik_q(nik)).get().pk == people[1].pk
        for p in people:
            assert stored(p.pk)[0] == pii.nik_digest(p.nik)
        with pytest.raises(DuplicateNik):
            register_participant(**registration_data(nik=nik, phone="081234567892"))


def test_new_key_prints_a_usable_key() -> None:
    out = _Null()
    call_command("rotate_nik_keys", new_key=True, stdout=out)
    assert pii.parse_encryption_keys("k9:" + out.text.strip())[0][0] == "k9"


class _Null:
    def __init__(self) -> None:
        self.text = ""

    def write(self, s: str) -> None:
        self.text += s

    def flush(self) -> None:
        pass


def test_admin_searches_participants_and_coverage_by_nik_through_the_digest(
    admin_user: Any, register: Any
) -> None:
    from django.test import Client

    p = register()
    other = register(nik=nik_for(serial=7), phone="081234567897")
    c = Client()
    login_as(c, admin_user, with_password=True)
    for url in ("/admin/enrollment/participant/", "/admin/contributions/coverage/"):
        with CaptureQueriesContext(connection) as ctx:
            body = c.get(url, {"q": p.nik}).content.decode()
        assert p.kpj_number in body and other.kpj_number not in body, url
        assert any("nik_digest" in q["sql"] for q in ctx.captured_queries), url
