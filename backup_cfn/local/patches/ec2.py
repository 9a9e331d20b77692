"""EC2 in the emulator: what the stack's VPC needs from CloudFormation (listed in docs/emulator.md)."""
from __future__ import annotations


def patch_subnet_zone_ids() -> None:
    """An AWS::EC2::Subnet with AvailabilityZoneId is created in that zone, as AWS does (moto 5.2.5's
    CloudFormation model reads only AvailabilityZone and puts the subnet in the region's first zone)."""
    from moto.ec2.models import ec2_backends
    from moto.ec2.models.subnets import Subnet

    original = Subnet.create_from_cloudformation_json.__func__

    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        properties = cloudformation_json["Properties"]
        zone_id = properties.get("AvailabilityZoneId")
        if not zone_id or properties.get("AvailabilityZone"):
            return original(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
        subnet = ec2_backends[account_id][region_name].create_subnet(
            vpc_id=properties["VpcId"], cidr_block=properties["CidrBlock"], availability_zone_id=zone_id)
        for tag in properties.get("Tags", []):
            subnet.add_tag(tag["Key"], tag["Value"])
        return subnet

    Subnet.create_from_cloudformation_json = classmethod(create_from_cloudformation_json)
