"""The public knowledge base, mounted at /kb/ (crm/urls.py): no login, one organization per slug."""

from django.urls import path

from support.views import public_kb

app_name = "kb"

urlpatterns = [
    path("<slug:org_slug>/", public_kb.home, name="home"),
    path("<slug:org_slug>/<slug:slug>/", public_kb.article, name="article"),
    path("<slug:org_slug>/<slug:slug>/vote/", public_kb.vote, name="vote"),
]
