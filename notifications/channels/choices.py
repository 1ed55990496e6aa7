"""A row's channel as a model field's choices: the registry's channels, by name and label."""

from django.db import models

from . import CHANNELS

Channel = models.TextChoices("Channel", [(name.upper(), (name, channel.label)) for name, channel in CHANNELS.items()])
