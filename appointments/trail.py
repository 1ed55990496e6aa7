"""Reads of patients' data announced in one place: API views and admin pages mix these in, and
each successful read sends `patient_data_read` with the patients it showed (privacy/ records
staff reads in the access trail). A view names the patient of each object it shows with
`trail_patient` (an attribute path, `patient_id` by default)."""

from operator import attrgetter

from django.contrib.admin.utils import unquote

from .signals import patient_data_read


def announce(request, patient_ids, action):
    patient_data_read.send(sender=None, request=request, patient_ids=list(patient_ids), action=action)


class PatientDataReads:
    """For a DRF view: the objects a GET shows (a page of a list, or the one object) are announced
    once the answer is a success."""

    trail_patient = "patient_id"
    trail_action = None

    def _shown(self, objects):
        if self.request.method == "GET":
            getter = attrgetter(self.trail_patient)
            self._trail_ids = [*getattr(self, "_trail_ids", []), *(getter(o) for o in objects)]

    def paginate_queryset(self, queryset):
        page = super().paginate_queryset(queryset)
        self._shown(page if page is not None else queryset)
        return page

    def get_object(self):
        shown = super().get_object()
        self._shown([shown])
        return shown

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        ids = getattr(self, "_trail_ids", None)
        if ids and 200 <= response.status_code < 300:
            action = self.trail_action or f"{self.basename}.{self.action}"
            announce(request, ids, action)
        return response


class PatientDataPages:
    """For a ModelAdmin: its change page, shown (GET), announces the object's patient."""

    trail_patient = "patient_id"

    def change_view(self, request, object_id, form_url="", extra_context=None):
        response = super().change_view(request, object_id, form_url, extra_context)
        if request.method == "GET" and response.status_code == 200:
            shown = self.get_object(request, unquote(object_id))
            if shown is not None:
                announce(request, [attrgetter(self.trail_patient)(shown)], f"admin.{self.opts.model_name}.change")
        return response
