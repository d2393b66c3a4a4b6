"""E-mail over SMTP, a plain-text body a nurse can act on. smtplib runs in a worker thread.

VITALS_SMTP_URL (user:pass@ for AUTH):
- `smtp://host:port` upgrades the connection with STARTTLS before anything else (AUTH, the
  message); a server that does not offer STARTTLS, or whose certificate does not verify, gets
  nothing: the delivery fails and says so, and is not retried.
- `smtps://host:port` is TLS from the first byte (port 465).
- `smtp+insecure://host:port` sends in clear, credentials included: for a test server on
  loopback only.
Certificates are verified against the system's CAs (or the bundle in SSL_CERT_FILE), with the
host name of the URL."""

from __future__ import annotations

import asyncio
import smtplib
import ssl
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
            if server.scheme == "smtps":
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(server.host, server.port, timeout=10,
                                                      context=ssl.create_default_context())
            else:
                smtp = smtplib.SMTP(server.host, server.port, timeout=10)
            with smtp:
                if server.scheme == "smtp":
                    refusal = starttls(smtp, server.host, server.port)
                    if refusal:
                        return Outcome(False, None, refusal)  # not retried: configuration
                if server.username:
                    smtp.login(server.username, server.password or "")
                refused = smtp.send_message(message)
            if refused:
                return Outcome(False, 550, f"refused: {refused}")
            return Outcome(True, 250, "sent")
        except ssl.SSLError as exc:  # a certificate that does not verify: configuration
            return Outcome(False, None, f"TLS with {server.host}:{server.port} failed: {exc}")
        except smtplib.SMTPResponseException as exc:
            # 4xx is temporary (try again), 5xx permanent (bad address, refused)
            return Outcome(False, exc.smtp_code, str(exc.smtp_error), retry=exc.smtp_code < 500)
        except (smtplib.SMTPException, OSError) as exc:
            return Outcome(False, None, f"{type(exc).__name__}: {exc}", retry=True)


def starttls(smtp: smtplib.SMTP, host: str, port: int) -> str | None:
    """Upgrade to TLS (verifying the certificate); why not, if the server cannot."""
    smtp.ehlo()
    if not smtp.has_extn("starttls"):
        return (f"the SMTP server {host}:{port} does not offer STARTTLS: nothing sent, no "
                "credentials or patient data in clear (smtps:// for TLS; smtp+insecure:// "
                "only for a test server on loopback)")
    smtp.starttls(context=ssl.create_default_context())
    smtp.ehlo()
    return None
