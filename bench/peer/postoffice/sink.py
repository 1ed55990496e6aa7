"""The SMTP sink both sides send to: aiosmtpd on a loopback port, counting connections and
messages by recipient. It answers on stdout to commands read from stdin: `reset` (forget the
counts) and `stats` (one JSON line). Usage: sink.py PORT."""

import collections
import json
import sys
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

lock = threading.Lock()
state = {"connections": 0, "messages": 0, "recipients": collections.Counter()}


class CountingSMTP(SMTP):
    def connection_made(self, transport):
        with lock:
            state["connections"] += 1
        super().connection_made(transport)


class Handler:
    async def handle_DATA(self, server, session, envelope):
        with lock:
            state["messages"] += 1
            state["recipients"].update(envelope.rcpt_tos)
        return "250 OK"


class CountingController(Controller):
    def factory(self):
        return CountingSMTP(self.handler, **self.SMTP_kwargs)


controller = CountingController(Handler(), hostname="127.0.0.1", port=int(sys.argv[1]))
controller.start()
print("ready", flush=True)
for line in sys.stdin:
    with lock:
        if line.strip() == "reset":
            state.update(connections=0, messages=0, recipients=collections.Counter())
            answer = "ok"
        else:
            recipients = state["recipients"]
            answer = json.dumps(
                {
                    "connections": state["connections"],
                    "messages": state["messages"],
                    "addresses": len(recipients),
                    "more_than_once": sum(1 for n in recipients.values() if n > 1),
                    "recipients": sorted(recipients) if line.strip() == "recipients" else None,
                }
            )
    print(answer, flush=True)
controller.stop()
