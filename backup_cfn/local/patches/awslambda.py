"""Lambda in the emulator answers what the deploy review reads of it."""
from __future__ import annotations

# Lambda's default concurrency per account and region.
ACCOUNT_CONCURRENCY = 1000


def patch_account_settings() -> None:
    """GetAccountSettings answers in AWS's shape: the default account limit of 1,000 concurrent
    executions, less what the emulator's functions reserve (moto 5.2.5 has no such route)."""
    import json

    from moto.awslambda import urls
    from moto.awslambda.responses import LambdaResponse

    urls.url_paths[r"{0}/(?P<api_version>[^/]+)/account-settings/?$"] = LambdaResponse.dispatch

    def get_account_settings(self) -> str:
        functions = self.backend.list_functions()
        reserved = sum(int(f.reserved_concurrency or 0) for f in functions)
        return json.dumps({
            "AccountLimit": {"TotalCodeSize": 80530636800, "CodeSizeUnzipped": 262144000, "CodeSizeZipped": 52428800,
                             "ConcurrentExecutions": ACCOUNT_CONCURRENCY,
                             "UnreservedConcurrentExecutions": ACCOUNT_CONCURRENCY - reserved},
            "AccountUsage": {"TotalCodeSize": sum(int(f.code_size or 0) for f in functions),
                             "FunctionCount": len(functions)}})

    LambdaResponse.get_account_settings = get_account_settings
