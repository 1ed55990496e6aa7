"""python -m bench.peer: point Django at the benchmark's database and broker, then run it."""

import os
import sys

import django

from bench.peer.options import parse_args

options = parse_args(sys.argv[1:])
os.environ.update(options.django_env)
django.setup()

from bench.peer.run import run  # noqa: E402 - only once Django is set up

run(options)
