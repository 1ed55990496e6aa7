"""Failed sign-ins, counted per account and per address, in Django's cache (shared by every web
process). Only failures count, so a clinic that signs in often is never refused; once a key holds
its rate of failures, every sign-in for it (even with the right password) answers 429 with
Retry-After until the oldest failure leaves the window. The token endpoint checks them as DRF
throttles; the admin login checks them in accounts/views.py; both record failures through
Django's `user_login_failed` signal (accounts/receivers.py)."""

import hashlib

from rest_framework.throttling import SimpleRateThrottle


class FailedSignIns(SimpleRateThrottle):
    def get_cache_key(self, request, view=None):
        ident = self.ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident} if ident else None

    def allow_request(self, request, view=None):
        self.key = self.get_cache_key(request)
        if self.key is None:
            return True
        self.now = self.timer()
        self.history = self.recent(self.key)
        return len(self.history) < self.num_requests

    def record_failure(self, request):
        key = self.get_cache_key(request)
        if key is not None:
            self.cache.set(key, [self.timer(), *self.recent(key)], self.duration)

    def recent(self, key):
        """The key's failures inside the window, newest first (SimpleRateThrottle.wait reads the last)."""
        now = self.timer()
        return [at for at in self.cache.get(key, []) if at > now - self.duration]


class FailedSignInsPerAccount(FailedSignIns):
    scope = "sign_in_account"

    def ident(self, request):
        data = getattr(request, "data", None) or request.POST
        username = data.get("username") if hasattr(data, "get") else None
        if not isinstance(username, str) or not username:
            return None
        # Usernames are matched case-insensitively (config/auth.py); hashed, a key is always safe.
        return hashlib.sha256(username.lower().encode()).hexdigest()


class FailedSignInsPerAddress(FailedSignIns):
    scope = "sign_in_address"

    def ident(self, request):
        return self.get_ident(request)


SIGN_IN_THROTTLES = (FailedSignInsPerAccount, FailedSignInsPerAddress)


def refusing(request):
    """The throttles that refuse this sign-in now (empty when it may go ahead)."""
    throttles = [throttle() for throttle in SIGN_IN_THROTTLES]
    return [throttle for throttle in throttles if not throttle.allow_request(request)]
