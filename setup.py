from setuptools import find_packages, setup

setup(
    name="backup-cfn",
    version="0.1.0",
    description="AWS backup system for client reports: CloudFormation in Python, deploy CLI and engine",
    python_requires=">=3.11",
    packages=find_packages(include=["backup_cfn", "backup_cfn.*", "handlers"]),
    py_modules=["cli"],
    include_package_data=True,
    package_data={"backup_cfn.ops.cost": ["data/*"]},
    install_requires=[
        "troposphere==4.11.1",
        "awacs==2.6.1",
        "cfn-lint==1.58.0",
        "boto3==1.44.5",
        "click==8.5.1",
        "rich==15.0.0",
        "aws-lambda-powertools==3.37.0",
        "moto[server]==5.2.5",
        "packaging==26.4",
    ],
    entry_points={"console_scripts": ["backup-cfn=cli:main"]},
)
