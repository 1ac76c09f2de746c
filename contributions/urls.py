from django.urls import path

from . import autodebit_views, self_views, views
from .commissions import views as commissions
from .field import views as field
from .follow_up import views as follow_up

app_name = "contributions"

urlpatterns = [
    # the agents' offline field app (contributions/field)
    path("field/", field.app, name="field_app"),
    path("field/manifest.webmanifest", field.manifest, name="field_manifest"),
    path("field/sw.js", field.service_worker, name="field_sw"),
    path("field/api/session/", field.session, name="field_session"),
    path("field/api/enrol/", field.enrol, name="field_enrol"),
    path("field/data/reference.json", field.reference_data, name="field_reference"),
    path("field/data/nik-prefixes.json", field.nik_prefixes, name="field_nik_prefixes"),
    path("field/data/participants.json", field.participants, name="field_participants"),
    path("field/data/regions/<str:code>.json", field.regions, name="field_regions"),
    # the follow-up queue (contributions/follow_up): /arrears/ since before it was a queue
    path("arrears/", follow_up.queue, name="arrears"),
    path("participants/<int:pk>/follow-up/", follow_up.record, name="follow_up_record"),
    path("participants/<int:pk>/payments/cash/", views.record_cash, name="record_cash"),
    path("participants/<int:pk>/ledger/", views.ledger, name="ledger"),
    path("payments/<int:pk>/receipt/", views.receipt, name="receipt"),
    path("reminders/today/", views.reminders_today, name="reminders_today"),
    path("reminders/uplift/", views.reminders_uplift, name="reminders_uplift"),
    path(
        "participants/<int:pk>/reminders/opt-out/",
        views.reminder_opt_out,
        name="reminder_opt_out",
    ),
    path("reminders/gateway/callback/", views.gateway_callback, name="gateway_callback"),
    path("b/<str:token>/", views.pay_link, name="pay_link"),
    # the participant's own pages (no staff login: contributions/self_views.py)
    path("me/", self_views.me, name="me"),
    path("me/login/", self_views.me_start, name="me_start"),
    path("me/code/", self_views.me_code, name="me_code"),
    path("me/logout/", self_views.me_logout, name="me_logout"),
    path("me/pay/", self_views.me_pay, name="me_pay"),
    path("me/receipts/<int:pk>/", self_views.me_receipt, name="me_receipt"),
    path("me/reminders/", self_views.me_reminders, name="me_reminders"),
    path("me/autodebit/", self_views.me_autodebit, name="me_autodebit"),
    path("participants/<int:pk>/autodebit/", autodebit_views.autodebit_panel, name="autodebit"),
    # Perisai commissions (contributions/commissions)
    path("commissions/", commissions.commissions, name="commissions"),
    path("commissions/<int:pk>/", commissions.statement, name="commission_statement"),
    path("commissions/<int:pk>/approve/", commissions.approve, name="commission_approve"),
    path("commissions/<int:pk>/paid/", commissions.pay, name="commission_paid"),
    path(
        "commissions/export/<str:month>.<str:fmt>",
        commissions.export,
        name="commission_export",
    ),
    path("participants/<int:pk>/sponsors/", views.sponsor_consent, name="sponsor_consent"),
    path(
        "participants/<int:pk>/sponsors/<int:sponsor_pk>/withdraw/",
        views.sponsor_consent_withdraw,
        name="sponsor_consent_withdraw",
    ),
]
