from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.i18n import JavaScriptCatalog
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from reporting.api import ProgressApi

urlpatterns = [
    # Before any other api/ include (the API branch adds its router below).
    path("api/v1/reports/progress/", ProgressApi.as_view(), name="api-reports-progress"),
    path("admin/", admin.site.urls),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("api/v1/", include("bpjsportal.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("jsi18n/", JavaScriptCatalog.as_view(), name="javascript-catalog"),
    path("reports/", include("reporting.urls")),
    path("", include("contributions.urls")),
    path("", include("enrollment.urls")),
    # Keep last: any other /api/v1/ path is a JSON 404 (API paths go in bpjsportal/api_urls.py).
    path("api/v1/", include(("bpjsportal.api_urls_fallback", "api-fallback"))),
]

handler400 = "bpjsportal.errors.bad_request"
handler500 = "bpjsportal.errors.server_error"
