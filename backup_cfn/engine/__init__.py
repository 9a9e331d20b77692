"""The backup engine: plain functions that take their boto3 clients and settings as arguments.

This package ships in the Lambda zip with `handlers/`: it imports only the standard library,
boto3/botocore and `backup_cfn.contract` (no troposphere, no click). The operator commands in
`backup_cfn.ops` call the same functions from a workstation.
"""
