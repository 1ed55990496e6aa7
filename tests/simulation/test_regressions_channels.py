"""The simulation's counterexamples from the email service and the clinic's systems (issue 29),
replayed step by step as tests/simulation/test_regressions.py replays issue 27's
(docs/SIMULATION-FINDINGS.md, "The email service and the clinic's systems")."""


def test_email_service_report_is_announced_to_the_clinics_systems(replay):
    """CI run of the simulation with the email service (derandomized), "events at least once":
    the service's `opened` moved the email row's delivery status to read, and no
    notification.delivery event reached the clinic's endpoint (Twilio's receipts announce theirs)."""
    replay.first_booking(patient=0, ahead=25)
    replay.sweep()
    replay.esp_event(i=0, event="delivered", esp="postmark", again=False)
    replay.esp_event(i=0, event="opened", esp="mailgun", again=False)
    replay.finish()


def test_bounce_of_an_email_whose_outcome_was_never_written_stops_email_to_the_address(replay):
    """Soak seed 2063575571377661227, "undeliverable address": the email service took row 1's
    email and bounced it while the worker that sent it had not written the outcome (it died);
    the bounce named a message id no row had, so it was dropped, and the row's retry emailed the
    dead address again, as did the next booking's email."""
    replay.first_booking(patient=3, ahead=25)
    replay.worker_claims(w=0, limit=1)
    replay.worker_sends(w=0)
    replay.esp_event(i=0, event="bounced", esp="postmark", again=False)
    replay.worker_dies(w=0)
    replay.advance_clock(seconds=61)
    replay.reclaim()
    replay.sweep()
    replay.book(patient=3, ahead=50)
    replay.sweep()
    replay.finish()


def test_email_delivered_before_its_outcome_was_written_is_not_sent_again(replay):
    """As above with `delivered` (Mailgun's): the report was dropped, and the row whose email
    the service had delivered was sent again when its lease ran out."""
    replay.first_booking(patient=3, ahead=25)
    replay.worker_claims(w=0, limit=1)
    replay.worker_sends(w=0)
    replay.esp_event(i=0, event="delivered", esp="mailgun", again=False)
    replay.worker_dies(w=0)
    replay.advance_clock(seconds=61)
    replay.reclaim()
    replay.sweep()
    replay.finish()


def test_email_delivered_after_its_row_died_of_its_lease_is_not_fallen_back_from(replay):
    """As above, on the last attempt: the row died of its lease and its SMS fallback was planned;
    the service's delivered report for the email must settle the row and stop the fallback."""
    replay.first_booking(patient=6, ahead=25)
    for _ in range(2):
        replay.worker_claims(w=0, limit=1)
        replay.worker_sends(w=0)
        replay.worker_dies(w=0)
        replay.advance_clock(seconds=61)
        replay.reclaim()
    replay.esp_event(i=0, event="delivered", esp="postmark", again=False)
    replay.sweep()
    replay.finish()


def test_email_sent_again_past_a_stalled_workers_lease_is_the_counted_window(replay):
    """Soak seed 5020017886345453327, "at most once", the simulation's own defect: a worker
    stalled holding its email's outcome past the lease, and the sweep sent the row again; the
    allowed window (SMTP has nothing to look up) was counted only once the worker died."""
    replay.first_booking(patient=0, ahead=1.5)
    replay.worker_claims(limit=2, w=0)
    replay.worker_sends(w=0)
    replay.worker_sends(w=0)
    replay.advance_clock(seconds=61)
    replay.reclaim()
    replay.sweep()
    replay.finish()


def test_bounce_of_an_earlier_copy_of_an_email_marks_the_address(replay):
    """Soak seed 5020017886345453327, "undeliverable address": a worker stalled holding its
    email's outcome past the lease and the row was emailed again; the service bounced the first
    copy, whose id the row does not record, so the bounce was dropped and the next booking's
    email went to the dead address."""
    replay.first_booking(patient=6, ahead=25)
    replay.worker_claims(limit=1, w=0)
    replay.worker_sends(w=0)
    replay.advance_clock(seconds=61)
    replay.reclaim()
    replay.sweep()
    replay.esp_event(i=0, event="bounced", esp="postmark", again=False)
    replay.book(patient=6, ahead=50)
    replay.sweep()
    replay.finish()


def test_complaint_while_a_worker_holds_the_patients_next_email_stops_it(replay):
    """Written from the simulation's "email consent" invariant: a worker claimed the patient's
    next booking confirmation; the patient then marked an earlier email as spam (opted out of
    email); the worker's send went out on its claim's read of the patient."""
    replay.first_booking(patient=6, ahead=25)
    replay.sweep()
    replay.book(patient=6, ahead=50)
    replay.worker_claims(w=0, limit=3)
    replay.esp_event(i=0, event="complained", esp="postmark", again=False)
    replay.worker_sends(w=0)
    replay.finish()
