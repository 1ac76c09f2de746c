from io import StringIO

import pytest
from django.core.management import call_command

from enrollment.models import NikPrefix, Occupation, Region


@pytest.mark.usefixtures("refdata")
def test_full_hierarchy_with_time_zones() -> None:
    assert Region.objects.filter(level=1).count() == 38
    assert Region.objects.filter(level=2).count() == 514
    assert Region.objects.filter(level=3).count() == 7285
    assert Region.objects.filter(level=4).count() == 83762
    village = Region.objects.get(code="32.73.05.1001")
    assert village.parent_id == "32.73.05"
    assert Region.objects.get(code="32").timezone == "Asia/Jakarta"
    assert Region.objects.get(code="73").timezone == "Asia/Makassar"
    assert Region.objects.get(code="91").timezone == "Asia/Jayapura"
    assert not Region.objects.filter(level=1, timezone="").exists()


@pytest.mark.usefixtures("refdata")
def test_occupations_have_both_languages_and_sector() -> None:
    assert Occupation.objects.get(code="petani").name_en == "Farmer/planter"
    assert Occupation.objects.get(code="ojol").sector == "transport"
    assert not Occupation.objects.filter(name_en="").exists()
    assert NikPrefix.objects.filter(historical=False).count() == 7285


@pytest.mark.usefixtures("refdata")
def test_loading_twice_changes_nothing() -> None:
    out = StringIO()
    call_command("load_reference_data", stdout=out)
    assert "regions: 0 rows" in out.getvalue()
    assert "occupations: 0 rows" in out.getvalue()
