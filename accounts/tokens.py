from django.utils import timezone
from knox.models import AuthToken


def issue_token(user):
    """A new API key for the user, as a sign-in gives (knox keeps only its digest)."""
    return AuthToken.objects.create(user)[1]


def purge_expired_tokens(now=None):
    """Delete every expired token; returns how many went."""
    return AuthToken.objects.filter(expiry__lt=now or timezone.now()).delete()[0]
