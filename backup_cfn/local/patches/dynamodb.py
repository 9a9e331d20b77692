"""DynamoDB in the emulator: each request applied atomically, transactions cost per item, as on
AWS; an update expression parsed once and items written without the generic serializer (listed
in docs/emulator.md).

moto 5.2.5's TransactWriteItems deep-copies every table it touches, for a rollback, before each
transaction: its cost grows with the table (the runs table holds a record per user per run), so
a 1,000-user run slows down as it goes (about 0.3 s per job by the end of a day). AWS's cost is
per item. The fix snapshots only the items the transaction names (the rest shallowly), which
restores exactly the same state on rollback, and applies the transaction under a lock, as AWS
applies it atomically.
"""
from __future__ import annotations

import copy
import pickle
import threading

_state = threading.local()
# One lock for every DynamoDB request the emulator serves (and every transaction): requests are
# applied one at a time, as DynamoDB applies each to its items atomically. The server is one Python
# process, so this costs no parallelism: its threads take turns on the interpreter lock anyway.
_lock = threading.RLock()


def patch_atomic_requests() -> None:
    """moto 5.2.5 applies a DynamoDB request without a lock: a conditional write reads the item,
    evaluates the condition and writes, and an ADD reads, adds and writes, while the server's
    other threads (one per connection) may do the same to the same item between those steps. Two
    concurrent claims could both succeed and concurrent counters lose increments; a read could see
    half an update. DynamoDB applies each write atomically and each read sees a whole item.

    Every DynamoDB request is handled under one lock, from its parsed parameters to its written
    response. This replaces serialising writes in the client, which held a per-item lock across
    the whole round trip and so kept concurrent jobs waiting on the run record (353 s of thread
    time blocked in the demo) and protected only the writes of one process. Idempotent."""
    from moto.dynamodb.responses import DynamoHandler

    if getattr(DynamoHandler, "_backup_cfn_atomic_requests", False):
        return
    original = DynamoHandler.call_action

    def call_action(self):
        with _lock:
            return original(self)

    DynamoHandler.call_action = call_action
    DynamoHandler._backup_cfn_atomic_requests = True


def patch_transactions() -> None:
    """Idempotent."""
    import moto.dynamodb.models as models
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table

    backend_class = models.DynamoDBBackend
    if getattr(backend_class, "_backup_cfn_cheap_transactions", False):
        return
    original = backend_class.transact_write_items
    real_copy_module = models.copy

    class SnapshotCopy:
        """`copy` as seen by moto's DynamoDB module: deepcopy of a Table inside a transaction
        is a snapshot of the named items; everything else is the real copy module."""

        def __getattr__(self, name):
            return getattr(real_copy_module, name)

        @staticmethod
        def deepcopy(value, memo=None):
            keys = getattr(_state, "keys", None)
            if keys is None or not isinstance(value, Table):
                return real_copy_module.deepcopy(value, memo)
            return _snapshot(value, keys.get(value.name, ()))

    def transact_write_items(self, transact_items):
        keys: dict[str, list] = {}
        for entry in transact_items:
            _, op = next(iter(entry.items()))
            table = self.tables.get(op.get("TableName"))
            if table is None:
                continue
            raw = op.get("Key") or op.get("Item") or {}
            hash_value = raw.get(table.hash_key_attr)
            range_value = raw.get(table.range_key_attr) if table.range_key_attr else None
            keys.setdefault(table.name, []).append((DynamoType(hash_value) if hash_value else None,
                                                    DynamoType(range_value) if range_value else None))
        with _lock:
            _state.keys = keys
            try:
                return original(self, transact_items)
            finally:
                _state.keys = None

    models.copy = SnapshotCopy()
    backend_class.transact_write_items = transact_write_items
    backend_class._backup_cfn_cheap_transactions = True


