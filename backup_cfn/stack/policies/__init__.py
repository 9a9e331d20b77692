"""Every IAM, key, bucket, topic and queue policy, as small named awacs builders, by kind.

Rules kept here (and asserted by tests/stack/test_template_security.py):
- no `*` or `service:*` action; `Resource: "*"` only where AWS offers nothing narrower, with a reason;
- every service principal is held to this account (`aws:SourceAccount`) and, where the calling
  resource is known, to that resource (`aws:SourceArn`);
- KMS use by functions is only through the services that encrypt for them (`kms:ViaService`).
"""
