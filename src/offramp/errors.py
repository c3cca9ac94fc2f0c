"""The one error tree of offramp; the class of an error decides its HTTP status.

    OfframpError                      500  internal_error
    ├── ClientError                   4xx  the request is at fault; retrying it unchanged fails again
    │   ├── InvalidRequest            400  invalid_request_error (names the offending `param`)
    │   │   ├── UnknownParameter      400  code=unknown_parameter (a field nobody on the route can take)
    │   │   ├── UnsupportedParameter  400  code=unsupported_parameter
    │   │   ├── UnsupportedSchema     400  code=unsupported_schema (a JSON schema OpenAI refuses too)
    │   │   └── ContextLengthExceeded 400  code=context_length_exceeded (with the numbers)      F
    │   ├── AuthenticationFailed      401  code=invalid_api_key (missing, unknown or revoked key)
    │   ├── PermissionDenied          403  code=model_not_allowed / admin_key_required
    │   ├── ModelNotFound             404  code=model_not_found
    │   ├── TaskNotFound              404  code=task_not_found
    │   ├── PayloadTooLarge           413  code=payload_too_large
    │   ├── RateLimited               429  code=rate_limit_exceeded; carries Retry-After
    │   └── BudgetExceeded            429  code=insufficient_quota (the key's spend budget is used up)
    ├── Overloaded                    503  the bounded queue is full; carries Retry-After         R F
    ├── NoDeploymentAvailable         503  every deployment of a route failed or has its circuit open
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


class PayloadTooLarge(ClientError):
    """The request body is larger than the configured limit."""

    status_code = 413
    code = "payload_too_large"


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
    """Every deployment of a route failed within the request's deadline, or has its
    circuit open; the message lists each attempt. ``retry_after`` says when one may be
    tried again, where that is known."""

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
    unknown upstream model). Clients see 502: the gateway's upstream failed.
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
