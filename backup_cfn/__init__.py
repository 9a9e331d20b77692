"""backup-cfn: an AWS backup system for client reports, defined as CloudFormation in Python."""

__version__ = "0.1.0"
