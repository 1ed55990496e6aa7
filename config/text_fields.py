"""Text fields take text only. DRF's CharField turns a number into its text (`0` becomes "0"),
so a body the schema refuses (a string expected) would be accepted; every CharField of the API,
declared or mapped from a model, refuses a number as it refuses a list. Applied once, by the
URLconf (config/urls.py) that routes every request before a view or serializer runs, so no
serializer can forget it."""

from rest_framework import serializers

_to_internal_value = serializers.CharField.to_internal_value


def _text_only(field, data):
    if not isinstance(data, str):
        field.fail("invalid")
    return _to_internal_value(field, data)


def refuse_numbers_as_text():
    serializers.CharField.to_internal_value = _text_only
