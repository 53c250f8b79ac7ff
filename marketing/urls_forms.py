"""Public lead capture forms (no login): /forms/<org-slug>/<form-slug>/."""

app_name = "forms"
urlpatterns: list = []
