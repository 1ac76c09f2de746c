"""Included after every app's API paths: any other /api/v1/ path is a JSON 404."""

from bpjsportal.api_urls import fallback

urlpatterns = fallback
