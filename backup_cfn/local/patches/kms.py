"""KMS in the emulator accepts what CloudFormation sends AWS for a key (listed in docs/emulator.md)."""
from __future__ import annotations

import json


def patch_kms_key_properties() -> None:
    """AWS::KMS::Key accepts CloudFormation's Tags ([{Key, Value}]) and a KeyPolicy given as a JSON
    object, as AWS does (moto 5.2.5 fails on both: HTTP 500 on execute, a broken DescribeKey)."""
    from moto.kms.models import Key

    original = Key.create_from_cloudformation_json.__func__

    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        properties = dict(cloudformation_json["Properties"])
        if isinstance(properties.get("KeyPolicy"), dict):
            properties["KeyPolicy"] = json.dumps(properties["KeyPolicy"])
        properties["Tags"] = [
            {"TagKey": tag["Key"], "TagValue": tag["Value"]} if "Key" in tag else tag
            for tag in properties.get("Tags", [])
        ]
        return original(cls, resource_name, {**cloudformation_json, "Properties": properties},
                        account_id, region_name, **kwargs)

    Key.create_from_cloudformation_json = classmethod(create_from_cloudformation_json)
