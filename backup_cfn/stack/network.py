"""VPC: isolated subnets in two zones, no internet route, and an endpoint for every AWS service
the functions call (gateway endpoints for S3 and DynamoDB, interface endpoints for the rest)."""
from __future__ import annotations

from dataclasses import dataclass

from troposphere import Ref, Sub, Template, ec2

from backup_cfn.config import Environment
from backup_cfn.stack.parameters import add_subnet_zones
from backup_cfn.stack.resource_options import tags

VPC_CIDR = "10.40.0.0/16"
# Not the first two /20s, which the subnets placed by position (Fn::GetAZs) had: a stack moving to
# zone IDs replaces its subnets, and CloudFormation creates each new one before deleting the old.
SUBNET_CIDRS = ("10.40.32.0/20", "10.40.48.0/20")
GATEWAY_SERVICES = ("s3", "dynamodb")
# Services the functions call directly (KMS is only used through S3, DynamoDB, SQS and SNS).
INTERFACE_SERVICES = ("sqs", "sns")


@dataclass(frozen=True)
class Network:
    vpc: ec2.VPC
    subnets: tuple[ec2.Subnet, ...]
    function_security_group: ec2.SecurityGroup

    def vpc_config(self):
        from troposphere.awslambda import VPCConfig

        return VPCConfig(SubnetIds=[Ref(s) for s in self.subnets],
                         SecurityGroupIds=[Ref(self.function_security_group)])


def add_network(t: Template, env: Environment, interface_services: tuple[str, ...] = INTERFACE_SERVICES
                ) -> Network | None:
    """The VPC, when the environment asks for one; `interface_services` are the services reached
    through interface endpoints (the vault's functions need none: S3 and DynamoDB are gateways)."""
    if not env.vpc_endpoints:
        return None
    vpc = t.add_resource(ec2.VPC("Vpc", CidrBlock=VPC_CIDR, EnableDnsHostnames=True, EnableDnsSupport=True,
                                 Tags=tags(env, Name=f"{env.stack_name}-vpc")))
    route_table = t.add_resource(ec2.RouteTable("IsolatedRouteTable", VpcId=Ref(vpc),
                                                Tags=tags(env, Name=f"{env.stack_name}-isolated")))
    subnets = []
    for index, (cidr, zone) in enumerate(zip(SUBNET_CIDRS, add_subnet_zones(t))):
        subnet = t.add_resource(ec2.Subnet(
            f"IsolatedSubnet{index + 1}", VpcId=Ref(vpc), CidrBlock=cidr,
            AvailabilityZoneId=Ref(zone), MapPublicIpOnLaunch=False,
            Tags=tags(env, Name=f"{env.stack_name}-isolated-{index + 1}"),
        ))
        t.add_resource(ec2.SubnetRouteTableAssociation(f"IsolatedSubnet{index + 1}RouteTable",
                                                       SubnetId=Ref(subnet), RouteTableId=Ref(route_table)))
        subnets.append(subnet)

    # The subnets have no route out of the VPC, so HTTPS "anywhere" reaches only the endpoints and
    # gateways below; S3's and DynamoDB's gateway prefix lists have no CloudFormation reference.
    functions_sg = t.add_resource(ec2.SecurityGroup(
        "FunctionSecurityGroup", VpcId=Ref(vpc),
        GroupDescription="backup functions: HTTPS out, which only the VPC endpoints can answer",
        SecurityGroupEgress=[ec2.SecurityGroupRule(
            Description="HTTPS to VPC endpoints and gateway endpoints", IpProtocol="tcp", FromPort=443,
            ToPort=443, CidrIp="0.0.0.0/0")],
        Tags=tags(env),
    ))
    for service in GATEWAY_SERVICES:
        t.add_resource(ec2.VPCEndpoint(
            f"{_title(service)}GatewayEndpoint", VpcId=Ref(vpc), VpcEndpointType="Gateway",
            ServiceName=Sub(f"com.amazonaws.${{AWS::Region}}.{service}"), RouteTableIds=[Ref(route_table)],
            Tags=tags(env)))
    if not interface_services:
        return Network(vpc=vpc, subnets=tuple(subnets), function_security_group=functions_sg)
    endpoints_sg = t.add_resource(ec2.SecurityGroup(
        "EndpointSecurityGroup", VpcId=Ref(vpc),
        GroupDescription="interface endpoints: HTTPS in from the backup functions",
        SecurityGroupIngress=[ec2.SecurityGroupRule(
            Description="HTTPS from backup functions", IpProtocol="tcp", FromPort=443, ToPort=443,
            SourceSecurityGroupId=Ref(functions_sg))],
        # Endpoints never open connections. A rule matching nothing replaces the default allow-all
        # (the same device CDK uses for allowAllOutbound: false).
        SecurityGroupEgress=[ec2.SecurityGroupRule(
            Description="no outbound traffic", IpProtocol="icmp", FromPort=252, ToPort=86,
            CidrIp="255.255.255.255/32")],
        Tags=tags(env),
    ))
    for service in interface_services:
        t.add_resource(ec2.VPCEndpoint(
            f"{_title(service)}InterfaceEndpoint", VpcId=Ref(vpc), VpcEndpointType="Interface",
            ServiceName=Sub(f"com.amazonaws.${{AWS::Region}}.{service}"), PrivateDnsEnabled=True,
            SubnetIds=[Ref(s) for s in subnets], SecurityGroupIds=[Ref(endpoints_sg)], Tags=tags(env)))
    return Network(vpc=vpc, subnets=tuple(subnets), function_security_group=functions_sg)


def _title(service: str) -> str:
    return {"s3": "S3", "dynamodb": "DynamoDb", "sqs": "Sqs", "sns": "Sns"}[service]
