"""The simulator's records rendered as Mastodon API entities.

Key sets and value formats follow the recorded payloads in shared/mastodon/ (Mastodon 4.x):
ids are strings, times are ISO 8601 with milliseconds, remote admin fields are null.
"""

from __future__ import annotations

import hashlib

import re
from datetime import datetime

from modwatch.simulator.ratelimit import iso8601
from modwatch.simulator.state import LOCAL_DOMAIN, Account, Report, Rule, SimState, Status, Token

MISSING_AVATAR = f"https://{LOCAL_DOMAIN}/avatars/original/missing.png"
MISSING_HEADER = f"https://{LOCAL_DOMAIN}/headers/original/missing.png"
OWNER_ROLE = {"id": "3", "name": "Owner", "permissions": "8388607", "color": "", "highlighted": True, "collection_limit": 10}
EVERYONE_ROLE = {"id": "-99", "name": "", "permissions": "65536", "color": "", "highlighted": False, "collection_limit": 10}
LINK = re.compile(r"https?://[^\s<>\"']+")


def rule(record: Rule) -> dict:
    return {"id": str(record.id), "text": record.text, "hint": record.hint, "translations": {}}


def rules(state: SimState) -> list[dict]:
    """The instance's rules as /api/v1/instance/rules lists them: discarded ones are left out."""
    return [rule(r) for r in state.rules if not r.discarded]


def account(state: SimState, record: Account) -> dict:
    home = record.domain or LOCAL_DOMAIN
    statuses = state.statuses_of(record.id)
    profile = f"https://{home}/@{record.username}"
    entity = {
        "id": str(record.id),
        "username": record.username,
        "acct": record.acct,
        "display_name": record.display_name,
        "locked": False,
        "bot": record.bot,
        "discoverable": True,
        "indexable": True,
        "group": False,
        "created_at": iso8601(record.created_at.replace(hour=0, minute=0, second=0, microsecond=0)),
        "note": record.note,
        "url": profile,
        "uri": f"https://{home}/users/{record.username}",
        "avatar": MISSING_AVATAR,
        "avatar_static": MISSING_AVATAR,
        "avatar_description": "",
        "header": MISSING_HEADER,
        "header_static": MISSING_HEADER,
        "header_description": "",
        "followers_count": 0,
        "following_count": 0,
        "statuses_count": len(statuses),
        "last_status_at": statuses[0].created_at.date().isoformat() if statuses else None,
        "hide_collections": None,
        "show_media": True,
        "show_media_replies": True,
        "show_featured": True,
        "noindex": False,
        "feature_approval": {"automatic": [], "manual": [], "current_user": "denied"},
        "emojis": [],
        "roles": [{"id": "3", "name": "Owner", "color": ""}] if record.role else [],
        "fields": [],
    }
    if record.moderation == "suspended":
        # REST::AccountSerializer: a suspended account shows `suspended` and nothing it wrote.
        entity.update(suspended=True, display_name="", note="", locked=False, bot=False, emojis=[], fields=[],
                      statuses_count=0, last_status_at=None)
    return entity


def credential_account(state: SimState, record: Account) -> dict:
    """verify_credentials: the Account plus `source` and `role`."""
    entity = account(state, record)
    entity["source"] = {
        "privacy": "public", "sensitive": False, "language": record.locale, "note": "", "fields": [],
        "follow_requests_count": 0, "hide_collections": None, "discoverable": True, "indexable": True,
        "attribution_domains": [], "quote_policy": "public",
    }
    entity["role"] = OWNER_ROLE if record.role else EVERYONE_ROLE
    return entity


def admin_account(state: SimState, record: Account) -> dict:
    local = record.domain is None
    return {
        "id": str(record.id),
        "username": record.username,
        "domain": record.domain,
        "created_at": iso8601(record.created_at),
        "email": f"{record.username}@{LOCAL_DOMAIN}" if local else None,
        "ip": None,
        "confirmed": record.moderation != "pending" if local else None,
        "suspended": record.moderation == "suspended",
        "silenced": record.moderation == "silenced",
        "sensitized": False,
        "disabled": record.moderation == "disabled" if local else None,
        "approved": record.moderation != "pending" if local else None,
        "locale": record.locale,
        "invite_request": None,
        "ips": [] if local else None,
        "account": account(state, record),
        "role": (OWNER_ROLE if record.role else EVERYONE_ROLE) if local else None,
    }


