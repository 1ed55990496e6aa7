from django.conf import settings


def message_language(snapshot):
    """The language a row is written in: the patient's, as planned, if the service still
    offers it (settings.LANGUAGES), else the default language."""
    language = snapshot.get("language") or settings.LANGUAGE_CODE
    return language if language in dict(settings.LANGUAGES) else settings.LANGUAGE_CODE
