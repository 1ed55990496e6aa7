from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_login_failed
from django.db.models.signals import pre_save
from django.dispatch import receiver
from knox.models import AuthToken

from .throttles import SIGN_IN_THROTTLES


@receiver(user_login_failed)
def count_failed_sign_in(sender, credentials, request=None, **kwargs):
    if request is not None:
        for throttle in SIGN_IN_THROTTLES:
            throttle().record_failure(request)


@receiver(pre_save, sender=get_user_model())
def end_tokens_on_password_change(sender, instance, raw=False, **kwargs):
    """A new password ends every token of the account, whoever changed it (API, admin, command):
    a token taken with the old password must not outlive it."""
    if raw or instance.pk is None:
        return
    stored = sender.objects.filter(pk=instance.pk).values_list("password", flat=True).first()
    if stored is not None and stored != instance.password:
        AuthToken.objects.filter(user_id=instance.pk).delete()
