"""/v1/studies/{id}/threads and /messages: discussions of a study, optionally pinned to
an image and a region of it; and /v1/me/unread, the dashboard's unread counts.

Every member may read and post (a viewer too); only its author edits a message; its
author or an owner deletes one (softly: it stays in place, marked deleted); a thread's
author or an analyst renames, resolves or reopens it (see ``permissions.RULES``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field

from pixelmill.backends.metadata.messages import MessageRecord, ThreadRecord
from pixelmill.errors import InvalidParameter, NotFound
from pixelmill.services.gateway.auth import require
from pixelmill.services.gateway.bounds import Title
from pixelmill.services.gateway.deps import deps
from pixelmill.services.workspace.access import actor_of
from pixelmill.services.workspace.principal import Principal

router = APIRouter(tags=["messages"])
STUDY = "/v1/studies/{study_id}"
MAX_BODY = 20_000


class NewThread(BaseModel):
    title: Title
    body: str | None = Field(None, max_length=MAX_BODY, description="The first message.")
    image_id: str | None = Field(
        None, max_length=64, description="Pin to one of the study's images."
    )
    region: dict[str, Any] | None = Field(
        None,
        description="Where on the image: a viewport {x, y, w, h[, zoom]} in level-0 pixels, "
        "or a GeoJSON geometry (Polygon, MultiPolygon, Point, MultiPoint, LineString).",
        examples=[{"x": 1024, "y": 2048, "w": 512, "h": 512}],
    )


class ThreadChange(BaseModel):
    title: Title | None = None
    resolved: bool | None = None


class NewMessage(BaseModel):
    body: str = Field(..., min_length=1, max_length=MAX_BODY)


def _text(body: str) -> str:
    if not body.strip():
        raise InvalidParameter("a message needs some text", parameter="body")
    return body


def _user_of(principal: Principal) -> str:
    if not principal.user_id:
        raise InvalidParameter("messages have authors: log in or use a user's API key")
    return principal.user_id


def _authors(request: Request, ids: list[str]) -> dict[str, dict[str, Any]]:
    users = deps(request).users.many(sorted(set(ids)))
    return {uid: user.public() for uid, user in users.items()}


def thread_json(thread: ThreadRecord) -> dict[str, Any]:
    body = thread.to_json()
    base = f"/v1/studies/{thread.study_id}/threads/{thread.id}"
    body["links"] = {"self": base, "messages": f"{base}/messages", "read": f"{base}/read"}
    if thread.image_id:
        body["links"]["image"] = f"/v1/images/{thread.image_id}"
    return body


def messages_json(
    request: Request, messages: list[MessageRecord], *, history: bool = False
) -> list[dict[str, Any]]:
    authors = _authors(request, [m.author_id for m in messages])
    repo = deps(request).messages
    out = []
    for m in messages:
        body = m.to_json()
        body["author"] = authors.get(m.author_id)
        body["links"] = {"edits": f"/v1/studies/{m.study_id}/messages/{m.id}/edits"}
        if history:
            body["history"] = [e.to_json() for e in repo.edits(m.id)] if m.edits else []
        out.append(body)
    return out


def _thread(request: Request, study_id: str, thread_id: str, user_id: str) -> ThreadRecord:
    thread = deps(request).messages.thread(thread_id, user_id)
    if thread.study_id != study_id:
        raise NotFound(f"no thread {thread_id!r}")
    return thread


def _message(request: Request, study_id: str, message_id: str) -> MessageRecord:
    message = deps(request).messages.message(message_id)
    if message.study_id != study_id:
        raise NotFound(f"no message {message_id!r}")
    return message


# -- threads ------------------------------------------------------------------------------
@router.get(STUDY + "/threads", summary="The study's threads, most recent message first")
def list_threads(
    request: Request,
    study_id: str,
    resolved: bool | None = Query(None, description="Only resolved (true) or open (false)."),
    image_id: str | None = Query(None, max_length=64, description="Only threads on this image."),
    limit: int = Query(50, ge=1, le=200),
    offset: int = Query(0, ge=0, le=1_000_000),
    principal: Principal = Depends(require("read")),
) -> dict[str, Any]:
    c = deps(request)
    c.access.study(principal, study_id, "message.read")
    rows, total = c.messages.threads(
        study_id,
        principal.user_id,
        resolved=resolved,
        image_id=image_id,
        limit=limit,
        offset=offset,
    )
    return {
        "items": [thread_json(t) for t in rows],
        "total": total,
        "limit": limit,
        "offset": offset,
    }


@router.post(STUDY + "/threads", status_code=201, summary="Start a thread (pinned or not)")
def create_thread(
    request: Request,
    response: Response,
    study_id: str,
    body: NewThread,
    principal: Principal = Depends(require("write")),
) -> dict[str, Any]:
    c = deps(request)
    _user_of(principal)
    c.access.study(principal, study_id, "message.post")
    thread = c.messages.create_thread(
        actor_of(principal),
        study_id,
        title=body.title,
        body=None if body.body is None else _text(body.body),
        image_id=body.image_id,
        region=body.region,
    )
    response.headers["Location"] = f"/v1/studies/{study_id}/threads/{thread.id}"
    return thread_json(thread)


@router.get(STUDY + "/threads/{thread_id}", summary="A thread with its first page of messages")
def get_thread(
    request: Request,
    study_id: str,
    thread_id: str,
    limit: int = Query(100, ge=1, le=500),
    edits: bool = Query(False, description="Include each message's earlier texts."),
    principal: Principal = Depends(require("read")),
) -> dict[str, Any]:
    c = deps(request)
    c.access.study(principal, study_id, "message.read")
    thread = _thread(request, study_id, thread_id, principal.user_id)
    page, total = c.messages.messages(thread_id, limit=limit)
    body = thread_json(thread)
    body["messages"] = {
        "items": messages_json(request, page, history=edits),
        "total": total,
        "limit": limit,
        "offset": 0,
    }
    return body


@router.patch(STUDY + "/threads/{thread_id}", summary="Rename, resolve or reopen a thread")
def change_thread(
    request: Request,
    study_id: str,
    thread_id: str,
    body: ThreadChange,
    principal: Principal = Depends(require("write")),
) -> dict[str, Any]:
    c = deps(request)
    thread = _thread(request, study_id, thread_id, principal.user_id)
    c.access.study(principal, study_id, "thread.manage", author_id=thread.created_by)
    if body.title is None and body.resolved is None:
        raise InvalidParameter("nothing to change: give title or resolved")
    changed = c.messages.update_thread(
        actor_of(principal), thread_id, title=body.title, resolved=body.resolved
    )
    return thread_json(changed)


@router.post(STUDY + "/threads/{thread_id}/read", summary="Mark the thread read (for you)")
def mark_read(
    request: Request, study_id: str, thread_id: str, principal: Principal = Depends(require("read"))
) -> dict[str, Any]:
    c = deps(request)
    user_id = _user_of(principal)
    c.access.study(principal, study_id, "message.read")
    _thread(request, study_id, thread_id, user_id)
    read_at = c.messages.mark_read(user_id, thread_id)
    return {"thread_id": thread_id, "read_at": read_at.isoformat(), "unread": 0}


# -- messages -----------------------------------------------------------------------------
@router.get(STUDY + "/threads/{thread_id}/messages", summary="A page of messages, oldest first")
def list_messages(
    request: Request,
    study_id: str,
    thread_id: str,
    limit: int = Query(100, ge=1, le=500),
    offset: int = Query(0, ge=0, le=10_000_000),
    edits: bool = Query(False, description="Include each message's earlier texts."),
    principal: Principal = Depends(require("read")),
) -> dict[str, Any]:
    c = deps(request)
    c.access.study(principal, study_id, "message.read")
    _thread(request, study_id, thread_id, principal.user_id)
    page, total = c.messages.messages(thread_id, limit=limit, offset=offset)
    return {
        "items": messages_json(request, page, history=edits),
        "total": total,
        "limit": limit,
        "offset": offset,
    }


@router.post(STUDY + "/threads/{thread_id}/messages", status_code=201, summary="Post a message")
def post_message(
    request: Request,
    response: Response,
    study_id: str,
    thread_id: str,
    body: NewMessage,
    principal: Principal = Depends(require("write")),
) -> dict[str, Any]:
    c = deps(request)
    _user_of(principal)
    c.access.study(principal, study_id, "message.post")
    _thread(request, study_id, thread_id, principal.user_id)
    message = c.messages.post(actor_of(principal), thread_id, _text(body.body))
    response.headers["Location"] = f"/v1/studies/{study_id}/messages/{message.id}"
    return messages_json(request, [message])[0]


@router.patch(STUDY + "/messages/{message_id}", summary="Edit your message (the old text is kept)")
def edit_message(
    request: Request,
    study_id: str,
    message_id: str,
    body: NewMessage,
    principal: Principal = Depends(require("write")),
) -> dict[str, Any]:
    c = deps(request)
    message = _message(request, study_id, message_id)
    c.access.study(principal, study_id, "message.edit", author_id=message.author_id)
    edited = c.messages.edit(actor_of(principal), message_id, _text(body.body))
    return messages_json(request, [edited])[0]


@router.delete(
    STUDY + "/messages/{message_id}",
    status_code=204,
    summary="Delete a message (yours, or any as an owner); it stays in place, marked deleted",
)
def delete_message(
    request: Request,
    study_id: str,
    message_id: str,
    principal: Principal = Depends(require("write")),
) -> Response:
    c = deps(request)
    message = _message(request, study_id, message_id)
    c.access.study(principal, study_id, "message.delete", author_id=message.author_id)
    c.messages.delete(actor_of(principal), message_id)
    return Response(status_code=204)


@router.get(STUDY + "/messages/{message_id}/edits", summary="A message's earlier texts")
def message_edits(
    request: Request,
    study_id: str,
    message_id: str,
    principal: Principal = Depends(require("read")),
) -> dict[str, Any]:
    c = deps(request)
    c.access.study(principal, study_id, "message.read")
    message = _message(request, study_id, message_id)
    if message.deleted_at is not None:
        return {"items": []}
    return {"items": [e.to_json() for e in c.messages.edits(message_id)]}


# -- the dashboard ------------------------------------------------------------------------
@router.get("/v1/me/unread", summary="Your unread messages, per study (studies with none left out)")
def my_unread(request: Request, principal: Principal = Depends(require("read"))) -> dict[str, Any]:
    c = deps(request)
    counts = c.messages.unread_by_study(principal.user_id) if principal.user_id else {}
    items = [
        {
            "study_id": sid,
            "name": name,
            "unread_messages": n,
            "links": {"threads": f"/v1/studies/{sid}/threads"},
        }
        for sid, (name, n) in sorted(counts.items(), key=lambda kv: (-kv[1][1], kv[0]))
    ]
    return {"items": items, "total": sum(n for _name, n in counts.values())}
