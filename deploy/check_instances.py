"""The checks of deploy/compose.yaml about instances (part of check_compose.py): how many of
each service run, and what the instances of one service share or must not share (ingest's
client ids and shared-subscription group, alerting's database and state directories, the
PostgreSQL service the alerting instances share, the number of rules workers)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import suppress
from urllib.parse import urlsplit

from checklib import mounted_source
from compose_model import INGEST_SERVICES, PGDATA, SINGLETONS, Compose


def singletons(compose: Compose) -> Iterator[str]:
    """Each ingest instance and the canary run exactly one replica."""
    for name in SINGLETONS:
        replicas = compose.services.get(name, {}).get("deploy", {}).get("replicas", 1)
        if str(replicas) != "1":
            yield f"{name}: must run exactly one replica, not {replicas}"


def ingest_instances(compose: Compose) -> Iterator[str]:
    """The ingest instances each have a client id of their own (the session the broker keeps
    for it while it is down) and one shared-subscription group, so that they split the traffic
    rather than each receiving all of it."""
    from vitals.settings import Settings

    default_group = Settings.model_fields["ingest_share_group"].default
    seen: dict[str, str] = {}
    groups = set()
    for name in INGEST_SERVICES:
        if name not in compose.services:
            continue
        env = compose.environment(name)
        client_id = env.get("VITALS_INGEST_CLIENT_ID", "")
        if not client_id:
            yield f"{name}: VITALS_INGEST_CLIENT_ID is not set: each instance needs its own"
        elif client_id in seen:
            yield (f"{name}: VITALS_INGEST_CLIENT_ID={client_id} is {seen[client_id]}'s too: "
                   "two instances with one client id take one session from each other")
        seen.setdefault(client_id, name)
        groups.add(env.get("VITALS_INGEST_SHARE_GROUP") or default_group)
    if len(groups) > 1:
        yield (f"ingest: the instances need one VITALS_INGEST_SHARE_GROUP, not {sorted(groups)}: "
               "in different groups each receives every message")
    elif groups == {""} and len(seen) > 1:
        yield ("ingest: several instances need a VITALS_INGEST_SHARE_GROUP: without one each "
               "subscribes plainly and receives every message")


def alerting_instances(compose: Compose) -> Iterator[str]:
    """alerting runs as several instances only when every one has VITALS_ALERTING_DB_URL, and
    one URL: they share PostgreSQL and take turns leading. Without it the state is SQLite in
    the state directory, which belongs to one process: one instance. Each instance runs one
    replica, with a writable named volume of its own for its state directory (its lock, its
    self-alert marker, and with SQLite the database)."""
    names = compose.alerting_instances
    urls = {name: compose.environment(name).get("VITALS_ALERTING_DB_URL", "") for name in names}
    sqlite = [name for name in names if not urls[name]]
    if sqlite and len(names) > 1:
        yield (f"{', '.join(sqlite)}: without VITALS_ALERTING_DB_URL alerting keeps its state in "
               f"SQLite and must run as one instance, not {len(names)} ({', '.join(names)}): "
               "set VITALS_ALERTING_DB_URL on every instance to share PostgreSQL")
    for name in names:
        replicas = compose.services[name].get("deploy", {}).get("replicas", 1)
        if str(replicas) != "1":
            why = ("its SQLite state belongs to one process" if not urls[name] else
                   "each instance needs a state volume of its own: add an instance as a service "
                   "of its own (as alerting-2)")
            yield f"{name}: must run exactly one replica, not {replicas}: {why}"
    first = next((name for name in names if urls[name]), None)
    for name in names:
        if first is not None and urls[name] and urls[name] != urls[first]:
            yield (f"{name}: VITALS_ALERTING_DB_URL is not {first}'s: instances on different "
                   "databases would each lead, and page twice")
    owners: dict[str, str] = {}
    for name in names:
        state_dir = compose.environment(name).get("VITALS_STATE_DIR", "")
        held = mounted_source(compose.mounts(name), state_dir) if state_dir else None
        if held is None or held[0].bind or held[0].read_only or held[1] != ".":
            yield f"{name}: VITALS_STATE_DIR must be a writable named volume of its own"
            continue
        volume = held[0].source
        if volume in owners:
            yield (f"{name}: VITALS_STATE_DIR must be a writable named volume of its own, not "
                   f"{owners[volume]}'s ({volume}): one instance per state directory")
        owners.setdefault(volume, name)


def alerting_database(compose: Compose) -> Iterator[str]:
    """An alerting instance on PostgreSQL: the password in its URL goes in as is; when the URL
    names a service of this file, the instance waits for it to be healthy, and the account,
    password, database and port are the ones that service's image sets up."""
    from vitals.settings import parse_endpoint

    for name in compose.alerting_instances:
        url = compose.environment(name).get("VITALS_ALERTING_DB_URL", "")
        try:
            endpoint = parse_endpoint(url, {"postgresql": 5432, "postgres": 5432})
            written = urlsplit(url).password
        except ValueError:
            continue  # unset (SQLite), or refused by _settings
        if written is not None and not re.fullmatch(r"[A-Za-z0-9._~-]+", written):
            yield (f"{name}: the password in VITALS_ALERTING_DB_URL may hold only "
                   "A-Z a-z 0-9 . _ ~ - (it goes into the URL as it is)")
        host = endpoint.host
        if host not in compose.services:
            continue  # the site's own PostgreSQL
        dependencies = compose.services[name].get("depends_on") or {}
        condition = (dependencies.get(host, {}).get("condition") if isinstance(dependencies, dict)
                     else "service_started" if host in dependencies else None)
        if condition != "service_healthy":
            yield (f"{name}: VITALS_ALERTING_DB_URL names the service {host}: depends_on {host} "
                   "needs condition: service_healthy")
        db_env = compose.environment(host)
        user = db_env.get("POSTGRES_USER") or "postgres"
        database = urlsplit(url).path.lstrip("/") or endpoint.username
        if (endpoint.username, endpoint.password, database) != (
                user, db_env.get("POSTGRES_PASSWORD"), db_env.get("POSTGRES_DB") or user):
            yield (f"{name}: the account, password or database in VITALS_ALERTING_DB_URL is not "
                   f"{host}'s (POSTGRES_USER, POSTGRES_PASSWORD, POSTGRES_DB)")
        if endpoint.port != int(db_env.get("PGPORT") or 5432):
            yield f"{name}: VITALS_ALERTING_DB_URL names port {endpoint.port}, {host} listens " \
                  f"on {db_env.get('PGPORT') or 5432}"


