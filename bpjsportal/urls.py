from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.i18n import JavaScriptCatalog
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from reporting.api import ProgressApi

from . import two_factor
from .access import PortalAdminSite
from .core import health, metrics

# The back office needs the second factor and the admin role (docs/security.md).
admin.site.__class__ = PortalAdminSite

urlpatterns = [
    # Before any other api/ include (the API branch adds its router below).
    path("api/v1/reports/progress/", ProgressApi.as_view(), name="api-reports-progress"),
    path("health/live/", health.live, name="health-live"),
    path("health/ready/", health.ready, name="health-ready"),
    path("health/workers/", health.workers, name="health-workers"),
    path("metrics", metrics.view, name="metrics"),  # Prometheus, bearer token
    path("admin/", admin.site.urls),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("login/otp/", two_factor.verify, name="otp-verify"),
    path("login/otp/setup/", two_factor.setup, name="otp-setup"),
    path("login/otp/backup-codes/", two_factor.backup_codes, name="otp-backup-codes"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("api/v1/", include("bpjsportal.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # Swagger UI's initialiser is served as a script of its own (CSP: no inline scripts).
    path(
        "api/docs/",
        SpectacularSwaggerSplitView.as_view(
            url_name="api-schema", template_name="api/swagger_ui.html"
        ),
        name="api-docs",
    ),
    path("i18n/", include("django.conf.urls.i18n")),
    path("jsi18n/", JavaScriptCatalog.as_view(), name="javascript-catalog"),
    path("reports/", include("reporting.urls")),
    path("", include("contributions.urls")),
    path("", include("enrollment.urls")),
    # Keep last: any other /api/v1/ path is a JSON 404 (API paths go in bpjsportal/api_urls.py).
    path("api/v1/", include(("bpjsportal.api_urls_fallback", "api-fallback"))),
]

handler400 = "bpjsportal.core.errors.bad_request"
handler500 = "bpjsportal.core.errors.server_error"
