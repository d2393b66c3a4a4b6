"""E-mail over SMTP (VITALS_SMTP_URL: smtp://host:port, smtps:// for TLS, user:pass@ for
AUTH), a plain-text body a nurse can act on. smtplib runs in a worker thread."""

from __future__ import annotations

import asyncio
import smtplib
from email.message import EmailMessage
from typing import Any

from alerting.notify.base import Facts, Notifier, Outcome
from vitals.settings import SMTP_SCHEMES, parse_endpoint

SUBJECT = {"trigger": "PAGE", "acknowledge": "Acknowledged", "resolve": "Resolved"}


class Email(Notifier):
    channel = "email"

    def __init__(self, smtp_url: str, sender: str) -> None:
        self.server = parse_endpoint(smtp_url, SMTP_SCHEMES)
        self.sender = sender

    def request(self, action: str, facts: Facts, address: str) -> dict[str, Any]:
        subject = f"[{SUBJECT[action]}] {facts.summary()}"[:200]
        body = facts.plain_text()
        if action != "trigger":
            body = f"{SUBJECT[action]} by {facts.actor or 'the rules (condition cleared)'}.\n\n" \
                   + body
        return {"to": address, "subject": subject, "body": body}

    async def send(self, request: dict[str, Any], delivery_id: int) -> Outcome:
        return await asyncio.to_thread(self._send, request, delivery_id)

    def _send(self, request: dict[str, Any], delivery_id: int) -> Outcome:
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = self.sender, request["to"], request["subject"]
        msg["Message-ID"] = f"<vitals-{delivery_id}@vitals-alerting>"  # same on a resend
        msg.set_content(request["body"])
        s = self.server
        try:
            cls = smtplib.SMTP_SSL if s.scheme == "smtps" else smtplib.SMTP
            with cls(s.host, s.port, timeout=10) as smtp:
                if s.username:
                    smtp.login(s.username, s.password or "")
                refused = smtp.send_message(msg)
            if refused:
                return Outcome(False, 550, f"refused: {refused}")
            return Outcome(True, 250, "sent")
        except smtplib.SMTPResponseException as exc:
            # 4xx is temporary (try again), 5xx permanent (bad address, refused)
            return Outcome(False, exc.smtp_code, str(exc.smtp_error), retry=exc.smtp_code < 500)
        except (smtplib.SMTPException, OSError) as exc:
            return Outcome(False, None, f"{type(exc).__name__}: {exc}", retry=True)
