from django.urls import path

from . import views

app_name = "enrollment"

urlpatterns = [
    path("", views.home, name="home"),
    path("register/", views.register, name="register"),
    path("register/check-nik/", views.check_nik, name="check_nik"),
    path("regions/options/", views.region_options, name="region_options"),
    path("participants/<int:pk>/", views.participant_detail, name="participant"),
    path("participants/<int:pk>/registered/", views.registered, name="registered"),
    path("participants/<int:pk>/card/", views.participant_card, name="card"),
]
