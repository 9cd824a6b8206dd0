"""Conditional requests (RFC 9110 §13): one implementation for every surface.

A representation's validators are an opaque entity tag and, where known, the time it last
changed. ``If-None-Match`` is compared weakly against the tag (caches send every tag they hold,
some as ``W/``, in lists, or ``*``); without it, ``If-Modified-Since`` against the time.
"""

from __future__ import annotations

import datetime as dt
from email.utils import format_datetime as http_date

from flask import request


def _settled(modified: dt.datetime) -> bool:
    """Whether the last change is in a past second. HTTP dates have one-second precision: a
    Last-Modified of the current second would still validate a copy older than a change made
    later in that second (RFC 9110 §8.8.2.2), so none is sent (nor honoured) until it is over."""
    return dt.datetime.now(dt.UTC) - modified.replace(microsecond=0) >= dt.timedelta(seconds=1)


def last_modified(modified: dt.datetime | None) -> str | None:
    """The Last-Modified value to send, if any."""
    if modified is None or not _settled(modified):
        return None
    return http_date(modified.replace(microsecond=0), usegmt=True)


def not_modified(tag: str, modified: dt.datetime | None) -> bool:
    """Whether the client's copy is current: If-None-Match compared weakly against the opaque
    ``tag`` (caches send every tag they hold, some as W/), else If-Modified-Since."""
    if request.if_none_match:
        return request.if_none_match.contains_weak(tag.strip('"'))
    since = request.if_modified_since
    if since is None or modified is None or not _settled(modified):
        return False
    return modified.replace(microsecond=0) <= since
