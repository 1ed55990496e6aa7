from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt


@csrf_exempt  # as every API view is: a POST to a wrong path is a 404, not a CSRF failure
def api_not_found(request):
    """An unknown path under /api/ answers in JSON, as an unknown row does (the schema's 404)."""
    return JsonResponse({"detail": "Not found."}, status=404)