def _snapshot(table, keys) -> object:
    clone = copy.copy(table)
    items = type(table.items)() if not hasattr(table.items, "default_factory") else type(table.items)(table.items.default_factory)
    for hash_key, value in table.items.items():
        items[hash_key] = dict(value) if isinstance(value, dict) else value
    for hash_key, range_key in keys:
        if hash_key is None or hash_key not in table.items:
            continue
        if table.range_key_attr:
            if range_key is not None and range_key in table.items[hash_key]:
                items[hash_key][range_key] = copy.deepcopy(table.items[hash_key][range_key])
        else:
            items[hash_key] = copy.deepcopy(table.items[hash_key])
    clone.items = items
    return clone


def patch_table_updates() -> None:
    """A CloudFormation update of an AWS::DynamoDB::Table changes its DeletionProtectionEnabled in
    place, as AWS does ("Update requires: No interruption", AWS::DynamoDB::Table in the CloudFormation
    User Guide); moto 5.2.5 has no update for a table, so the stack says protected and the table is not.
    Other properties are left as they were (docs/emulator.md, known gaps)."""
    from moto.dynamodb.models.table import Table

    def update_from_cloudformation_json(cls, original_resource, new_resource_name, cloudformation_json, account_id,
                                        region_name):
        value = cloudformation_json.get("Properties", {}).get("DeletionProtectionEnabled", False)
        original_resource.deletion_protection_enabled = value in (True, "true", "True")
        return original_resource

    Table.update_from_cloudformation_json = classmethod(update_from_cloudformation_json)


def patch_expression_cache(size: int = 512) -> None:
    """moto 5.2.5 tokenises and parses an UpdateExpression anew for every UpdateItem and every
    Update in TransactWriteItems (twice: once to check the names and values used, once to apply
    it; 15% of DynamoDB's CPU in the demo, whose few expressions repeat thousands of times), and
    its validator then deep-copies the parsed tree (`copy.deepcopy` of a tree with parent links:
    another 15-20%).

    A parse depends only on the expression string, and moto never changes a parsed tree (the
    validator works on its own copy), so parsed trees are kept per expression string, up to `size`
    of them; an expression that does not parse still raises moto's error on every call. The
    validator's copy of a kept tree is made by unpickling a pickle of it taken once: the same
    object graph, parent links and sharing included, about five times faster than deepcopy. Every
    other deepcopy in the validators is the real one.

    What depends only on a kept tree is then found once too: the clauses the request handler looks
    up in it (the names and values it uses), and the verdict of the three validators that only
    check the expression itself against its names and the table's keys (one SET/ADD/REMOVE
    clause each, no overlapping paths, no key attribute updated: three of the validator's ten
    passes over the tree). A check that fails is not kept, so it fails again on the next call
    with moto's error. Idempotent."""
    from moto.dynamodb.parsing import validators
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser

    if getattr(UpdateExpressionParser, "_backup_cfn_expression_cache", False):
        return
    original = UpdateExpressionParser.make.__func__
    trees: dict[str, object] = {}
    pickled: dict[int, tuple[object, bytes]] = {}  # id(tree) -> (tree, its pickle), for the kept trees
    found: dict[tuple, list] = {}  # (id(tree), clause types) -> the clauses of that type in a kept tree
    passed: set[tuple] = set()  # (id(tree), names, table keys) whose expression-only checks passed
    lock = threading.Lock()

    def make(cls, expression: str):
        if cls is not UpdateExpressionParser or not isinstance(expression, str):
            return original(cls, expression)
        tree = trees.get(expression)
        if tree is not None:
            return tree
        tree = original(cls, expression)
        try:
            blob = pickle.dumps(tree, pickle.HIGHEST_PROTOCOL)
        except Exception:  # noqa: BLE001 - a tree pickle cannot take is deep-copied, as moto does
            blob = None
        with lock:
            if len(trees) >= size:  # a tree's id may be reused once it is gone: forget all of it
                for kept in (trees, pickled, found, passed):
                    kept.clear()
            trees[expression] = tree
            if blob is not None:
                pickled[id(tree)] = (tree, blob)
        return tree

    def deepcopy(value, memo=None):
        entry = pickled.get(id(value))
        if entry is not None and entry[0] is value and memo is None:
            return pickle.loads(entry[1])
        return copy.deepcopy(value, memo)

    UpdateExpressionParser.make = classmethod(make)
    validators.deepcopy = deepcopy
    _keep_expression_checks(validators, lambda tree: pickled.get(id(tree), (None,))[0] is tree, found, passed)
    UpdateExpressionParser._backup_cfn_expression_cache = True


