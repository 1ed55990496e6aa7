from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from accounts.views import SignInView, admin_login
from appointments.records import LocationViewSet, ProviderViewSet
from appointments.views import AppointmentViewSet, PatientViewSet
from config.errors import api_not_found
from config.health import healthz
from config.text_fields import refuse_numbers_as_text
from integrations.api import WebhookEndpointViewSet
from notifications.inbound.webhooks import twilio_inbound, twilio_status
from notifications.messages.api import MessageTemplateRevisionViewSet, MessageTemplateViewSet
from notifications.operations.dashboard import dashboard
from notifications.operations.metrics import metrics_view
from notifications.outbox.api import AppointmentNotificationsView, InboxViewSet, NotificationViewSet

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

urlpatterns = [
    path("admin/notifications/dashboard/", admin.site.admin_view(dashboard), name="notifications-dashboard"),
    path("admin/login/", admin_login, name="admin-login"),
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics_view, name="metrics"),
    path("webhooks/twilio/status/", twilio_status, name="twilio-status"),
    path("webhooks/twilio/inbound/", twilio_inbound, name="twilio-inbound"),
    path("api/auth/token/", SignInView.as_view(), name="api-token"),
    path(
        "api/appointments/<int:pk>/notifications/",
        AppointmentNotificationsView.as_view(),
        name="appointment-notifications",
    ),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/", include(router.urls)),
    # Any other path under /api/ answers the API's JSON 404, whatever DEBUG says.
    re_path(r"^api/", api_not_found),
]
