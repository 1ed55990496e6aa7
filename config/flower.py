"""Flower never starts open in production: with DJANGO_DEBUG off it needs a `user:password` in
FLOWER_BASIC_AUTH (or --basic-auth), or an OAuth login (--auth). Flower shows every task's
arguments and can revoke tasks and shut workers down. Run from flowerconfig.py, which Flower reads
at start-up, after its environment and command line."""


def basic_auth_problem(entries, oauth=""):
    """Why Flower's login would let anyone in, or None: entries are its basic_auth option's values."""
    if oauth:
        return None
    if not entries:
        return "FLOWER_BASIC_AUTH is not set"
    for entry in entries:
        user, _, password = (entry or "").partition(":")
        if not (user.strip() and password.strip()):
            return f"FLOWER_BASIC_AUTH has an entry without a user or a password ({user or 'empty'!s}:…)"
    return None


def refuse_open_flower():
    from django.conf import settings
    from tornado.options import options

    if settings.DEBUG:
        return
    problem = basic_auth_problem(options.basic_auth, options.auth)
    if problem:
        raise SystemExit(f"{problem}: Flower needs user:password when DJANGO_DEBUG is off.")
