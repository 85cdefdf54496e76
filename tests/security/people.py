"""Users for attack tests: alice (the victim), bob (the attacker, a member with a write
key of his own) and an admin, each with an API key; requests as each of them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi.testclient import TestClient

from tests.helpers import make_key


@dataclass
class Person:
    client: TestClient
    user_id: str
    key: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def get(self, path: str, **kw: Any) -> Any:
        return self.client.get(path, headers=self.auth, **kw)

    def post(self, path: str, **kw: Any) -> Any:
        return self.client.post(path, headers={**self.auth, **kw.pop("headers", {})}, **kw)

    def put(self, path: str, **kw: Any) -> Any:
        return self.client.put(path, headers=self.auth, **kw)

    def patch(self, path: str, **kw: Any) -> Any:
        return self.client.patch(path, headers=self.auth, **kw)

    def delete(self, path: str, **kw: Any) -> Any:
        return self.client.delete(path, headers=self.auth, **kw)


def person(container: Any, client: TestClient, username: str, role: str = "write") -> Person:
    record, secret = make_key(container, username, role, username=username)
    return Person(client, record.user_id, secret)
