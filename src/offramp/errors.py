"""The one error tree of offramp; the class of an error decides its HTTP status.

    OfframpError                      500  internal_error
    ├── ClientError                   4xx  the request is at fault; retrying it unchanged fails again
    │   ├── InvalidRequest            400  invalid_request_error (names the offending `param`)
    │   │   ├── UnsupportedParameter  400  code=unsupported_parameter
    │   │   ├── UnsupportedSchema     400  code=unsupported_schema (JSON-schema keyword the grammar cannot enforce)
    │   │   └── ContextLengthExceeded 400  code=context_length_exceeded (with the numbers)
    │   ├── ModelNotFound             404  code=model_not_found
    │   ├── TaskNotFound              404  code=task_not_found
    │   └── PayloadTooLarge           413  code=payload_too_large
    ├── Overloaded                    503  the bounded queue is full; carries Retry-After
    ├── ModelSourceError              500  a model file cannot be found or fetched (CLI: one clear line)
    └── ProviderError                 500  a backend failed while generating
        └── OutputValidationFailed    500  the output broke the requested schema (a backend bug)

Foreign exceptions are mapped to these where they are caught (``raise ... from exc``);
the API renders every one of them as OpenAI's envelope
``{"error": {"message", "type", "param", "code"}}``.
"""

from __future__ import annotations


class OfframpError(Exception):
    """Base of every error offramp raises on purpose."""

    status_code: int = 500
    error_type: str = "server_error"
    code: str | None = "internal_error"

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


class UnsupportedParameter(InvalidRequest):
    """A known parameter was given a value this model or backend cannot honour."""

    code = "unsupported_parameter"


class UnsupportedSchema(InvalidRequest):
    """A JSON schema uses a keyword that grammar-constrained decoding cannot enforce."""

    code = "unsupported_schema"


class ContextLengthExceeded(InvalidRequest):
    """The prompt (plus the requested completion) does not fit the model's context."""

    code = "context_length_exceeded"


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

    def __init__(self, message: str, *, retry_after: int = 1):
        super().__init__(message)
        self.retry_after = retry_after


class ModelSourceError(OfframpError):
    """A model's weights cannot be located on disk or fetched from its hub."""

    code = "model_source_error"


class ProviderError(OfframpError):
    """A backend failed while serving a request that was valid."""

    code = "provider_error"


class OutputValidationFailed(ProviderError):
    """Generated output did not validate against the requested schema."""

    code = "output_validation_failed"
