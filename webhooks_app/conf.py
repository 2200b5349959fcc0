"""The app's settings: each is `WEBHOOKS_<NAME>` in the site's settings.

Read on every access, never cached at import, so `override_settings` works.
"""

from django.conf import settings

DEFAULTS = {
    # A bearer token accepted by the inbound endpoint besides InboundToken rows.
    "INBOUND_TOKEN": "",
    # Largest inbound request body, in bytes.
    "MAX_BODY_BYTES": 1024 * 1024,
    # Most alerts one notification may carry.
    "MAX_ALERTS": 1000,
    # Absolute base URL of the site, for links in outgoing notifications.
    "SITE_URL": "",
    # Outbound HTTP: seconds to connect and to wait for an answer, and how
    # much of an answer is read.
    "CONNECT_TIMEOUT": 5,
    "READ_TIMEOUT": 10,
    "RESPONSE_MAX_BYTES": 64 * 1024,
    # Seconds one outbound call may take in all, however slowly the answer
    # comes (the read timeout applies to each read, not to the whole).
    "TOTAL_TIMEOUT": 30,
    # Whether outbound calls may go to private and loopback addresses.
    # Link-local and cloud metadata addresses are refused either way.
    "ALLOW_PRIVATE_ADDRESSES": True,
    # Fernet keys that encrypt secrets at rest, newest first; the first
    # encrypts, all decrypt. See webhooks_app/crypto.py.
    "ENCRYPTION_KEYS": [],
    # Dashboard: runs shown as columns of a model's grid, runs read to count
    # current streaks (a longer streak shows as "at least" this many), rows
    # per page (models, and a model's runs), and most rows one export holds.
    "DASHBOARD_RUNS": 30,
    "DASHBOARD_HISTORY_RUNS": 100,
    "DASHBOARD_PAGE_SIZE": 50,
    "DASHBOARD_RUN_PAGE_SIZE": 20,
    "DASHBOARD_EXPORT_MAX_ROWS": 10000,
    # Delivery: seconds to wait before each attempt, the first being the
    # initial send; each wait varies by RETRY_JITTER (a fraction) either way.
    "RETRY_SCHEDULE": (0, 5, 300, 1800, 7200, 18000, 36000, 36000),
    "RETRY_JITTER": 0.2,
    # Longest Retry-After, in seconds, that a webhook server can ask for.
    "RETRY_AFTER_MAX": 36000,
    # A webhook whose every attempt failed for this many seconds is disabled.
    "DISABLE_AFTER": 5 * 24 * 3600,
    # The sweep runs every SWEEP_INTERVAL seconds while deliveries are
    # pending and sends again any that are STALE_AFTER seconds past due.
    "SWEEP_INTERVAL": 60,
    "STALE_AFTER": 300,
    # A drain task sends one webhook's due deliveries one after another: it
    # starts none after DRAIN_SECONDS, and leases DRAIN_BATCH at a time.
    "DRAIN_SECONDS": 2,
    "DRAIN_BATCH": 100,
    # A drain writes the outcomes of its successful attempts RECORD_BATCH at
    # a time, in one transaction; a worker that dies sends at most that many
    # again.
    "RECORD_BATCH": 20,
    # Seconds a drain waits for an answer before it leaves the attempt to
    # finish in the background (still within the timeouts) and frees its
    # worker for other webhooks.
    "DETACH_AFTER": 1,
    # Seconds an attempt may run beyond its connect and read timeouts before
    # it counts as lost.
    "LEASE_MARGIN": 30,
    # Days that delivery attempts are kept by `manage.py webhooks_prune_attempts`.
    "ATTEMPTS_KEEP_DAYS": 30,
    # Signed inbound requests: the whsec_ secret for the INBOUND_TOKEN, and
    # how far, in seconds, webhook-timestamp may be from now.
    "INBOUND_SIGNING_SECRET": "",
    "SIGNATURE_TOLERANCE": 300,
    # On PostgreSQL, whether recording prepares its statements on the server
    # (once per connection). Turn off behind a pooler that cannot keep
    # prepared statements, such as PgBouncer before 1.21 in transaction mode.
    "PREPARED_STATEMENTS": True,
}


class AppSettings:
    prefix = "WEBHOOKS_"

    def __getattr__(self, name):
        if name not in DEFAULTS:
            raise AttributeError(f"No app setting named {name!r}")
        return getattr(settings, self.prefix + name, DEFAULTS[name])


app_settings = AppSettings()
