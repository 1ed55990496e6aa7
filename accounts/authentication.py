from django.utils import timezone
from knox.auth import TokenAuthentication as KnoxTokenAuthentication
from knox.signals import token_expired


class TokenAuthentication(KnoxTokenAuthentication):
    """knox's token authentication, minus its sweep of the user's other tokens: knox read every
    token the user holds on every request (a query, and rows that grow with each sign-in);
    expired tokens go in the nightly purge instead (accounts.tokens.purge_expired_tokens)."""

    def _cleanup_token(self, auth_token):
        if auth_token.expiry is None or auth_token.expiry >= timezone.now():
            return False
        username = auth_token.user.get_username()
        auth_token.delete()
        token_expired.send(sender=self.__class__, username=username, source="auth_token")
        return True
