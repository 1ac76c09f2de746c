import itertools
from typing import Any

import pytest

from enrollment.kpj import is_valid_kpj, luhn_check_digit, next_kpj_number


def test_luhn_known_value() -> None:
    # 7992739871 + check digit 3 is the textbook Luhn example
    assert luhn_check_digit("7992739871") == "3"
    assert is_valid_kpj("79927398713")


def test_single_digit_change_is_detected() -> None:
    assert not is_valid_kpj("79927398714")
    assert not is_valid_kpj("79927398703")


def test_format() -> None:
    assert not is_valid_kpj("1234")
    assert not is_valid_kpj("１２３４５６７８９０１")


@pytest.mark.django_db
def test_generated_numbers_are_unique_valid_and_11_digits() -> None:
    numbers = [next_kpj_number() for _ in range(50)]
    assert len(set(numbers)) == 50
    assert all(len(n) == 11 and is_valid_kpj(n) for n in numbers)


# --- numbers nobody can count through (issue: a channel enumerated KPJ sequence + Luhn) ----------
def test_the_permutation_is_a_bijection_on_ten_digit_bases() -> None:
    from enrollment.kpj import permute, unpermute

    for value in (0, 1, 2, 99_999, 100_000, 1_000_000_001, 9_999_999_999, *range(5000, 5200)):
        out = permute(value)
        assert 0 <= out < 10**10 and unpermute(out) == value
    sample = range(1_000_000_001, 1_000_020_001)
    assert len({permute(v) for v in sample}) == len(sample)


def test_consecutive_numbers_are_not_neighbours_and_need_the_key() -> None:
    """Knowing one number (or many) does not lead to the next: consecutive sequence values land
    all over the 10-digit range, and another key gives other numbers."""
    from enrollment.kpj import kpj_for, permute

    bases = [permute(v) for v in range(1_000_000_001, 1_000_001_001)]
    gaps = sorted(abs(b - a) for a, b in itertools.pairwise(bases))
    assert gaps[len(gaps) // 2] > 10**8  # the median jump between consecutive numbers
    assert {b // 10**9 for b in bases} == set(range(10))  # every leading digit occurs
    other = b"another-key-of-at-least-32-characters!!"
    assert kpj_for(1_000_000_001) != kpj_for(1_000_000_001, other)
    assert all(is_valid_kpj(kpj_for(v)) for v in range(1_000_000_001, 1_000_000_101))


@pytest.mark.django_db
def test_a_number_is_not_the_plain_sequence() -> None:
    from django.db import connection

    number = next_kpj_number()
    with connection.cursor() as cursor:
        cursor.execute("SELECT last_value FROM enrollment_kpj_seq")
        (last,) = cursor.fetchone()
    assert number[:10] != f"{last:010d}"


@pytest.mark.django_db
def test_a_permuted_number_held_by_an_older_participant_is_skipped(register: Any) -> None:
    """Numbers issued before the permutation (the plain sequence) stay valid; a new number that
    would equal one of them is skipped, never handed out twice."""
    from django.db import connection

    from enrollment import unique_keys
    from enrollment.kpj import kpj_for
    from enrollment.models import Participant
    from tests.conftest import nik_for

    old = register()
    with connection.cursor() as cursor:
        cursor.execute("SELECT last_value FROM enrollment_kpj_seq")
        (last,) = cursor.fetchone()
    collide = kpj_for(last + 1)
    Participant.objects.filter(pk=old.pk).update(kpj_number=collide)
    # every stored number is claimed (migration enrollment 0016 claimed the older ones)
    unique_keys.release([(unique_keys.KPJ, old.kpj_number)])
    assert unique_keys.claim([(unique_keys.KPJ, collide, old.pk)]) == set()
    new = register(nik=nik_for(serial=91))
    assert new.kpj_number == kpj_for(last + 2) and is_valid_kpj(new.kpj_number)
    assert Participant.objects.get(pk=old.pk).kpj_number == collide


@pytest.mark.django_db
def test_the_key_must_be_long(settings: Any) -> None:
    settings.KPJ_KEY = "short"
    with pytest.raises(ValueError, match="KPJ_KEY"):
        next_kpj_number()


@pytest.mark.django_db
def test_bulk_registration_skips_a_number_held_by_an_older_participant(refdata: Any) -> None:
    from django.db import connection

    from enrollment import unique_keys
    from enrollment.kpj import kpj_for
    from enrollment.models import Participant
    from enrollment.services import register_participant, register_participants_bulk
    from tests.conftest import nik_for, registration_data

    old = register_participant(**registration_data(nik=nik_for(serial=90)))
    with connection.cursor() as cursor:
        cursor.execute("SELECT last_value FROM enrollment_kpj_seq")
        (last,) = cursor.fetchone()
    Participant.objects.filter(pk=old.pk).update(kpj_number=kpj_for(last + 2))
    # every stored number is claimed (migration enrollment 0016 claimed the older ones)
    unique_keys.release([(unique_keys.KPJ, old.kpj_number)])
    assert unique_keys.claim([(unique_keys.KPJ, kpj_for(last + 2), old.pk)]) == set()
    rows = [registration_data(nik=nik_for(serial=s), phone=f"0812345600{s:02d}") for s in (1, 2, 3)]
    outcomes = register_participants_bulk(rows)
    assert all(isinstance(o, Participant) for o in outcomes), outcomes
    numbers = {o.kpj_number for o in outcomes if isinstance(o, Participant)}
    assert len(numbers) == 3 and kpj_for(last + 2) not in numbers
    assert all(is_valid_kpj(n) for n in numbers)
    assert Participant.objects.filter(kpj_number=kpj_for(last + 2)).get().pk == old.pk


def test_issued_numbers_never_change_known_answers() -> None:
    """The permutation's known answers under a fixed key (computed with the implementation that
    issued the first numbers): moving it to bpjsportal.core.fpe changed no KPJ number."""
    from enrollment.kpj import kpj_for

    key = b"k" * 32
    got = [kpj_for(v, key) for v in (0, 1, 2, 12345, 9_999_999_999)]
    assert got == ["16413880663", "31147131762", "51923712221", "52979397966", "15834844134"]