def media_attachment(status: Status, index: int, description: str | None) -> dict:
    url = f"https://{LOCAL_DOMAIN}/system/media_attachments/{status.id}/{index}.png"
    return {
        "id": str(status.id + index + 1),
        "type": "image",
        "url": url,
        "preview_url": url,
        "remote_url": None,
        "preview_remote_url": None,
        "text_url": None,
        "meta": {"original": {"width": 640, "height": 480, "size": "640x480", "aspect": 1.3333333333333333}},
        "description": description,
        "blurhash": _blurhash(status.id, index),
    }


_BASE83 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~"


def _blurhash(status_id: int, index: int) -> str:
    """A blurhash-shaped string of its own per picture: different pictures look different (the same
    one everywhere would make every pair of images a reupload, which wave detection looks for)."""
    digest = hashlib.sha256(f"{status_id}:{index}".encode()).digest()
    return "UF" + "".join(_BASE83[byte % 83] for byte in digest[:26])


def status(state: SimState, record: Status) -> dict:
    author = state.accounts[record.account_id]
    home = author.domain or LOCAL_DOMAIN
    return {
        "id": str(record.id),
        "created_at": iso8601(record.created_at),
        "in_reply_to_id": None,
        "in_reply_to_account_id": None,
        "sensitive": False,
        "spoiler_text": "",
        "visibility": record.visibility,
        "language": record.language,
        "uri": f"https://{home}/users/{author.username}/statuses/{record.id}",
        "url": f"https://{home}/@{author.username}/{record.id}",
        "replies_count": 0,
        "reblogs_count": 0,
        "favourites_count": 0,
        "quotes_count": 0,
        "edited_at": iso8601(record.edited_at) if record.edited_at else None,
        "favourited": False,
        "reblogged": False,
        "muted": False,
        "bookmarked": False,
        "pinned": False,
        "content": record.text if record.text.startswith("<p>") else f"<p>{record.text}</p>",
        "filtered": [],
        "reblog": None,
        "application": {"name": "Web", "website": None} if author.domain is None else None,
        "account": account(state, author),
        "media_attachments": [media_attachment(record, i, d) for i, d in enumerate(record.media_descriptions)],
        "mentions": [],
        "tags": [],
        "emojis": [],
        "tagged_collections": [],
        "quote": None,
        "card": card(record),
        "poll": None,
        "quote_approval": {"automatic": ["public"], "manual": [], "current_user": "automatic"},
    }


def card(record: Status) -> dict | None:
    """The preview card of the post's first link (REST::PreviewCardSerializer, 4.x keys)."""
    found = LINK.search(record.text)
    if found is None:
        return None
    url = found.group(0)
    host = url.split("/")[2]
    return {
        "url": url, "title": f"{host}", "description": "", "language": None, "type": "link",
        "author_name": "", "author_url": "", "provider_name": host, "provider_url": "", "html": "",
        "width": 0, "height": 0, "image": None, "image_description": "", "embed_url": "", "blurhash": None,
        "published_at": None, "authors": [],
    }


def _report_fields(record: Report) -> dict:
    return {
        "id": str(record.id),
        "action_taken": record.action_taken_at is not None,
        "action_taken_at": iso8601(record.action_taken_at) if record.action_taken_at else None,
        "category": record.category,
        "comment": record.comment,
        "forwarded": record.forwarded,
        "created_at": iso8601(record.created_at),
    }


def report(state: SimState, record: Report) -> dict:
    return {
        **_report_fields(record),
        "status_ids": [str(i) for i in record.status_ids] or None,
        "rule_ids": [str(i) for i in record.rule_ids] if record.rule_ids else None,
        "collection_ids": [],
        "target_account": account(state, state.accounts[record.target_account_id]),
    }


def admin_report(state: SimState, record: Report) -> dict:
    return {
        **_report_fields(record),
        "updated_at": iso8601(record.created_at),
        "account": admin_account(state, state.accounts[record.account_id]),
        "target_account": admin_account(state, state.accounts[record.target_account_id]),
        "assigned_account": None,
        "action_taken_by_account": None,
        "statuses": [status(state, state.statuses[i]) for i in record.status_ids if i in state.statuses],
        "rules": [rule(r) for r in state.rules if record.rule_ids and r.id in record.rule_ids],
    }


