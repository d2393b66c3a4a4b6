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
    """E-mail over SMTP: a plain-text page for a phone."""

    channel = "email"

    def __init__(self, smtp_url: str, sender: str) -> None:
        self.server = parse_endpoint(smtp_url, SMTP_SCHEMES)
        self.sender = sender

    def request(self, action: str, facts: Facts, address: str) -> dict[str, Any]:
        """To, subject and body of the mail."""
        subject = f"[{SUBJECT[action]}] {facts.summary()}"[:200]
        body = facts.plain_text()
        if action != "trigger":
            body = f"{SUBJECT[action]} by {facts.actor or 'the rules (condition cleared)'}.\n\n" \
                   + body
        return {"to": address, "subject": subject, "body": body}

    async def send(self, request: dict[str, Any], delivery_id: int) -> Outcome:
        """Send it with smtplib, in a worker thread."""
        return await asyncio.to_thread(self._send, request, delivery_id)

    def _send(self, request: dict[str, Any], delivery_id: int) -> Outcome:
        message = EmailMessage()
        message["From"], message["To"] = self.sender, request["to"]
        message["Subject"] = request["subject"]
        message["Message-ID"] = f"<vitals-{delivery_id}@vitals-alerting>"  # same on a resend
        message.set_content(request["body"])
        server = self.server
        try:
            connect = smtplib.SMTP_SSL if server.scheme == "smtps" else smtplib.SMTP
            with connect(server.host, server.port, timeout=10) as smtp:
                if server.username:
                    smtp.login(server.username, server.password or "")
                refused = smtp.send_message(message)
            if refused:
                return Outcome(False, 550, f"refused: {refused}")
            return Outcome(True, 250, "sent")
        except smtplib.SMTPResponseException as exc:
            # 4xx is temporary (try again), 5xx permanent (bad address, refused)
            return Outcome(False, exc.smtp_code, str(exc.smtp_error), retry=exc.smtp_code < 500)
        except (smtplib.SMTPException, OSError) as exc:
            return Outcome(False, None, f"{type(exc).__name__}: {exc}", retry=True)
