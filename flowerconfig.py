"""Flower's configuration file, read from the directory it starts in (compose and `make run`
name it with --conf): refuses to start without a password when DJANGO_DEBUG is off."""

from config.flower import refuse_open_flower

refuse_open_flower()