def _keep_expression_checks(validators, is_kept, found: dict, passed: set) -> None:
    """Clauses found in a kept tree, and the expression-only validators' passes, once per tree."""
    from moto.dynamodb.parsing.ast_nodes import Node

    expression_only = (validators.ActionCountValidator, validators.OverlappingPathsValidator,
                       validators.UpdateHashRangeKeyValidator)
    original_find_clauses = Node.find_clauses
    original_init = validators.UpdateExpressionValidator.__init__

    def find_clauses(self, clause_types):
        if not is_kept(self):
            return original_find_clauses(self, clause_types)
        key = (id(self), tuple(clause_types))
        if key not in found:
            found[key] = original_find_clauses(self, clause_types)
        return list(found[key])

    def __init__(self, expression, *args, **kwargs):
        original_init(self, expression, *args, **kwargs)
        if is_kept(expression):
            names = tuple(sorted((self.expression_attribute_names or {}).items()))
            self._backup_cfn_checked = (id(expression), names, tuple(self.table.table_key_attrs))

    def validate(self):
        checked = getattr(self, "_backup_cfn_checked", None)
        skip = expression_only if checked in passed else ()
        node = self.node_to_validate
        for processor in self.processors:
            if not isinstance(processor, skip):
                node = processor.traverse(node)
        if checked is not None:
            passed.add(checked)
        return node

    Node.find_clauses = find_clauses
    validators.UpdateExpressionValidator.__init__ = __init__
    validators.UpdateExpressionValidator.validate = validate


def patch_attribute_value_serializer() -> None:
    """moto 5.2.5 writes every DynamoDB response through its generic, botocore-model-driven
    serializer: for each AttributeValue of each item it tries all ten members (S, N, B, SS, NS, BS,
    M, L, NULL, BOOL), each through four alias providers and a name transformation, to find the
    one that is set (16-18% of DynamoDB's CPU in the demo; a GetItem of the ~20-attribute run
    record is the expensive case).

    moto's items are already in the wire format ({"S": "x"}, {"M": {...}}, bytes for B), so an
    AttributeValue holding exactly one member of the expected Python type is written directly:
    strings and numbers as they are, booleans as they are, binaries base64-encoded by the
    serializer's own encoder, sets, lists and maps member by member. Anything else (several
    members, an unexpected type) goes through moto's own code. The JSON written is the same,
    byte for byte. Idempotent."""
    from moto.core import serialize

    if "dynamodb" in serialize.SERVICE_SPECIFIC_SERIALIZERS:
        return

    class DynamoDBSerializer(serialize.JSONSerializer):
        def _serialize_type_structure(self, serialized, value, shape, key):
            if key and shape.name == "AttributeValue":
                wire = _attribute_value(value, self._base64)
                if wire is not None:
                    self._default_serialize(serialized, wire, shape, key)
                    return
            super()._serialize_type_structure(serialized, value, shape, key)

    serialize.SERVICE_SPECIFIC_SERIALIZERS["dynamodb"] = {"json": DynamoDBSerializer}


def _attribute_value(value, base64):
    """The wire form of one AttributeValue as moto's serializer writes it, or None where only
    moto's serializer knows (it is then left to it)."""
    if type(value) is not dict or len(value) != 1:
        return None
    (kind, inner), = value.items()
    if kind in ("S", "N"):
        return {kind: inner} if type(inner) is str else None
    if kind in ("BOOL", "NULL"):
        return {kind: inner} if type(inner) is bool else None
    if kind == "B":
        return {kind: base64(inner)} if isinstance(inner, (bytes, str)) else None
    if kind in ("SS", "NS"):
        return {kind: list(inner)} if type(inner) is list and all(type(x) is str for x in inner) else None
    if kind == "BS":
        return {kind: [base64(x) for x in inner]} if type(inner) is list and all(isinstance(x, (bytes, str)) for x in inner) else None
    if kind == "M" and type(inner) is dict:
        members = {}
        for name, member in inner.items():
            members[name] = _attribute_value(member, base64)
            if members[name] is None:
                return None
        return {kind: members}
    if kind == "L" and type(inner) is list:
        members = [_attribute_value(member, base64) for member in inner]
        return None if any(member is None for member in members) else {kind: members}
    return None


