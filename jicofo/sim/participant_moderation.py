"""The client side of Jitsi's moderation components, as lib-jitsi-meet speaks it (its AVModeration
and RoomMetadata classes; docs/client.md §4.2, §4.8): find the components in the main
domain's disco#info (identity category `component`, type `av_moderation` / `room_metadata`,
name = address), send a moderator's commands to them, and keep every `<json-message>` they send
us, read only from the discovered addresses as the client does.

    components = ComponentClient(participant.client, participant.options.xmpp.domain)
    await components.discover(timeout=5)
    await components.av_enable("audio", True)
    message = await components.wait_for(lambda m: m.document.get("enabled") is True, 5)

It shares nothing with the focus: the wire formats are written out here from the client's view.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from xml.etree.ElementTree import Element

import trio

from jicofo.xmlns.bounded_json import decode_json
from jicofo.xmpp.client import XMPPClient
from jicofo.xmpp.jid import JID, InvalidJID
from jicofo.xmpp.xml import element, qn

log = logging.getLogger(__name__)

NS_JITMEET = "http://jitsi.org/jitmeet"
AV_MODERATION = "av_moderation"
ROOM_METADATA = "room_metadata"
MAX_JSON_CHARS = 256 * 1024


@dataclass(frozen=True, slots=True)
class ComponentMessage:
    """One message a component sent us: a json-message (`document`) or an error (`error`)."""

    sender: str
    kind: str  # av_moderation | room_metadata | error
    document: dict[str, Any]
    room: str | None = None  # the json-message's `room` attribute (room metadata)
    error: str | None = None  # the error condition of a refused request
    stanza: Element | None = None  # the message as received


class ComponentClient:
    def __init__(self, client: XMPPClient, domain: str, known: dict[str, JID] | None = None) -> None:
        """`known`: component addresses to listen to from the start (before the client is even
        connected), e.g. to see what a component tells a newcomer as it joins."""
        self.client = client
        self.domain = domain
        self.addresses: dict[str, JID] = {}
        self.messages: list[ComponentMessage] = []
        self.ignored = 0  # json-messages from anyone else
        self._changed = trio.Event()
        for kind, address in (known or {}).items():
            self._listen(kind, address)

    def _listen(self, kind: str, address: JID) -> None:
        self.addresses[kind] = address
        self.client.add_route(address, self._on_message)

    async def discover(self, timeout: float) -> dict[str, JID]:
        """disco#info to the domain; route the components' messages to us."""
        info = await self.client.query_disco_info(JID.parse(self.domain), timeout=timeout)
        for identity in info.identities:
            if identity.category == "component" and identity.type in (AV_MODERATION, ROOM_METADATA):
                try:
                    address = JID.parse(identity.name)
                except InvalidJID:
                    continue
                self._listen(identity.type, address)
        return dict(self.addresses)

    # ----- commands (lib-jitsi-meet AVModeration.enable / approve / reject) -------------------

    async def av_enable(self, media: str, enabled: bool) -> None:
        await self.av_command({"enable": "true" if enabled else "false", "mediaType": media})

    async def av_approve(self, media: str, occupant: str) -> None:
        await self.av_command({"jidToWhitelist": occupant, "mediaType": media})

    async def av_reject(self, media: str, occupant: str) -> None:
        await self.av_command({"jidToBlacklist": occupant, "mediaType": media})

    async def av_command(self, attrs: dict[str, str]) -> None:
        """An `<av_moderation>` with these attributes (any: tests send malformed ones too)."""
        # The element is in the stanza's own namespace (jabber:client), as Strophe builds it.
        payload = element(qn(self.client.content_ns, "av_moderation"), attrs)
        await self._send(AV_MODERATION, payload)

    # ----- room metadata (lib-jitsi-meet RoomMetadata.setMetadata) ----------------------------

    async def set_metadata(self, room: str, key: str, data: object) -> None:
        text = json.dumps({"key": key, "data": data, "type": ROOM_METADATA})
        await self.send_metadata_text(room, text)

    async def send_metadata_text(self, room: str, text: str) -> None:
        payload = element(qn(NS_JITMEET, ROOM_METADATA), {"room": room}, text=text)
        await self._send(ROOM_METADATA, payload)

    async def _send(self, kind: str, payload: Element) -> None:
        address = self.addresses.get(kind)
        if address is None:
            raise LookupError(f"no {kind} component discovered on {self.domain}")
        await self.client.send(self.client.stanza("message", {"to": str(address)}, payload))

    # ----- what arrives -----------------------------------------------------------------------

    def of(self, kind: str) -> list[ComponentMessage]:
        return [m for m in self.messages if m.kind == kind]

    async def wait_for(self, predicate: Callable[[ComponentMessage], bool], timeout: float,
                       *, since: int = 0) -> ComponentMessage:
        """The first message (from index `since`) that `predicate` accepts."""
        with trio.fail_after(timeout):
            while True:
                for message in self.messages[since:]:
                    if predicate(message):
                        return message
                since = len(self.messages)
                changed = self._changed
                await changed.wait()

    def _on_message(self, stanza: Element) -> None:
        if not stanza.tag.endswith("}message"):
            return
        sender = stanza.get("from", "")
        if sender not in {str(a) for a in self.addresses.values()}:
            self.ignored += 1
            return
        kind = next((k for k, a in self.addresses.items() if str(a) == sender), "")
        if stanza.get("type") == "error":
            error = stanza.find(qn(self.client.content_ns, "error"))
            children = list(error) if error is not None else []
            condition = next((child.tag.rsplit("}", 1)[-1] for child in children
                              if not child.tag.endswith("}text")), "undefined-condition")
            self._add(ComponentMessage(sender, "error", {}, error=condition, stanza=stanza))
            return
        json_message = stanza.find(qn(NS_JITMEET, "json-message"))
        if json_message is None:
            return
        try:
            document = decode_json(json_message.text or "", max_chars=MAX_JSON_CHARS)
        except ValueError as exc:
            log.warning("component %s sent JSON we cannot read: %s", sender, exc)
            self.ignored += 1
            return
        if not isinstance(document, dict) or document.get("type") != kind:
            self.ignored += 1
            return
        self._add(ComponentMessage(sender, kind, document, room=json_message.get("room"),
                                   stanza=stanza))

    def _add(self, message: ComponentMessage) -> None:
        self.messages.append(message)
        self._changed.set()
        self._changed = trio.Event()
