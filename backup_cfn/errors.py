"""Expected failures: each becomes one readable line and a non-zero exit in the CLI."""
from __future__ import annotations

import click


class UserError(click.ClickException):
    """A failure the user can act on; the CLI prints its message, without a traceback."""

    exit_code = 1


class Refused(UserError):
    """A change set refused by its review (the stateful guard, a blocking forecast finding): exit 3,
    so a pipeline tells it from an error (1) and from changes to approve (2)."""

    exit_code = 3

    def __init__(self, message: str, review=None):
        super().__init__(message)
        self.review = review
class RunStuck(UserError):
    """A backup run that made no progress within its deadline (`backup-cfn run --timeout`)."""


def describe_aws_error(exc: BaseException) -> str | None:
    """One line for the botocore errors users actually hit, or None when it is not one of them."""
    from botocore import exceptions as bx

    if isinstance(exc, bx.NoCredentialsError):
        return "no AWS credentials found: set AWS_PROFILE or run `aws configure` (or `aws sso login`)"
    if isinstance(exc, bx.NoRegionError):
        return "no AWS region configured for this client"
    if isinstance(exc, (bx.EndpointConnectionError, bx.ConnectTimeoutError)):
        return f"cannot reach AWS: {exc} (for --env local, start the emulator with `make emulator`)"
    if isinstance(exc, bx.ClientError):
        error = exc.response.get("Error", {})
        code = error.get("Code", "Unknown")
        message = error.get("Message", str(exc))
        operation = getattr(exc, "operation_name", "call")
        hint = {
            "ExpiredToken": " (credentials expired: refresh them, e.g. `aws sso login`)",
            "ExpiredTokenException": " (credentials expired: refresh them, e.g. `aws sso login`)",
            "InvalidClientTokenId": " (the access key is not valid in this account or region)",
            "UnrecognizedClientException": " (the access key is not valid in this account or region)",
            "AccessDenied": " (the credentials lack a permission this command needs)",
            "AccessDeniedException": " (the credentials lack a permission this command needs)",
        }.get(code, "")
        return f"AWS {operation} failed: {code}: {message}{hint}"
    if isinstance(exc, bx.BotoCoreError):
        return f"AWS client error: {exc}"
    return None