def patch_expression_traversal() -> None:
    """Each of the UpdateExpression validator's passes is a moto 5.2.5 `DepthFirstTraverser`,
    which for every node it visits rebuilds its processing map (a dict of bound methods) and a
    tuple of its keys, and tests the node against abstract base classes (10-15% of the emulator's
    CPU in the demo, whose runs make about 8,000 UpdateItems).

    The replacement visits the same nodes in the same order, calls the same child hook, and applies
    the same processor (the first in the map's order whose class the node is an instance of,
    placed where the node was), computing the map once per traverser and the processor once per
    traverser class and node type. moto's node classes register no virtual subclasses, so a
    node's type says what isinstance says. A traverser that overrides how nodes are chosen or
    processed keeps moto's code. Idempotent."""
    from moto.dynamodb.parsing import ast_nodes

    traverser, node_class = ast_nodes.DepthFirstTraverser, ast_nodes.Node
    if getattr(traverser, "_backup_cfn_traversal", False):
        return
    original = traverser.traverse_node_recursively
    is_node: dict[type, bool] = {}
    chosen: dict[tuple[type, type], int] = {}  # (traverser class, node type) -> processor's place in the map, or -1

    def processors(self) -> list:
        found = self.__dict__.get("_backup_cfn_processors")
        if found is None:
            found = self.__dict__["_backup_cfn_processors"] = list(self._processing_map().items())
        return found

    def traverse_node_recursively(self, node, child_id=-1):
        kind = type(self)
        if kind.nodes_to_be_processed is not traverser.nodes_to_be_processed or kind.process is not traverser.process:
            return original(self, node, child_id)
        node_type = type(node)
        if node_type not in is_node:
            is_node[node_type] = issubclass(node_type, node_class)
        if not is_node[node_type]:
            return node
        parent_node = node.parent
        if node.children is not None:
            for i, child_node in enumerate(node.children):
                self.pre_processing_of_child(node, i)
                self.traverse_node_recursively(child_node, i)
        place = chosen.get((kind, node_type))
        if place is None:
            place = chosen[(kind, node_type)] = next(
                (i for i, (cls, _) in enumerate(processors(self)) if issubclass(node_type, cls)), -1)
        if place >= 0:
            node = processors(self)[place][1](node)
            node.parent = parent_node
            if parent_node:
                parent_node.children[child_id] = node
        return node

    traverser.traverse_node_recursively = traverse_node_recursively
    traverser._backup_cfn_traversal = True


class _UpdateWork:
    """What one UpdateItem (or a transaction's Update) may skip: set by `patch_update_item_work`."""

    def __init__(self, table):
        self.table = table
        self.skip_item_copy = table is not None and table.stream_shard is None
        self.new_item_validation = None   # (tree, the validated tree) of a new item's first validation


