"""Messages: the clinic's templates and their store and checks, rendering in the patient's language,
calendar invitations, previews."""
