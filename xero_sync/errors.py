"""What can go wrong talking to Xero, in our words. The gateway (client.py) turns every HTTP or SDK error
into one of these, so no other module needs to know xero-python's or urllib3's exceptions."""


class XeroError(Exception):
    """Base for every failure talking to Xero."""


class XeroAuthorizationError(XeroError):
    """Xero no longer accepts this connection (refresh token expired or revoked, app disconnected in
    Xero): staff must reconnect. Retrying will not help."""


class XeroTokenRejected(XeroAuthorizationError):
    """Xero answered 401 to an access token we held to be valid (revoked early, or clocks that disagree).
    The gateway refreshes it once and tries again before treating the connection as lost."""


class XeroUnavailable(XeroError):
    """A transient failure (5xx, timeout, dropped connection). The outcome of a write is unknown."""


class XeroRateLimited(XeroError):
    """Xero answered 429. `problem` is minute, day, concurrent or appminute; `retry_after` in seconds
    when Xero said it (it does not for concurrent/appminute)."""

    def __init__(self, problem: str, retry_after: int | None):
        self.problem = problem
        self.retry_after = retry_after
        super().__init__(f"Xero rate limit reached ({problem}); retry after {retry_after} s")


class XeroRejected(XeroError):
    """Xero refused the request as invalid (400). `body` is Xero's parsed error document."""

    def __init__(self, message: str, body: dict | None = None):
        self.body = body or {}
        super().__init__(message)


class XeroNotFound(XeroError):
    """Xero has no such record (404)."""
