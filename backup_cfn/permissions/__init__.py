"""Permissions, proven by evaluation: the IAM evaluator (iam/), what each recorded AWS call asks AWS
to authorise (requests), the principals' recorded calls against the committed templates
(conformance), and the deployer's least-privilege policy (deployer)."""
