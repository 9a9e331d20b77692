"""The isolated subnets' zones (issue 22): by zone ID, among the zones hosting every interface
endpoint service of the stack and Lambda, driven through botocore's Stubber with EC2's response
shapes. The account below maps us-east-1a to use1-az3, where Lambda is not offered: the zone that
Fn::Select [0, Fn::GetAZs] used to pick."""
from __future__ import annotations

import json

import pytest

from backup_cfn import contract
from backup_cfn.config import load_environment
from backup_cfn.deploy import zones
from backup_cfn.errors import UserError
from backup_cfn.stack.render import render_environment

REGION = "us-east-1"
# This account's names for the zones (names are per account; IDs are the same everywhere).
ACCOUNT_ZONES = {"us-east-1a": "use1-az3", "us-east-1b": "use1-az6", "us-east-1c": "use1-az1",
                 "us-east-1d": "use1-az2", "us-east-1e": "use1-az4", "us-east-1f": "use1-az5"}
ZONE_FILTERS = [{"Name": "zone-type", "Values": ["availability-zone"]}, {"Name": "state", "Values": ["available"]}]


def _zone(name: str, zone_id: str) -> dict:
    return {"State": "available", "OptInStatus": "opt-in-not-required", "Messages": [], "RegionName": REGION,
            "ZoneName": name, "ZoneId": zone_id, "GroupName": REGION, "NetworkBorderGroup": REGION,
            "ZoneType": "availability-zone"}


def _service(service: str, names: list[str]) -> dict:
    return {"ServiceName": f"com.amazonaws.{REGION}.{service}", "ServiceId": "vpce-svc-0123456789abcdef0",
            "ServiceType": [{"ServiceType": "Interface"}], "AvailabilityZones": names, "Owner": "amazon",
            "BaseEndpointDnsNames": [f"{service}.{REGION}.vpce.amazonaws.com"],
            "PrivateDnsName": f"{service}.{REGION}.amazonaws.com", "VpcEndpointPolicySupported": True,
            "AcceptanceRequired": False, "ManagesVpcEndpoints": False, "Tags": [],
            "PrivateDnsNameVerificationState": "verified", "SupportedIpAddressTypes": ["ipv4"]}


def _answers(ec2, offered: dict[str, list[str]]) -> None:
    ec2.stubber.add_response("describe_availability_zones", {
        "AvailabilityZones": [_zone(name, zone_id) for name, zone_id in ACCOUNT_ZONES.items()]},
        {"Filters": ZONE_FILTERS})
    ec2.stubber.add_response("describe_vpc_endpoint_services", {
        "ServiceNames": [f"com.amazonaws.{REGION}.{s}" for s in offered],
        "ServiceDetails": [_service(s, names) for s, names in offered.items()]},
        {"ServiceNames": [f"com.amazonaws.{REGION}.{s}" for s in offered]})


ALL = sorted(ACCOUNT_ZONES)
OFFERED = {"sns": ALL[:-1], "sqs": ALL, "lambda": ALL[1:]}       # no SNS in us-east-1f, no Lambda in us-east-1a


def test_prod_subnets_take_zone_ids_from_parameters_not_positions():
    primary = json.loads(render_environment(load_environment("prod"))[0])
    for index, name in enumerate(contract.PARAM_SUBNET_ZONE_IDS):
        subnet = primary["Resources"][f"IsolatedSubnet{index + 1}"]["Properties"]
        assert subnet["AvailabilityZoneId"] == {"Ref": name} and "AvailabilityZone" not in subnet
        assert primary["Parameters"][name]["Type"] == "String"
    assert "Fn::GetAZs" not in json.dumps(primary)


def test_the_services_asked_about_are_the_templates_interface_endpoints_and_lambda():
    rendered = render_environment(load_environment("prod"))[0]
    assert zones.declared(rendered)
    assert zones.endpoint_services(rendered, REGION) == ["sns", "sqs", "lambda"]
    assert not zones.declared(render_environment(load_environment("dev"))[0])


def test_zones_hosting_every_service_are_chosen_by_zone_id(ec2):
    _answers(ec2, OFFERED)
    choice = zones.choose_zones(ec2, REGION, ["sns", "sqs", "lambda"])
    assert choice.zone_ids == ("use1-az1", "use1-az2") and choice.names == ("us-east-1c", "us-east-1d")
    assert "use1-az3" not in choice.zone_ids      # what position 0 gave in this account
    assert choice.parameters() == {"IsolatedSubnet1ZoneId": "use1-az1", "IsolatedSubnet2ZoneId": "use1-az2"}
    assert choice.line() == ("subnet zones: use1-az1 (us-east-1c), use1-az2 (us-east-1d): the first in zone-ID order "
                             "of the zones hosting sns, sqs, lambda")


def test_a_deployed_stack_keeps_its_zones_while_they_host_everything(ec2):
    _answers(ec2, OFFERED)
    choice = zones.choose_zones(ec2, REGION, ["sns", "sqs", "lambda"], current=("use1-az6", "use1-az4"))
    assert (choice.zone_ids, choice.kept) == (("use1-az6", "use1-az4"), True)


def test_a_deployed_zone_that_lost_a_service_is_replaced(ec2):
    _answers(ec2, OFFERED)
    choice = zones.choose_zones(ec2, REGION, ["sns", "sqs", "lambda"], current=("use1-az3", "use1-az6"))
    assert (choice.zone_ids, choice.kept) == (("use1-az1", "use1-az2"), False)


def test_too_few_zones_is_one_clear_line(ec2):
    _answers(ec2, {"sns": ["us-east-1b"], "sqs": ALL, "lambda": ALL})
    with pytest.raises(UserError, match=r"^us-east-1 has 1 available zone\(s\) hosting sns, sqs, lambda \(use1-az6\); "
                                        r"the stack needs 2$"):
        zones.choose_zones(ec2, REGION, ["sns", "sqs", "lambda"])
