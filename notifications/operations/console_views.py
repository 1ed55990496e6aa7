"""The console's pages (wrapped in admin_view by the urls, so only signed-in staff reach them):
the home staff land on, the patient search, a patient's story, and the retry and cancel buttons."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.http import require_POST

from appointments.models import Patient
from appointments.trail import announce
from notifications.operations import console_permissions as may
from notifications.operations.console import channel_label, needs_attention
from notifications.operations.dashboard_chart import hourly_chart
from notifications.operations.monitoring import dashboard_figures
from notifications.operations.patient_story import masked, patient_story, search_patients
from notifications.outbox.dispatch import enqueue
from notifications.outbox.models import Notification, NotificationStatus


def console_home(request):
    """The admin's index: today's figures and what needs attention, above the admin's app list.
    Staff who may not read the rows see the app list alone, as the stock index would show it."""
    context = {**admin.site.each_context(request), "title": "Console", "app_list": admin.site.get_app_list(request)}
    if may.can_view_rows(request.user):
        figures = dashboard_figures()
        totals = {status: sum(by_channel.values()) for status, by_channel in figures["by_status"].items()}
        context.update(
            figures=figures,
            totals=totals,
            failure_percent=round(figures["failure_rate"] * 100, 1),
            chart=hourly_chart(figures["hours"]),
            attention=needs_attention(),
            can_retry=may.can_retry(request.user),
            can_cancel=may.can_cancel(request.user),
            can_view_story=may.can_view_story(request.user),
        )
    return TemplateResponse(request, "admin/console/home.html", context)


def _require_story_permission(request):
    if not may.can_view_story(request.user):
        raise PermissionDenied


def patient_search(request):
    _require_story_permission(request)
    query = request.GET.get("q", "")
    found = [(patient, masked(patient)) for patient in search_patients(query)]
    context = {**admin.site.each_context(request), "title": "Find a patient", "query": query, "found": found}
    return TemplateResponse(request, "admin/console/patient_search.html", context)


def patient_page(request, pk):
    _require_story_permission(request)
    patient = get_object_or_404(Patient, pk=pk)
    announce(request, [patient.pk], "console.patient")  # a staff read of their messages: in the trail
    context = {
        **admin.site.each_context(request),
        "title": f"{patient.name}: every message and answer",
        "patient": patient,
        "chosen": [channel_label(name) for name in patient.channels],
        "opted_out": [channel_label(name) for name in patient.opted_out],
        "events": patient_story(patient),
    }
    return TemplateResponse(request, "admin/console/patient_story.html", context)


@require_POST
def retry_row(request, pk):
    """Staff send a failed row again, with a fresh set of attempts."""
    if not may.can_retry(request.user):
        raise PermissionDenied
    row = get_object_or_404(Notification, pk=pk)
    if Notification.objects.filter(pk=row.pk).retry():
        enqueue([row.pk])
        messages.success(request, f"Notification {row.pk} queued again.")
    else:
        messages.warning(request, f"Notification {row.pk} had not failed; nothing to retry.")
    return redirect(reverse("console"))


@require_POST
def cancel_row(request, pk):
    """Staff withdraw a row still to go out (pending, or failed and waiting for a retry)."""
    if not may.can_cancel(request.user):
        raise PermissionDenied
    row = get_object_or_404(Notification, pk=pk)
    if Notification.objects.filter(pk=row.pk).withdraw():
        messages.success(request, f"Notification {row.pk} cancelled.")
    else:
        status = NotificationStatus(row.status).label.lower()
        messages.warning(request, f"Notification {row.pk} is {status}; only a row still to go out can be cancelled.")
    return redirect(reverse("console"))
