from django.urls import path

from . import views

app_name = "contributions"

urlpatterns = [
    path("arrears/", views.arrears, name="arrears"),
    path("participants/<int:pk>/payments/cash/", views.record_cash, name="record_cash"),
    path("participants/<int:pk>/ledger/", views.ledger, name="ledger"),
    path("payments/<int:pk>/receipt/", views.receipt, name="receipt"),
]
