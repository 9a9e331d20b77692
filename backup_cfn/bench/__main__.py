"""python -m backup_cfn.bench"""
import sys

from backup_cfn.bench.cli import main

sys.exit(main())
