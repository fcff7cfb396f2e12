from django.urls import path

from five import views

urlpatterns = [
    path("", views.index),
    path("version/", views.version),
]
