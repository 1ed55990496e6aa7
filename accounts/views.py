from django.contrib import admin
from django.http import JsonResponse
from drf_spectacular.utils import OpenApiExample, extend_schema
from knox.views import LoginView
from rest_framework import serializers
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.permissions import AllowAny

from .throttles import SIGN_IN_THROTTLES, refusing


class SignInResponseSerializer(serializers.Serializer):
    token = serializers.CharField()
    expiry = serializers.DateTimeField()


@extend_schema(
    request=AuthTokenSerializer,
    responses={200: SignInResponseSerializer},
    examples=[OpenApiExample("Staff", request_only=True, value={"username": "demo", "password": "demo-pass-123"})],
)
class SignInView(LoginView):
    """POST /api/auth/token/: `{username, password}` -> `{token, expiry}`; the token goes in
    `Authorization: Token <key>` until its expiry, or until the account's password changes."""

    authentication_classes = ()
    permission_classes = (AllowAny,)
    throttle_classes = SIGN_IN_THROTTLES
    serializer_class = AuthTokenSerializer

    def post(self, request, format=None):
        serializer = self.serializer_class(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        request.user = serializer.validated_data["user"]
        return super().post(request, format)


def admin_login(request, extra_context=None):
    """The admin's login, refused with 429 while the account or the address has failed too often."""
    if request.method == "POST" and (throttles := refusing(request)):
        wait = max(throttle.wait() or 1 for throttle in throttles)
        response = JsonResponse({"detail": "Too many failed sign-ins; try again later."}, status=429)
        response["Retry-After"] = str(int(wait) + 1)
        return response
    return admin.site.login(request, extra_context)
