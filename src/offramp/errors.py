"""The one error tree of offramp; the class of an error decides its HTTP status.

    OfframpError                      500  internal_error
    ├── ClientError                   4xx  the request is at fault; retrying it unchanged fails again
    │   ├── InvalidRequest            400  invalid_request_error (names the offending `param`)
    │   │   ├── UnknownParameter      400  code=unknown_parameter (a field nobody on the route can take)
    │   │   ├── UnsupportedParameter  400  code=unsupported_parameter
    │   │   ├── InvalidJson           400  code=invalid_json (unparseable or nested too deep)
    │   │   ├── UnsupportedSchema     400  code=unsupported_schema (a JSON schema OpenAI refuses too)
    │   │   └── ContextLengthExceeded 400  code=context_length_exceeded (with the numbers)      F
    │   ├── AuthenticationFailed      401  code=invalid_api_key (missing, unknown or revoked key)
    │   ├── PermissionDenied          403  code=model_not_allowed / admin_key_required
    │   ├── ModelNotFound             404  code=model_not_found
    │   ├── TaskNotFound              404  code=task_not_found
    │   ├── SessionNotFound           404  code=session_not_found (unknown, expired or another key's)
    │   ├── ResponseNotFound          404  code=response_not_found (a stored response: unknown,
    │   │                                  deleted, expired or another key's)
    │   ├── RequestNotFound           404  code=request_not_found (feedback naming a request that is
    │   │                                  unknown or another key's)
    │   ├── RouteNotFound             404  code=not_found (no such path)
    │   ├── MethodNotAllowed          405  code=method_not_allowed
    │   ├── RequestTimeout            408  code=request_timeout (a body that stopped arriving)
    │   ├── PayloadTooLarge           413  code=payload_too_large
    │   ├── RateLimited               429  code=rate_limit_exceeded; carries Retry-After
    │   └── BudgetExceeded            429  code=insufficient_quota (the key's spend budget is used up)
    ├── Overloaded                    503  the bounded queue is full; carries Retry-After         R F
    ├── ShuttingDown                  503  the server is draining before it stops; carries Retry-After
    ├── NoDeploymentAvailable         503  no deployment of a route answered before the request's
    │                                      deadline (or attempt budget); carries Retry-After
    ├── ModelSourceError              500  a model file cannot be found or fetched (CLI: one clear line)
    └── ProviderError                 500  a backend failed while generating                      F B
        ├── OutputValidationFailed    500  the output broke the requested schema (a backend bug)
        └── UpstreamError             502  an upstream API failed: `status` (its HTTP status, None
                                           when unreachable), `retry_after` (s), `retryable`   (R) F B

What the router does with an error is data on its class (or instance), never a guess:
R ``retryable`` the same deployment may succeed when asked again later (after a backoff);
F ``fallback`` another deployment of the route may succeed, so the router tries the next one;
B a ``ProviderError`` counts against the failing deployment's circuit breaker. Everything
else (a bad request) goes straight back to the client, unretried.

Foreign exceptions are mapped to these where they are caught (``raise ... from exc``);
the API renders every one of them as OpenAI's envelope
``{"error": {"message", "type", "param", "code"}}``, with ``Retry-After`` when
``retry_after`` is set.
"""

from __future__ import annotations

DRAIN_CUT = "offramp: drain deadline"  # the message of a stream task cancelled by the drain
QUOTE_LIMIT = 64  # characters of a client's value an error message repeats


def quoted(value: object, limit: int = QUOTE_LIMIT) -> str:
    """``repr(value)`` cut to ``limit`` characters: messages name bad input, never echo it
    whole (a 7 MB bad value must not make a 7 MB error)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class OfframpError(Exception):
    """Base of every error offramp raises on purpose."""

    status_code: int = 500
    error_type: str = "server_error"
    code: str | None = "internal_error"
    retryable: bool = False  # the same deployment may succeed when asked again later
    fallback: bool = False  # another deployment of the route may succeed
    retry_after: float | None = None  # seconds the client (or router) should wait first

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code

    def envelope(self) -> dict[str, dict[str, str | None]]:
        """The OpenAI-style error body for this error."""
        return {
            "error": {
                "message": self.message,
                "type": self.error_type,
                "param": self.param,
                "code": self.code,
            }
        }


class ClientError(OfframpError):
    """The request itself is wrong; the same request will fail again."""

    status_code = 400
    error_type = "invalid_request_error"
    code: str | None = None


class InvalidRequest(ClientError):
    """A field has a value offramp cannot accept; ``param`` names the field."""

    code = "invalid_value"


class InvalidJson(InvalidRequest):
    """The body is not JSON offramp can read (malformed, or nested too deep)."""

    code = "invalid_json"


class UnknownParameter(InvalidRequest):
    """A request field that no deployment able to serve the request can take or pass on."""

    code = "unknown_parameter"


class UnsupportedParameter(InvalidRequest):
    """A known parameter was given a value this model or backend cannot honour."""

    code = "unsupported_parameter"


class UnsupportedSchema(InvalidRequest):
    """A JSON schema that is invalid, has a ``$ref`` that does not resolve locally, a bad
    ``pattern``, or a part no value can satisfy (what OpenAI refuses too)."""

    code = "unsupported_schema"


class ContextLengthExceeded(InvalidRequest):
    """The prompt (plus the requested completion) does not fit the model's context."""

    code = "context_length_exceeded"
    fallback = True  # a deployment with a longer context may take it