def application(token: Token) -> dict:
    return {
        "id": "1",
        "name": "modwatch simulator",
        "website": None,
        "scopes": token.scopes,
        "redirect_uris": ["urn:ietf:wg:oauth:2.0:oob"],
        "redirect_uri": "urn:ietf:wg:oauth:2.0:oob",
        "vapid_key": "BCk-QqERU0q-CfYZjcuB6lnyyOYfJ2AifKqfeGIm7Z-HiTU5T9eTG5GxVA0_OH5mMlI4UkkDTpaZwozy0TzdZ2M=",
    }


def instance_v1(state: SimState, streaming: str = f"wss://{LOCAL_DOMAIN}") -> dict:
    return {
        "uri": LOCAL_DOMAIN,
        "title": "modwatch simulator",
        "short_description": "",
        "description": "A simulated Mastodon instance for modwatch.",
        "email": f"admin@{LOCAL_DOMAIN}",
        "version": state.config.version,
        "urls": {"streaming_api": streaming},
        "stats": {
            "user_count": sum(1 for a in state.accounts.values() if a.domain is None),
            "status_count": len(state.statuses),
            "domain_count": len({a.domain for a in state.accounts.values() if a.domain}),
        },
        "thumbnail": None,
        "languages": ["en"],
        "registrations": True,
        "approval_required": False,
        "invites_enabled": True,
        "configuration": _configuration(),
        "contact_account": None,
        "rules": rules(state),
    }


def instance_v2(state: SimState, streaming: str = f"wss://{LOCAL_DOMAIN}") -> dict:
    return {
        "domain": LOCAL_DOMAIN,
        "title": "modwatch simulator",
        "version": state.config.version,
        "source_url": "https://github.com/mastodon/mastodon",
        "description": "A simulated Mastodon instance for modwatch.",
        "usage": {"users": {"active_month": sum(1 for a in state.accounts.values() if a.domain is None)}},
        "thumbnail": {"url": MISSING_HEADER, "description": ""},
        "icon": [],
        "languages": ["en"],
        "configuration": {
            **_configuration(),
            "urls": {"streaming": streaming, "status": None, "about": f"https://{LOCAL_DOMAIN}/about",
                     "privacy_policy": None, "terms_of_service": None},
            "vapid": {"public_key": application(Token("", 0, False))["vapid_key"]},
            "accounts": {**_configuration()["accounts"], "max_display_name_length": 30, "max_note_length": 500,
                         "max_avatar_description_length": 150, "max_header_description_length": 150,
                         "max_profile_fields": 4, "profile_field_name_limit": 255, "profile_field_value_limit": 255},
            "media_attachments": {**_configuration()["media_attachments"], "description_limit": 1500},
            "translation": {"enabled": False},
            "timelines_access": {feed: {"local": "public", "remote": "public"}
                                 for feed in ("live_feeds", "hashtag_feeds", "trending_link_feeds")},
            "limited_federation": False,
        },
        "registrations": {"enabled": True, "approval_required": False, "reason_required": False, "message": None,
                          "min_age": None, "url": None},
        "api_versions": {"mastodon": 2},
        "wrapstodon": None,
        "contact": {"email": f"admin@{LOCAL_DOMAIN}", "account": None},
        "rules": rules(state),
    }


def _configuration() -> dict:
    return {
        "accounts": {"max_featured_tags": 10, "max_pinned_statuses": 5},
        "statuses": {"max_characters": 500, "max_media_attachments": 4, "characters_reserved_per_url": 23},
        "media_attachments": {"supported_mime_types": ["image/jpeg", "image/png"], "image_size_limit": 16777216,
                              "image_matrix_limit": 33177600, "video_size_limit": 103809024,
                              "video_frame_rate_limit": 120, "video_matrix_limit": 8294400},
        "polls": {"max_options": 4, "max_characters_per_option": 50, "min_expiration": 300, "max_expiration": 2629746},
    }


def envelope(event: str, obj: dict, at: datetime) -> dict:
    """A webhook delivery body."""
    return {"event": event, "created_at": iso8601(at), "object": obj}
