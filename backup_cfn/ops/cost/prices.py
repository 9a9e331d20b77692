"""The price file: list prices of one region, dated and sourced, read from the JSON beside this
module (never fetched). To update them, edit the file; for another region, add prices-<region>.json."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from backup_cfn.errors import UserError

PRICES_DIR = Path(__file__).resolve().parent / "data"


@dataclass(frozen=True)
class Prices:
    data: dict
    path: Path

    def __getitem__(self, key: str) -> dict:
        return self.data[key]

    @property
    def days_per_month(self) -> float:
        return self.data["days_per_month"]

    @property
    def hours_per_month(self) -> float:
        return self.data["hours_per_month"]

    def standard_storage(self, gb: float) -> float:
        """Monthly price of `gb` GB-months of S3 Standard, through the volume tiers."""
        cost, left = 0.0, gb
        for size, price in self.data["s3"]["standard_gb_month_tiers"]:
            portion = left if size is None else min(left, size)
            cost += portion * price
            left -= portion
            if left <= 0:
                break
        return cost

    @property
    def label(self) -> str:
        return f"{self.path.name}: list prices as of {self.data['prices_as_of']} ({self.data['region']})"


def load_prices(region: str, directory: Path = PRICES_DIR) -> Prices:
    path = directory / f"prices-{region}.json"
    if not path.exists():
        known = sorted(p.stem.removeprefix("prices-") for p in directory.glob("prices-*.json"))
        raise UserError(f"no price file for region {region} (have: {', '.join(known) or 'none'}); "
                        f"add {path.name} beside them")
    try:
        return Prices(json.loads(path.read_text(encoding="utf-8")), path)
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: cannot read the price file: {exc}") from None
