"""Lambda entry points (layout.HANDLER_*): thin hand-offs to backup_cfn.engine."""
