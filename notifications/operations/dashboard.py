from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse

from notifications.operations.dashboard_chart import hourly_chart
from notifications.operations.monitoring import dashboard_figures
from notifications.operations.twilio_dashboard import twilio_figures


def dashboard(request):
    """Staff dashboard (wrapped in admin_view by the urls): the last day at a glance, for staff
    allowed to view notifications."""
    if not request.user.has_perm("notifications.view_notification"):
        raise PermissionDenied
    figures = dashboard_figures()
    rows = [
        (status, [figures["by_status"][status].get(channel, 0) for channel in figures["channels"]])
        for status in figures["by_status"]
    ]
    context = {
        **admin.site.each_context(request),
        "title": "Notifications: the last 24 hours",
        "figures": figures,
        "failure_percent": round(figures["failure_rate"] * 100, 1),
        "rows": [(status, cells, sum(cells)) for status, cells in rows],
        "twilio": twilio_figures(figures["hours"]),
        "chart": hourly_chart(figures["hours"]),
    }
    return TemplateResponse(request, "admin/notifications/dashboard.html", context)
