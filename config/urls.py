from django.conf import settings
from django.contrib import admin
from django.contrib.auth.views import LogoutView
from django.urls import include, path, re_path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from accounts.views import SignInView, admin_login
from appointments.patient_link import appointment_link
from appointments.records import LocationViewSet, ProviderViewSet
from appointments.views import AppointmentViewSet, PatientViewSet
from config.errors import api_not_found
from config.health import healthz
from config.text_fields import refuse_numbers_as_text
from integrations.api import WebhookEndpointViewSet
from notifications.inbound.webhooks import twilio_inbound, twilio_status
from notifications.messages.api import MessageTemplateRevisionViewSet, MessageTemplateViewSet
from notifications.operations import console_views
from notifications.operations.dashboard import dashboard
from notifications.operations.metrics import metrics_view
from notifications.outbox.api import AppointmentNotificationsView, InboxViewSet, NotificationViewSet
from privacy.views import AccessLogViewSet, EraseView, ExportView

# Here, where every request (API or admin) is routed, rather than at start-up: a process that
# answers none (the worker, cron's management command) need not import DRF's serializers.
refuse_numbers_as_text()

router = DefaultRouter()
router.register("patients", PatientViewSet, basename="patient")
router.register("appointments", AppointmentViewSet, basename="appointment")
router.register("notifications", NotificationViewSet, basename="notification")
router.register("inbox", InboxViewSet, basename="inbox")
router.register("providers", ProviderViewSet, basename="provider")
router.register("locations", LocationViewSet, basename="location")
router.register("templates", MessageTemplateViewSet, basename="template")
router.register("template-revisions", MessageTemplateRevisionViewSet, basename="template-revision")
router.register("webhook-endpoints", WebhookEndpointViewSet, basename="webhook-endpoint")
router.register("access-log", AccessLogViewSet, basename="access-log")

# "View site" and the bare host lead to the console, the admin's index; the header names the clinic.
admin.site.site_url = "/admin/"
admin.site.site_header = f"{settings.CLINIC_NAME}: notifications"
admin.site.site_title = settings.CLINIC_NAME
# The console's home lists every section; the side bar's copy of it took a quarter of each list's width.
admin.site.enable_nav_sidebar = False
console = [
    path("admin/", admin.site.admin_view(console_views.console_home), name="console"),
    path("admin/console/patients/", admin.site.admin_view(console_views.patient_search), name="console-patients"),
    path("admin/console/patients/<int:pk>/", admin.site.admin_view(console_views.patient_page), name="console-patient"),
    path("admin/console/rows/<int:pk>/retry/", admin.site.admin_view(console_views.retry_row), name="console-retry"),
    path("admin/console/rows/<int:pk>/cancel/", admin.site.admin_view(console_views.cancel_row), name="console-cancel"),
]
# The browsable API's "Log in" link (DRF looks for these names): the admin's sign-in, with its
# throttles, rather than DRF's own unthrottled login view.
api_auth = (
    [path("login/", admin_login, name="login"), path("logout/", LogoutView.as_view(), name="logout")],
    "rest_framework",
)

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/"), name="home"),
    *console,
    path("admin/notifications/dashboard/", admin.site.admin_view(dashboard), name="notifications-dashboard"),
    path("admin/login/", admin_login, name="admin-login"),
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics_view, name="metrics"),
    path("webhooks/twilio/status/", twilio_status, name="twilio-status"),
    path("webhooks/twilio/inbound/", twilio_inbound, name="twilio-inbound"),
    path("api-auth/", include(api_auth)),
    # Email services' tracking webhooks, verified by anymail: /anymail/<esp>/tracking/.
    path("anymail/", include("anymail.urls")),
    # The page a patient's link opens (appointments/links.py): no sign-in, the token is the key.
    path("a/<str:token>/", appointment_link, name="appointment-link"),
    path("api/auth/token/", SignInView.as_view(), name="api-token"),
    path(
        "api/appointments/<int:pk>/notifications/",
        AppointmentNotificationsView.as_view(),
        name="appointment-notifications",
    ),
    path("api/patients/<int:pk>/export/", ExportView.as_view(), name="patient-export"),
    path("api/patients/<int:pk>/erase/", EraseView.as_view(), name="patient-erase"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/", include(router.urls)),
    # Any other path under /api/ answers the API's JSON 404, whatever DEBUG says.
    re_path(r"^api/", api_not_found),
]
