"""REST API v1 (docs/api.md). The reporting app adds its own paths under reports/."""

from django.urls import path, re_path

from contributions.api import autodebit, bills
from contributions.api import views as contributions
from enrollment.api import views as enrollment

app_name = "api"

urlpatterns = [
    path("regions/", enrollment.RegionListApi.as_view(), name="regions"),
    path("occupations/", enrollment.OccupationListApi.as_view(), name="occupations"),
    path("quotes/", contributions.QuoteApi.as_view(), name="quotes"),
    path("dues/", contributions.DueApi.as_view(), name="dues"),
    path("participants/", enrollment.ParticipantListApi.as_view(), name="participants"),
    path("participants/bulk/", enrollment.ParticipantBulkApi.as_view(), name="participants-bulk"),
    path("participants/<int:pk>/", enrollment.ParticipantDetailApi.as_view(), name="participant"),
    path(
        "participants/<int:pk>/ledger/",
        contributions.LedgerApi.as_view(),
        name="participant-ledger",
    ),
    path("payments/", contributions.PaymentCreateApi.as_view(), name="payments"),
    path("payments/batches/", contributions.BatchCreateApi.as_view(), name="payment-batches"),
    path("payment-codes/", bills.PaymentCodeCreateApi.as_view(), name="payment-codes"),
    path("bills/<str:code>/", bills.BillInquiryApi.as_view(), name="bill"),
    path("bills/<str:code>/payments/", bills.BillPaymentApi.as_view(), name="bill-payments"),
    path(
        "bills/<str:code>/payments/<str:reference>/reversal/",
        bills.BillReversalApi.as_view(),
        name="bill-payment-reversal",
    ),
    path(
        "autodebit/mandates/<int:pk>/cancellation/",
        autodebit.MandateCancellationApi.as_view(),
        name="autodebit-mandate-cancellation",
    ),
    path("sync/participants/", enrollment.ParticipantSyncApi.as_view(), name="sync-participants"),
    path("sync/payments/", contributions.PaymentSyncApi.as_view(), name="sync-payments"),
]

# Last: anything else under /api/v1/ is a JSON 404 (not the site's HTML page). Apps that add
# paths (reporting) put theirs before this.
fallback = [re_path(r"^(?P<rest>.*)$", enrollment.NotFoundApi.as_view(), name="not-found")]
