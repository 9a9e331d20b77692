"""`make bench` (backup_cfn/bench/cli.py): what the system stores, how many requests it makes, how
fast it runs. The scenarios' functions are named here for the tests."""
from backup_cfn.bench.engine_runs import end_to_end, end_to_end_and_requests, incremental_requests  # noqa: F401
from backup_cfn.bench.micro import hashing, template_build  # noqa: F401
from backup_cfn.bench.report import table  # noqa: F401
from backup_cfn.bench.rig import FULL, QUICK, SEED, Sizes, churn, make_rig, run_backup, source_keys  # noqa: F401
from backup_cfn.bench.split import split_user  # noqa: F401
from backup_cfn.bench.storage import storage_over_time  # noqa: F401
from backup_cfn.bench.cli import main  # noqa: F401,E402
