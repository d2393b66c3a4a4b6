"""The channels: `base` (Facts, their wording, the Notifier interface), `pagerduty`
(Events API v2), `webhook` (signed JSON), `email` (SMTP)."""