def postgres(compose: Compose) -> Iterator[str]:
    """The PostgreSQL service the alerting instances share: a pinned image, its data on a
    writable named volume, restarted, not published on the host, a password from a required
    variable, and a healthcheck that passes only once the real server listens."""
    from vitals.settings import parse_endpoint

    hosts: set[str] = set()
    for name in compose.alerting_instances:
        with suppress(ValueError):
            hosts.add(parse_endpoint(compose.environment(name).get("VITALS_ALERTING_DB_URL", ""),
                                     {"postgresql": 5432, "postgres": 5432}).host)
    for host in sorted(hosts & set(compose.services)):
        service = compose.services[host]
        image = str(service.get("image", ""))
        if not re.fullmatch(r"(?:docker\.io/)?(?:library/)?postgres:\d+\.\d+[\w.-]*", image):
            yield f"{host}: image {image} is not the official postgres image pinned to a " \
                  "version (postgres:MAJOR.MINOR)"
        if service.get("restart") not in ("unless-stopped", "always"):
            yield f"{host}: a long-running service needs restart: unless-stopped"
        if service.get("ports"):
            yield (f"{host}: must not be published on the host (ports:): the alerting "
                   "instances reach it on the compose network")
        data = compose.environment(host).get("PGDATA") or PGDATA
        held = mounted_source(compose.mounts(host), data)
        if held is None or held[0].bind or held[0].read_only:
            yield f"{host}: its data directory {data} must be on a writable named volume"
        raw_env = (compose.raw["services"].get(host) or {}).get("environment") or {}
        if isinstance(raw_env, list):
            raw_env = dict(item.partition("=")[::2] for item in raw_env)
        if not re.search(r"\$\{[A-Z_][A-Z0-9_]*:\?", str(raw_env.get("POSTGRES_PASSWORD", ""))):
            yield (f"{host}: POSTGRES_PASSWORD must come from a required variable of "
                   "deploy/.env (${ALERTING_DB_PASSWORD:?...})")
        test = " ".join(str(t) for t in (service.get("healthcheck") or {}).get("test", []))
        if "pg_isready" not in test or not re.search(
                r"(?:-h\s*|--host[=\s])(?:127\.0\.0\.1|localhost)\b", test):
            yield (f"{host}: the healthcheck must run pg_isready over TCP (-h 127.0.0.1): on the "
                   "socket it passes while the image's first start still creates the database")


def rules_workers(compose: Compose) -> Iterator[str]:
    """There are 1..VITALS_KAFKA_PARTITIONS rules workers."""
    workers = compose.services.get("rules", {}).get("deploy", {}).get("replicas", 1)
    partitions = compose.env.get("VITALS_KAFKA_PARTITIONS", "8")
    if not str(workers).isdigit() or not 1 <= int(workers) <= int(partitions):
        yield f"rules: {workers} workers; must be 1..VITALS_KAFKA_PARTITIONS ({partitions})"