class AuthenticationFailed(ClientError):
    """No API key, or one that is unknown or revoked."""

    status_code = 401
    code = "invalid_api_key"


class PermissionDenied(ClientError):
    """The key is valid but may not do this (a model it is not allowed, an admin route)."""

    status_code = 403
    code = "permission_denied"


class RateLimited(ClientError):
    """The key is over its requests- or tokens-per-minute limit; retry after ``retry_after`` s."""

    status_code = 429
    error_type = "requests"
    code = "rate_limit_exceeded"

    def __init__(self, message: str, *, retry_after: int, limit: str = "requests"):
        super().__init__(message)
        self.retry_after = retry_after
        self.error_type = limit


class BudgetExceeded(ClientError):
    """The key has spent its whole budget; nothing is served until it is raised."""

    status_code = 429
    error_type = "insufficient_quota"
    code = "insufficient_quota"


class ModelNotFound(ClientError):
    """No model or alias of that name is configured."""

    status_code = 404
    code = "model_not_found"


class TaskNotFound(ClientError):
    """No task of that name is defined (built-in or in the configured tasks folder)."""

    status_code = 404
    code = "task_not_found"


class SessionNotFound(ClientError):
    """No task session of that id belongs to the caller (it may be another key's)."""

    status_code = 404
    code = "session_not_found"


class ResponseNotFound(ClientError):
    """No stored response of that id belongs to the caller (it may be another key's)."""

    status_code = 404
    code = "response_not_found"


class RequestNotFound(ClientError):
    """No served request of that id belongs to the caller (it may be another key's)."""

    status_code = 404
    code = "request_not_found"


class RouteNotFound(ClientError):
    """No endpoint at that path."""

    status_code = 404
    code = "not_found"


class MethodNotAllowed(ClientError):
    """The endpoint exists but not for that HTTP method."""

    status_code = 405
    code = "method_not_allowed"


class RequestTimeout(ClientError):
    """The request (its headers or body) did not arrive in time."""

    status_code = 408
    code = "request_timeout"


class PayloadTooLarge(ClientError):
    """The request body is larger than the configured limit."""

    status_code = 413
    code = "payload_too_large"


class ShuttingDown(OfframpError):
    """The server is draining before it stops: new requests go to another replica."""

    status_code = 503
    code = "shutting_down"
    retry_after: float

    def __init__(self, message: str = "the server is shutting down", *, retry_after: int = 1):
        super().__init__(message)
        self.retry_after = retry_after


class Overloaded(OfframpError):
    """Too many requests are already waiting for this model; retry after ``retry_after`` s."""

    status_code = 503
    error_type = "server_error"
    code = "overloaded"
    retryable = True
    fallback = True
    retry_after: float

    def __init__(self, message: str, *, retry_after: int = 1):
        super().__init__(message)
        self.retry_after = retry_after


class NoDeploymentAvailable(OfframpError):
    """No deployment of a route answered: the soonest one free (a circuit half-opening, a
    probe's result, a backoff ending) comes after the request's deadline, its attempt
    budget is spent, or every deployment failed it for good. The message lists each
    attempt and each circuit in the way; ``retry_after`` says when one may be tried
    again, where that is known."""

    status_code = 503
    code = "no_deployment_available"

    def __init__(self, message: str, *, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class ModelSourceError(OfframpError):
    """A model's weights cannot be located on disk or fetched from its hub."""

    code = "model_source_error"


class ProviderError(OfframpError):
    """A backend failed while serving a request that was valid."""

    code = "provider_error"
    fallback = True


class OutputValidationFailed(ProviderError):
    """Generated output did not validate against the requested schema."""

    code = "output_validation_failed"


class UpstreamError(ProviderError):
    """An upstream API answered with a failure, timed out, or could not be reached.

    ``status`` is the upstream's HTTP status (None when no answer came: refused, reset,
    timed out); ``retry_after`` the seconds the upstream asked to wait (None if it named
    none); ``retryable`` whether the same request may succeed later (429, 5xx, overload,
    timeouts, dropped connections) rather than failing again on that upstream (bad key,
    unknown upstream model). Clients see 502: the gateway's upstream failed. ``code`` says
    what happened: ``upstream_error`` (an error status), ``upstream_unreachable`` (no
    connection, or one reset before any answer), ``upstream_timeout``,
    ``upstream_stream_cut`` (it began answering, then the connection was cut mid-body),
    ``upstream_stream_error`` (an error event inside a 200 stream), ...
    """

    status_code = 502
    code = "upstream_error"

    def __init__(
        self,
        message: str,
        *,
        status: int | None,
        retryable: bool,
        retry_after: float | None = None,
        code: str | None = None,
    ):
        super().__init__(message, code=code)
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after