def patch_update_item_work() -> None:
    """moto 5.2.5's UpdateItem does, for every request, work whose result it never uses:

    - for an item that does not exist yet, it validates the update expression on an empty item (to
      fail before creating anything), creates the item with its key, and validates the expression
      again on that item: every validator pass twice (the largest single cost of the engine's
      claim of new content);
    - it deep-copies the item before updating it, for the table's stream, also when the table has
      no stream;
    - the request handler parses the condition expression (for the names and values it uses), then
      the backend parses the same expression with the same names and values again (a transaction's
      Update too: the transaction evaluates it, then UpdateItem parses it again).

    The second validation's result is the first's whenever the expression refers to no key
    attribute: the two items differ only in their key attributes, and a validator reads the item
    only at the paths the expression names. An expression that names one is validated twice, as
    moto does. The copy is skipped only for a table without a stream (its only use). A parse of the
    same condition with the very same names and values objects, in the same request, returns the
    first parse's result (moto never changes a parsed condition; it evaluates it). Idempotent."""
    import moto.dynamodb.models as models
    from moto.dynamodb import comparisons
    from moto.dynamodb.models.dynamo_type import Item
    from moto.dynamodb.parsing import validators
    from moto.dynamodb.parsing.ast_nodes import ExpressionAttribute, ExpressionAttributeName

    backend_class = models.DynamoDBBackend
    if getattr(backend_class, "_backup_cfn_update_item_work", False):
        return
    original_update = backend_class.update_item
    original_validate = validators.UpdateExpressionValidator.validate
    original_init = validators.UpdateExpressionValidator.__init__
    original_parse = comparisons.ConditionExpressionParser.parse

    def update_item(self, table_name, *args, **kwargs):
        outer = getattr(_state, "update", None)
        _state.update = _UpdateWork(self.tables.get(table_name))
        try:
            return original_update(self, table_name, *args, **kwargs)
        finally:
            _state.update = outer

    def names_key_attribute(tree, names: dict | None, table) -> bool:
        keys = {table.hash_key_attr, table.range_key_attr} - {None}
        named = {(names or {}).get(node.get_attribute_name_placeholder()) for node in tree.find_clauses([ExpressionAttributeName])}
        named |= {node.get_attribute_name() for node in tree.find_clauses([ExpressionAttribute])}
        return bool(named & keys)

    def __init__(self, expression, expression_attribute_names, expression_attribute_values, item, table):
        work = getattr(_state, "update", None)
        first = work.new_item_validation if work is not None and work.table is table else None
        if first is not None:
            work.new_item_validation = None
            keys = {table.hash_key_attr, table.range_key_attr} - {None}
            if (first[0] is expression and isinstance(item, Item) and set(item.attrs) <= keys
                    and not names_key_attribute(expression, expression_attribute_names, table)):
                # The same validation as the first one: its result, without copying the tree again.
                self.expression_attribute_names, self.expression_attribute_values = expression_attribute_names, expression_attribute_values
                self.item, self.table, self._backup_cfn_validated = item, table, first[1]
                return
        original_init(self, expression, expression_attribute_names, expression_attribute_values, item, table)
        if work is not None and work.table is table and first is None and isinstance(item, Item) and not item.attrs:
            self._backup_cfn_first_of = (work, expression)   # a new item's first validation (on an empty item)

    def validate(self):
        validated = self.__dict__.get("_backup_cfn_validated")
        if validated is not None:
            return validated
        validated = original_validate(self)
        first_of = self.__dict__.get("_backup_cfn_first_of")
        if first_of is not None:
            first_of[0].new_item_validation = (first_of[1], validated)
        return validated

    def parse(self):
        seen = getattr(_state, "condition", None)
        if (seen is not None and seen[0] == self.condition_expression and seen[1] is self.expression_attribute_names
                and seen[2] is self.expression_attribute_values):
            self.expr_attr_names_found.extend(seen[4])
            self.expr_attr_values_found.extend(seen[5])
            return seen[3]
        parsed = original_parse(self)
        _state.condition = (self.condition_expression, self.expression_attribute_names, self.expression_attribute_values,
                            parsed, list(self.expr_attr_names_found), list(self.expr_attr_values_found))
        return parsed

    class CopyWithoutUnusedItemCopy:
        """`copy` as moto's DynamoDB backend sees it: the first deepcopy inside an update of a table
        without a stream (the item, for the stream) returns the item itself."""

        def __init__(self, inner):
            self._inner = inner

        def __getattr__(self, name):
            return getattr(self._inner, name)

        def deepcopy(self, value, memo=None):
            work = getattr(_state, "update", None)
            if work is not None and work.skip_item_copy:
                work.skip_item_copy = False
                if memo is None and (value is None or type(value) is Item):
                    return value
            return self._inner.deepcopy(value, memo)

    backend_class.update_item = update_item
    validators.UpdateExpressionValidator.__init__ = __init__
    validators.UpdateExpressionValidator.validate = validate
    comparisons.ConditionExpressionParser.parse = parse
    models.copy = CopyWithoutUnusedItemCopy(models.copy)
    backend_class._backup_cfn_update_item_work = True
