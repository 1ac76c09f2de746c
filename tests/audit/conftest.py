"""The API fixtures (clients of each scope with their tokens) for the audit and log tests."""

from tests.api.conftest import (  # noqa: F401 - fixtures used by this folder's tests
    admin_api,
    channel_api,
    make_caller,
    partners,
    sponsor_api,
)
