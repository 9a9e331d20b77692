"""What a deploy of one stack is asked to do and what came of it: the stack as this checkout wants
it (StackSpec), the operator's choices (Options), the outcome (StackResult). Plain values shared by
the deployer and the review, so neither imports the other to name them."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Callable

import click

from backup_cfn.deploy import changeset
from backup_cfn.deploy.changeset import ChangeSet
from backup_cfn.deploy.review.model import StackReview
from backup_cfn.stack.render import wire_body


@dataclass(frozen=True)
class Options:
    yes: bool = False
    no_execute: bool = False
    allow_replace: frozenset[str] = frozenset()
    accept: frozenset[str] = frozenset()     # blocking forecast findings accepted by ID
    recreate_failed: bool = False
    interactive: bool = False
    confirm: Callable[[str], bool] = field(default=lambda prompt: click.confirm(prompt, default=False))


@dataclass(frozen=True)
class StackSpec:
    """One stack as this checkout wants it."""

    label: str
    name: str
    region: str
    rendered: str                  # the template exactly as `make template` writes it
    parameters: dict[str, str]
    tags: dict[str, str]
    production: bool = False
    # Values for the stack's first creation only; once it exists, `parameters` are applied (the
    # tables' deletion protection: a first creation that fails must be able to delete its tables).
    first_create: dict[str, str] = field(default_factory=dict)

    def for_creation(self) -> StackSpec:
        return replace(self, parameters={**self.parameters, **self.first_create}) if self.first_create else self

    @cached_property
    def document(self) -> dict:
        return json.loads(self.rendered)

    @cached_property
    def body(self) -> str:
        return wire_body(self.rendered)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.rendered.encode()).hexdigest()

    @property
    def stateful_ids(self) -> list[str]:
        return sorted(logical_id for logical_id, resource in self.document.get("Resources", {}).items()
                      if resource.get("Type") in changeset.STATEFUL_TYPES)


@dataclass(frozen=True)
class StackResult:
    outcome: str                   # "no changes" | "executed" | "planned" | "blocked"
    outputs: dict[str, str]
    change_set: ChangeSet | None = None
    review: StackReview | None = None
