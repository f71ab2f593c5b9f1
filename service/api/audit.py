"""The audit trail: every change made through the API, who made it, from where, and when.

A change is any successful POST, PUT, PATCH or DELETE outside the read paths (asking, searching, /v1). The middleware
in this module files one ``audit`` record per change in the staff record store, under the knowledge base the change
touched (``*`` for the deployment's own: keys, knowledge bases). A route may add what the path does not say (a
title, a term) with ``note_for_audit``.
"""

from __future__ import annotations

from fastapi import Request

AUDIT_DETAIL_STATE = "audit_detail"


def note_for_audit(request: Request, **detail: object) -> None:
    """Add ``detail`` (short, JSON-safe values) to this request's audit record."""
    current = getattr(request.state, AUDIT_DETAIL_STATE, None) or {}
    setattr(request.state, AUDIT_DETAIL_STATE, {**current, **detail})
