"""Two agents, same NIK, same moment: exactly one participant, the other a clear duplicate error."""

import threading
from typing import Any

import pytest
from django.db import connections

from enrollment.errors import DuplicateNik
from enrollment.models import Participant
from enrollment.services import register_participant
from tests.conftest import registration_data


@pytest.mark.usefixtures("tx_refdata")
def test_duplicate_nik_under_concurrency_creates_one() -> None:
    barrier = threading.Barrier(2)
    results: list[Any] = []

    def attempt(name: str) -> None:
        try:
            barrier.wait(timeout=10)
            results.append(register_participant(**registration_data(full_name=name)))
        except DuplicateNik as exc:
            results.append(exc)
        finally:
            connections.close_all()  # each thread had its own real connection

    threads = [threading.Thread(target=attempt, args=(n,)) for n in ("Agus Satu", "Agus Dua")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert Participant.objects.count() == 1
    kinds = sorted(type(r).__name__ for r in results)
    assert kinds == ["DuplicateNik", "Participant"]
    error = next(r for r in results if isinstance(r, DuplicateNik))
    assert error.code == "duplicate_nik"
