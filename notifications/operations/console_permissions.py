"""Who may do what on the console, in one place: the console asks these, never has_perm itself."""

# Retrying a row sends a message again: a permission of its own, as the API's retry checks it.
RETRY_PERMISSION = "notifications.retry_notification"
# Cancelling withdraws a row still to go out, as the admin's "Cancel selected" action does.
CANCEL_PERMISSION = "notifications.change_notification"
# Reading the rows, and a patient's story: every message they were sent and what they wrote.
VIEW_ROWS = ("notifications.view_notification",)
VIEW_STORY = ("appointments.view_patient", "notifications.view_notification")


def can_view_rows(user):
    return user.has_perms(VIEW_ROWS)


def can_view_story(user):
    return user.has_perms(VIEW_STORY)


def can_retry(user):
    return user.has_perm(RETRY_PERMISSION)


def can_cancel(user):
    return user.has_perm(CANCEL_PERMISSION)
