from knox.models import AuthToken


def issue_token(user):
    """A new API key for the user, as a sign-in gives (knox keeps only its digest)."""
    return AuthToken.objects.create(user)[1]
