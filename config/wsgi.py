import os
from importlib import import_module

from django.conf import settings
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()
# The URLconf, and the views and serializers it imports, load now rather than on each process's
# first request: gunicorn --preload forks its workers after this module, so they share them.
import_module(settings.ROOT_URLCONF)
