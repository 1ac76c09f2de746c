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
