"""URLs of the project. Domain apps add theirs here as they arrive."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from crm import views
from crm.admin import site as admin_site

users_patterns = (
    [
        path("", views.user_list, name="list"),
        path("new/", views.user_create, name="create"),
        path("<uuid:pk>/", views.user_edit, name="edit"),
        path("<uuid:pk>/active/", views.user_set_active, name="set_active"),
    ],
    "users",
)
audit_patterns = (
    [
        path("", views.audit_log, name="list"),
        path("<uuid:pk>/", views.audit_entry, name="detail"),
    ],
    "audit",
)
notification_patterns = (
    [
        path("", views.notification_list, name="list"),
        path("bell/", views.notification_bell, name="bell"),
        path("read-all/", views.notification_read_all, name="read_all"),
        path("<uuid:pk>/open/", views.notification_open, name="open"),
    ],
    "notifications",
)

auth_patterns = [
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("password/change/", views.PasswordChangeView.as_view(), name="password_change"),
    path("password/change/done/", views.PasswordChangeDoneView.as_view(), name="password_change_done"),
    path("password/reset/", views.PasswordResetView.as_view(), name="password_reset"),
    path("password/reset/done/", auth_views.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path(
        "password/reset/<uidb64>/<token>/",
        views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "password/reset/complete/",
        auth_views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
]

urlpatterns = [
    path("", views.home, name="home"),
    path("accounts/", include(auth_patterns)),
    path("profile/", views.profile, name="profile"),
    path("search/", views.global_search, name="search"),
    path("notifications/", include(notification_patterns)),
    path("settings/organization/", views.organization_settings, name="organization"),
    path("settings/users/", include(users_patterns)),
    path("settings/audit/", include(audit_patterns)),
    path("customers/", include("customers.urls")),
    path("sales/", include("sales.urls")),
    path("support/", include("support.urls")),
    path("kb/", include("support.urls_public")),  # the public knowledge base (no login)
    path("survey/", include("support.urls_survey")),  # CSAT / NPS survey answers (no login, signed link)
    path("marketing/", include("marketing.urls")),
    path("m/", include("marketing.urls_tracking")),  # email tracking: open pixel, clicks, unsubscribe
    path("forms/", include("marketing.urls_forms")),  # public lead capture forms (no login)
    path("anymail/", include("marketing.webhooks")),
    path("privacy/", include("compliance.urls")),  # privacy requests, consent, access log, retention
    path(
        "privacy-request/", include("compliance.urls_public")
    ),  # data subjects' requests (no login)  # email provider delivery webhooks (shared secret)
    path("healthz", views.healthz, name="healthz"),
    path("admin/", admin_site.urls),
]

handler403 = "crm.errors.permission_denied"
handler404 = "crm.errors.not_found"
handler500 = "crm.errors.server_error"

__all__ = ["admin", "urlpatterns"]
