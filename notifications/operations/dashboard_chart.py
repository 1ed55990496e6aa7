"""The dashboard's chart: sends and failures per hour over the last day, by channel, from the
attempt history, drawn as inline SVG by the server (no script, nothing fetched from elsewhere)."""

from datetime import timedelta

from django.db.models import Count
from django.db.models.functions import TruncHour
from django.utils import timezone

from notifications.outbox.models import Channel, NotificationAttempt, NotificationStatus

# One colour per channel, told apart in print and by the colour-blind (Okabe and Ito's palette).
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00"]
OUTCOMES = [(NotificationStatus.SENT, "Sent"), (NotificationStatus.FAILED, "Failed")]
WIDTH, BAR_WIDTH, PANEL_HEIGHT, LEFT, TOP, GAP = 760, 24, 120, 40, 24, 44


def hourly_sends(hours=24, now=None):
    """The last `hours` whole and current hours, oldest first: [(hour, {(channel, outcome): n})]."""
    now = now or timezone.now()
    end = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    start = end - timedelta(hours=hours)
    counts = (
        NotificationAttempt.objects.filter(
            finished_at__gte=start, finished_at__lt=end, outcome__in=[outcome for outcome, _ in OUTCOMES]
        )
        .annotate(hour=TruncHour("finished_at"))
        .values("hour", "notification__channel", "outcome")
        .annotate(n=Count("id"))
        .order_by()
    )
    by_hour = {start + timedelta(hours=i): {} for i in range(hours)}
    for row in counts:
        by_hour[row["hour"]][(row["notification__channel"], row["outcome"])] = row["n"]
    return list(by_hour.items())


def hourly_chart(hours=24, now=None):
    """The chart's geometry: a panel per outcome, a bar per hour stacked by channel, a tick every
    three hours, and the legend."""
    series = hourly_sends(hours, now)
    colours = dict(zip(Channel.values, PALETTE, strict=False))
    step = (WIDTH - LEFT) / hours
    panels = []
    for index, (outcome, title) in enumerate(OUTCOMES):
        base = TOP + index * (PANEL_HEIGHT + GAP) + PANEL_HEIGHT
        peak = max([sum(counts.get((c, outcome), 0) for c in Channel.values) for _, counts in series] + [1])
        bars = []
        for slot, (hour, counts) in enumerate(series):
            y = base
            for channel in Channel.values:
                n = counts.get((channel, outcome), 0)
                if not n:
                    continue
                height = n / peak * PANEL_HEIGHT
                y -= height
                bars.append(
                    {
                        "x": round(LEFT + slot * step + (step - BAR_WIDTH) / 2, 1),
                        "y": round(y, 1),
                        "height": round(height, 1),
                        "colour": colours[channel],
                        "title": f"{channel} {hour:%H}:00–{hour + timedelta(hours=1):%H}:00: {n} {outcome}",
                    }
                )
        panels.append({"title": title, "peak": peak, "top": base - PANEL_HEIGHT, "base": base, "bars": bars})
    ticks = [
        {"x": round(LEFT + slot * step + step / 2, 1), "label": f"{hour:%H}:00"}
        for slot, (hour, _) in enumerate(series)
        if slot % 3 == 0
    ]
    legend = [
        {"x": LEFT + i * 110, "channel": Channel(c).label, "colour": colours[c]} for i, c in enumerate(Channel.values)
    ]
    height = TOP + len(OUTCOMES) * (PANEL_HEIGHT + GAP) + 24
    return {
        "width": WIDTH,
        "height": height,
        "left": LEFT,
        "bar_width": BAR_WIDTH,
        "panels": panels,
        "ticks": ticks,
        "legend": legend,
        "legend_y": height - 10,
        "hours": hours,
    }
