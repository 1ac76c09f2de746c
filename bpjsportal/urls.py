from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.i18n import JavaScriptCatalog

from reporting.api import ProgressApi

urlpatterns = [
    # Before any other api/ include (the API branch adds its router below).
    path("api/v1/reports/progress/", ProgressApi.as_view(), name="api-reports-progress"),
    path("admin/", admin.site.urls),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("jsi18n/", JavaScriptCatalog.as_view(), name="javascript-catalog"),
    path("reports/", include("reporting.urls")),
    path("", include("contributions.urls")),
    path("", include("enrollment.urls")),
]

handler400 = "bpjsportal.errors.bad_request"
