"""The API docs page loads Swagger UI from our own static files, never a CDN (ground rule 7)."""

import re

import pytest
from django.test import Client


@pytest.mark.django_db
def test_api_docs_use_no_cdn() -> None:
    body = Client().get("/api/docs/").content.decode()
    sources = re.findall(r'(?:src|href)="([^"]+)"', body)
    assert sources, body[:300]
    assert all(s.startswith("/") for s in sources), sources
    assert any("swagger-ui" in s for s in sources)
