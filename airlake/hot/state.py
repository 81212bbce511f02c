"""The state store: a small batched key-value interface over DynamoDB, or memory for tests.

Items are keyed by `pk` (S) and `sk` (S) and carry a JSON document, a `version` (N) for optimistic
concurrency and a TTL `expires_at` (N, epoch seconds). A stage reads every item it needs for a whole
batch in one `get_many` and writes each changed item once with a conditional put, so the number of
calls grows with devices per batch, never with records. A write whose version changed underneath
(a concurrent or replayed writer) is reported back, and that device's records become batch item
failures instead of silently overwriting newer state.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

Key = tuple[str, str]

_BATCH_GET_LIMIT = 100  # DynamoDB BatchGetItem: at most 100 keys a call
_MAX_UNPROCESSED_ROUNDS = 8


@dataclass(frozen=True, slots=True)
class Stored:
    doc: dict[str, Any]
    version: int


@dataclass(frozen=True, slots=True)
class Write:
    """Put `doc` at (pk, sk) if the stored version is still `expected_version` (None: absent)."""

    pk: str
    sk: str
    doc: dict[str, Any]
    expected_version: int | None
    expires_at: int

    @property
    def key(self) -> Key:
        return (self.pk, self.sk)


class StateStore(Protocol):
    def get_many(self, keys: Sequence[Key]) -> dict[Key, Stored]:
        """Every existing item among `keys` (missing ones are absent from the result)."""
        ...

    def put_many(self, writes: Sequence[Write]) -> list[Key]:
        """Apply each write conditionally; returns the keys whose condition failed."""
        ...


@dataclass
class InMemoryStateStore:
    """Dict-backed store with the same semantics; documents are serialized so callers cannot
    share mutable state with it (as with a real table). Counts calls for the batching tests."""

    items: dict[Key, tuple[bytes, int, int]] = field(default_factory=dict)
    get_calls: int = 0
    put_calls: int = 0

    def get_many(self, keys: Sequence[Key]) -> dict[Key, Stored]:
        self.get_calls += 1
        out: dict[Key, Stored] = {}
        for key in keys:
            item = self.items.get(key)
            if item is not None:
                out[key] = Stored(orjson.loads(item[0]), item[1])
        return out

    def put_many(self, writes: Sequence[Write]) -> list[Key]:
        self.put_calls += 1
        conflicts: list[Key] = []
        for write in writes:
            current = self.items.get(write.key)
            current_version = None if current is None else current[1]
            if current_version != write.expected_version:
                conflicts.append(write.key)
                continue
            version = 1 if current_version is None else current_version + 1
            self.items[write.key] = (orjson.dumps(write.doc), version, write.expires_at)
        return conflicts

    def doc(self, pk: str, sk: str) -> dict[str, Any] | None:
        item = self.items.get((pk, sk))
        return None if item is None else dict(orjson.loads(item[0]))


class DynamoDBStateStore:
    """The table from the stack: `pk`/`sk` strings, TTL on `expires_at`, on-demand billing."""

    def __init__(self, table_name: str, client_factory: Callable[[], Any]) -> None:
        self.table_name = table_name
        self._client_factory = client_factory
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:  # created on first use so AWS_ENDPOINT_URL set later is honoured
            self._client = self._client_factory()
        return self._client

    def get_many(self, keys: Sequence[Key]) -> dict[Key, Stored]:
        out: dict[Key, Stored] = {}
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), _BATCH_GET_LIMIT):
            request: dict[str, Any] = {
                self.table_name: {
                    "Keys": [
                        {"pk": {"S": pk}, "sk": {"S": sk}}
                        for pk, sk in unique[start : start + _BATCH_GET_LIMIT]
                    ],
                    "ConsistentRead": True,
                }
            }
            for attempt in range(_MAX_UNPROCESSED_ROUNDS):
                reply = self.client.batch_get_item(RequestItems=request)
                for item in reply.get("Responses", {}).get(self.table_name, []):
                    key = (item["pk"]["S"], item["sk"]["S"])
                    out[key] = Stored(orjson.loads(item["doc"]["B"]), int(item["version"]["N"]))
                request = reply.get("UnprocessedKeys") or {}
                if not request:
                    break
                time.sleep(min(0.05 * 2**attempt, 1.0))
            else:
                raise RuntimeError(f"DynamoDB left keys unprocessed after {_MAX_UNPROCESSED_ROUNDS} rounds")
        return out

    def put_many(self, writes: Sequence[Write]) -> list[Key]:
        conflicts: list[Key] = []
        client = self.client
        for write in writes:
            version = 1 if write.expected_version is None else write.expected_version + 1
            item = {
                "pk": {"S": write.pk},
                "sk": {"S": write.sk},
                "doc": {"B": orjson.dumps(write.doc)},
                "version": {"N": str(version)},
                "expires_at": {"N": str(write.expires_at)},
            }
            if write.expected_version is None:
                condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(pk)"}
            else:
                condition = {
                    "ConditionExpression": "version = :v",
                    "ExpressionAttributeValues": {":v": {"N": str(write.expected_version)}},
                }
            try:
                client.put_item(TableName=self.table_name, Item=item, **condition)
            except client.exceptions.ConditionalCheckFailedException:
                conflicts.append(write.key)
        return conflicts
