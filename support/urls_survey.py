"""The public survey page, mounted at /survey/ (crm/urls.py): no login, the signed token names the survey."""

from django.urls import path

from support.views import surveys

app_name = "survey"

urlpatterns = [
    path("<str:token>/", surveys.answer, name="answer"),
]
