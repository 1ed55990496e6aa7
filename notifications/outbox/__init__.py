"""The outbox: the notification row and its states, claims and leases, planning, delivery and
dispatch to the broker."""
