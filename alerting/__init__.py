"""Paging for `vitals alerting`: alert events from the rules become pages to the patient's
on-call team (PagerDuty Events API v2, a signed webhook, e-mail), escalated until a person
acknowledges, with the nurses' API and page. See alerting/README.md.

What it offers, by module (nothing is imported here, so importing `alerting.oncall` alone
stays cheap):

- `alerting.service`: `build`, `serve(settings, stop, on_ready)`, `run(...)`, `load_config`.
- `alerting.core`: `Alerting` (the orchestrator: `process`/`handle`, `tick`, `ack`,
  `resolve`, `open_alerts`, `off_loop`), `NotFound`, `Conflict`.
- `alerting.stages`: the pipeline (`Pipeline`, `Flow`, `Decision`, `Verdict`) and its stages
  `Dedup`, `Clear`, `Silence`, `Severity`, `Route`, `Group`, `Escalate`, `Notify`.
- `alerting.lifecycle`: `Incident`, `Policy`, the effects `Page`, `Ack`, `Resolve`, and the
  pure transitions.
- `alerting.store`: the `Store` interface; `alerting.store.sqlite.SqliteStore`;
  `alerting.store.schema` (tables, migration); `alerting.store.state_dir` (`StateLock`,
  `StoreError`); `alerting.store.thread.StoreThread`.
- `alerting.oncall`: `OnCall`, `load_oncall`; `alerting.silences`; `alerting.dispatch`:
  `Dispatcher`; `alerting.notify`: `Facts`, `Notifier`, `PagerDuty`, `Webhook`, `Email`;
  `alerting.api`: `make_app`, `make_runner` (the routes); `alerting.api_guards`: `Limits`,
  the middlewares; `alerting.header_timeout`: `ApiRunner`; `alerting.consumer`:
  `AlertConsumer`; `alerting.views`, `alerting.page`, `alerting.audit`.
"""
