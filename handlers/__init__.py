"""Lambda entry points (contract.HANDLER_*): thin hand-offs to backup_cfn.engine."""
