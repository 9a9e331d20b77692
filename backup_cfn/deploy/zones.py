"""The availability zones of the isolated subnets, by zone ID, chosen by deploy.

A zone name (us-east-1e) is a per-account alias of a zone ID (use1-az3); zones picked by position
(Fn::Select over Fn::GetAZs) land, in some accounts, in a zone where Lambda or an interface
endpoint service is not offered, and the stack's creation fails there (use1-az3 in us-east-1;
terraform-aws-modules/terraform-aws-vpc#785). AWS's way to know: DescribeVpcEndpointServices
lists, for each endpoint service, the zones it is offered in ("AvailabilityZones", by name), and
DescribeAvailabilityZones maps names to zone IDs (AWS re:Post knowledge center, "interface endpoint
availability zone"). The services asked about are the template's own interface endpoints, and
Lambda's endpoint service (com.amazonaws.REGION.lambda), the zones where Lambda itself is served.

An existing stack keeps its zones while they still host every service (a new zone would replace the
subnets); otherwise, and for a new stack, the first zones in zone-ID order that host them all.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from backup_cfn import contract
from backup_cfn.errors import UserError

LAMBDA = "lambda"


@dataclass(frozen=True)
class ZoneChoice:
    zone_ids: tuple[str, ...]
    names: tuple[str, ...]          # this account's names of the same zones
    services: tuple[str, ...]       # the endpoint services they were checked against
    kept: bool                      # the stack's current zones, still valid

    def parameters(self) -> dict[str, str]:
        return dict(zip(contract.PARAM_SUBNET_ZONE_IDS, self.zone_ids))

    def line(self) -> str:
        zones = ", ".join(f"{zone_id} ({name})" for zone_id, name in zip(self.zone_ids, self.names))
        how = "kept from the deployed stack" if self.kept else "the first in zone-ID order"
        return f"subnet zones: {zones}: {how} of the zones hosting {', '.join(self.services)}"


def declared(rendered: str) -> bool:
    return contract.PARAM_SUBNET_ZONE_IDS[0] in json.loads(rendered).get("Parameters", {})


def endpoint_services(rendered: str, region: str) -> list[str]:
    """The template's interface endpoint services, and Lambda's (the functions run in the subnets)."""
    services = []
    for resource in json.loads(rendered).get("Resources", {}).values():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::EC2::VPCEndpoint" and props.get("VpcEndpointType") == "Interface":
            name = props["ServiceName"]
            name = name["Fn::Sub"] if isinstance(name, dict) else name
            services.append(name.replace("${AWS::Region}", region).rsplit(".", 1)[-1])
    return sorted(set(services)) + [LAMBDA]


def _zones_offering(ec2, region: str, services: list[str]) -> set[str]:
    names = [f"com.amazonaws.{region}.{service}" for service in services]
    offered: dict[str, set[str]] = {}
    token = None
    while True:
        page = ec2.describe_vpc_endpoint_services(ServiceNames=names, **({"NextToken": token} if token else {}))
        for detail in page.get("ServiceDetails", []):
            offered.setdefault(detail["ServiceName"], set()).update(detail.get("AvailabilityZones", []))
        token = page.get("NextToken")
        if not token:
            break
    missing = [name for name in names if name not in offered]
    if missing:
        raise UserError(f"{region} offers no endpoint service {', '.join(missing)}: the stack's VPC cannot be built there")
    return set.intersection(*offered.values())


def choose_zones(ec2, region: str, services: list[str], current: tuple[str, ...] = (),
                 count: int = len(contract.PARAM_SUBNET_ZONE_IDS)) -> ZoneChoice:
    zones = ec2.describe_availability_zones(Filters=[{"Name": "zone-type", "Values": ["availability-zone"]},
                                                     {"Name": "state", "Values": ["available"]}])["AvailabilityZones"]
    id_of = {zone["ZoneName"]: zone["ZoneId"] for zone in zones}
    name_of = {zone_id: name for name, zone_id in id_of.items()}
    hosting = sorted(id_of[name] for name in _zones_offering(ec2, region, services) if name in id_of)
    if len(current) == count and all(zone_id in hosting for zone_id in current):
        chosen, kept = tuple(current), True
    elif len(hosting) >= count:
        chosen, kept = tuple(hosting[:count]), False
    else:
        raise UserError(f"{region} has {len(hosting)} available zone(s) hosting {', '.join(services)} "
                        f"({', '.join(hosting) or 'none'}); the stack needs {count}")
    return ZoneChoice(chosen, tuple(name_of[zone_id] for zone_id in chosen), tuple(services), kept)
