"""The conference registry: conference requests (IQ, component, HTTP) create conferences, Jingle
IQs are routed to their participant, bridge events are passed to every conference.

Each conference runs in the registry's nursery; one that fails is logged and removed, the others
are untouched (DESIGN.md: its failure is contained).
"""

from __future__ import annotations

import logging
import time
from xml.etree.ElementTree import Element

import trio

from jicofo.auth import AuthRefused, AuthSession
from jicofo.auth.authority import AuthRequest
from jicofo.bridge.brewery import BridgeEvent
from jicofo.conference.conference import Conference
from jicofo.conference.mute import MuteResult
from jicofo.conference.services import ConferenceServices
from jicofo.config.model import ConfigError
from jicofo.logs import log_context
from jicofo.xmlns.auth_iq import (
    LOGIN_URL,
    LOGOUT,
    LoginUrlRequest,
    LogoutRequest,
    login_url_answer,
    logout_answer,
)
from jicofo.xmlns.breakout import COMPONENT_BREAKOUT_ROOMS
from jicofo.xmlns.component_message import (
    AvModerationMessage,
    ComponentMessageError,
    json_message_of,
    parse_component_message,
)
from jicofo.xmlns.conference_iq import (
    CONFERENCE,
    PROP_AUTHENTICATION,
    PROP_EXTERNAL_AUTH,
    PROP_SIP_GATEWAY_ENABLED,
    PROP_VISITORS_SUPPORTED,
    ConferenceAnswer,
    ConferenceRequest,
    session_invalid,
)
from jicofo.xmlns.jingle import unknown_session
from jicofo.xmlns.mute import MUTE_TAGS, MuteIQ, MuteParseError
from jicofo.xmpp.client import XMPPClient
from jicofo.xmpp.containment import contain_stanza
from jicofo.xmpp.errors import NotConnected, StanzaError, XMPPError
from jicofo.xmpp.jid import JID, InvalidJID

log = logging.getLogger(__name__)


# Component types discovered on the main domain whose messages the focus reads (row 9).
COMPONENT_AV_MODERATION = "av_moderation"
COMPONENT_ROOM_METADATA = "room_metadata"
COMPONENT_TYPES = (COMPONENT_AV_MODERATION, COMPONENT_ROOM_METADATA, COMPONENT_BREAKOUT_ROOMS)


class ConferenceRequestError(Exception):
    """A conference request refused; `condition` is the XMPP condition (HTTP maps it);
    `session_invalid` adds `<session-invalid/>` (an unknown authentication session)."""

    def __init__(self, condition: str, text: str, *, session_invalid: bool = False) -> None:
        super().__init__(text)
        self.condition = condition
        self.text = text
        self.session_invalid = session_invalid

    def stanza_error(self) -> StanzaError:
        return StanzaError(self.condition, self.text,
                           app_element=session_invalid() if self.session_invalid else None)


def _config_jid(key: str, value: str) -> JID:
    try:
        return JID.parse(value)
    except InvalidJID as exc:
        raise ConfigError(f"{key}: not a valid JID: {exc}") from None


def client_proxy_jid(value: str | None) -> JID | None:
    """`jicofo.xmpp.client.client-proxy` as a JID: a domain, e.g. `focus.meet.example.com`."""
    if not value:
        return None
    jid = _config_jid("jicofo.xmpp.client.client-proxy", value)
    if jid.local is not None or jid.resource is not None:
        raise ConfigError(
            f"jicofo.xmpp.client.client-proxy: want the proxy component's domain, not {value}"
        )
    return jid


def request_sender(sender: str | None, client_proxy: JID | None) -> JID | None:
    """Who really sent a request (docs/jicofo.md #10). A client-proxy component (Prosody's
    mod_client_proxy) sends from `<proxy domain>/<client's full JID>`: for a sender on that domain
    the resource is the sender. Raises StanzaError(bad-request) when it is not a JID. The answer
    still goes to the proxy's address, which relays it."""
    if not sender:
        return None
    try:
        jid = JID.parse(sender)
    except InvalidJID:
        raise StanzaError("bad-request", "invalid sender") from None
    if client_proxy is None or jid.domain != client_proxy.domain or jid.resource is None:
        return jid
    try:
        return JID.parse(jid.resource)
    except InvalidJID:
        raise StanzaError(
            "bad-request", f"{client_proxy} relayed a request from an invalid JID"
        ) from None


def parse_room(room: str) -> JID:
    """A room JID as the client names it: split on the last '@', with a local part."""
    local, at, domain = room.rpartition("@")
    if not at or not local or not domain:
        raise ConferenceRequestError("bad-request", f"Invalid room name: {room}")
    try:
        jid = JID.parse(room)
    except InvalidJID as exc:
        raise ConferenceRequestError("bad-request", f"Invalid room name: {exc}") from None
    if not jid.is_bare or jid.local is None:
        raise ConferenceRequestError("bad-request", f"Invalid room name: {room}")
    return jid


def conference_muc_domains(services: ConferenceServices) -> frozenset[str] | None:
    """The MUC domains conference requests may name: the conference MUC
    (`jicofo.xmpp.client.conference-muc-jid`, by default conference.<xmpp-domain>). Hook: the
    breakout-room MUC and other configured MUC domains join this set when they are supported.
    None (neither key set) leaves requests unrestricted, as before."""
    value = services.config.xmpp.client.conference_muc_jid
    if not value:
        return None
    return frozenset({_config_jid("jicofo.xmpp.client.conference-muc-jid", value).domain})


def room_domain_allowed(domain: str, muc_domains: frozenset[str]) -> bool:
    """A configured MUC domain, or its tenant form: one more label after the first, as Jitsi's
    multi-tenant deployments name rooms (`room@conference.<tenant>.meet.example.com`, which
    Prosody's domain mapper serves from the conference MUC)."""
    if domain in muc_domains:
        return True
    for muc in muc_domains:
        head, _, rest = muc.partition(".")
        if rest and domain.startswith(head + ".") and domain.endswith("." + rest):
            tenant = domain[len(head) + 1 : len(domain) - len(rest) - 1]
            if tenant and "." not in tenant:
                return True
    return False


class Focus:
    def __init__(self, services: ConferenceServices, *, max_conferences: int = 10_000) -> None:
        self.services = services
        self.max_conferences = max_conferences
        self.muc_domains = conference_muc_domains(services)
        if self.muc_domains is None:
            log.warning("no conference MUC configured (jicofo.xmpp.client.conference-muc-jid or "
                        "xmpp-domain): conference requests for rooms on any domain are accepted")
        self.conferences: dict[JID, Conference] = {}
        self._nursery: trio.Nursery | None = None
        # jicofo.authentication (XMPP or JWT), None when off (jicofo/auth/).
        self.auth = services.auth
        if self.auth is not None:
            self.auth.add_listener(self._on_authenticated)
        self.client_proxy = client_proxy_jid(services.config.xmpp.client.client_proxy)
        # Online by presence, so that a client-proxy component forwards requests to us.
        if isinstance(services.client, XMPPClient):
            services.client.announce_presence(
                *([self.client_proxy] if self.client_proxy is not None else [])
            )
        # Component type -> address, from the main domain's disco#info identities (category
        # "component"), as upstream discovers them after each login; only messages from these
        # addresses are read.
        self.components: dict[str, JID] = {}
        services.client.on_session(self._on_client_session)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            if self.auth is not None:
                nursery.start_soon(self.auth.run)
            if self.services.client.connected:
                nursery.start_soon(self.discover_components)
            task_status.started()
            await trio.sleep_forever()

    # ----- components (docs/jicofo.md §1.2 row 9) ---------------------------------------------

    async def discover_components(self) -> None:
        """disco#info to the main domain (`jicofo.xmpp.client.xmpp-domain`); every identity of
        category `component` names a component (type, address)."""
        domain = self.services.config.xmpp.client.xmpp_domain
        if not domain:
            log.info("no xmpp-domain configured: no av_moderation or room_metadata component")
            return
        try:
            info = await self.services.client.query_disco_info(
                JID.parse(domain), timeout=self.services.request_timeout)
        except (XMPPError, trio.TooSlowError, InvalidJID) as exc:
            log.warning("component discovery on %s failed: %s", domain, exc)
            return
        found: dict[str, JID] = {}
        for identity in info.identities:
            if identity.category == "component" and identity.type in COMPONENT_TYPES \
                    and identity.type not in found:
                try:
                    found[identity.type] = JID.parse(identity.name)
                except InvalidJID:
                    log.warning("component %s advertised with an invalid address %r",
                                identity.type, identity.name)
        if found != self.components:
            for kind in COMPONENT_TYPES:
                if kind in found:
                    log.info("using the %s component at %s", kind, found[kind])
                else:
                    log.info("no %s component discovered on %s", kind, domain)
        self.components = found

    def route_component_message(self, message: Element) -> None:
        """Messages not routed to a room: a component's `<json-message>` (A/V moderation, room
        metadata, docs/jicofo.md §7.20) is read when it comes from that component's discovered address and
        names a conference the focus runs; anything else is ignored."""
        json_message = json_message_of(message)
        if json_message is None or message.get("type", "normal") != "normal":
            return
        sender = message.get("from", "")
        if sender not in {str(address) for address in self.components.values()}:
            log.info("ignoring a json-message from %s: not a discovered component", sender or "?")
            return
        with contain_stanza(message, "component message"):
            self._component_message(sender, json_message)

    def _component_message(self, sender: str, json_message: Element) -> None:
        try:
            parsed = parse_component_message(json_message)
        except ComponentMessageError as exc:
            log.info("ignoring a component message from %s: %s", sender, exc)
            return
        if parsed is None:
            return
        kind = COMPONENT_AV_MODERATION if isinstance(parsed, AvModerationMessage) \
            else COMPONENT_ROOM_METADATA
        if str(self.components.get(kind)) != sender:
            log.info("ignoring a %s message from %s: not the %s component", kind, sender, kind)
            return
        conference = self.conferences.get(parsed.room)
        if conference is None or conference.stop_reason is not None:
            log.info("ignoring a %s message for %s: no such conference", kind, parsed.room)
            return
        with log_context(room=str(parsed.room)):
            if isinstance(parsed, AvModerationMessage):
                conference.handle_av_moderation(parsed)
            else:
                conference.handle_room_metadata(parsed)

    # ----- conference requests ------------------------------------------------------------------

    @property
    def focus_jid(self) -> str:
        """`username@domain` of the client connection: what clients must see as the focus."""
        cfg = self.services.config.xmpp.client
        return f"{cfg.username}@{cfg.domain}"

    async def conference_request(
        self, request: ConferenceRequest, sender: JID | None = None, *, authenticate: bool = True
    ) -> ConferenceAnswer:
        """Create the conference if needed; `ready` once its room is joined. Raises
        ConferenceRequestError. `sender` is the requester (decoded from a client proxy's address;
        None over HTTP): what decisions about the requester look at. `authenticate=False` only for
        the focus's own requests (the health check)."""
        stats = self.services.stats
        stats.conference_requests += 1
        session = None
        try:
            room = parse_room(request.room)
            self._check_room_domain(room)
            session = self._authenticate(room, request, sender) if authenticate else None
            if not self.services.client.connected:
                # Not in any room right now; if the session does not resume, the conferences we
                # have are stopped. Not ready: the client asks again in a second.
                ready = False
            else:
                conference = await self._live_conference(room)
                if conference is None:
                    stats.conference_requests_new += 1
                    conference = self._create(room, request)
                else:
                    conference.rearm_start_timeout()
                ready = await self._wait_joined(conference)
        except ConferenceRequestError:
            stats.conference_requests_errors += 1
            raise
        # Advertised only as built (config/unbuilt.py): no visitors; a SIP gateway whenever a
        # Jigasi brewery is configured, as upstream.
        properties = {PROP_AUTHENTICATION: "false"}
        if self.auth is not None:
            properties[PROP_AUTHENTICATION] = "true"
            properties[PROP_EXTERNAL_AUTH] = "true" if self.auth.external else "false"
        if self.services.jigasi is not None:
            properties[PROP_SIP_GATEWAY_ENABLED] = "true"
        properties[PROP_VISITORS_SUPPORTED] = "false"
        return ConferenceAnswer(room=str(room), ready=ready, focus_jid=self.focus_jid,
                                session_id=session.session_id if session else None,
                                identity=session.identity if session else None,
                                properties=properties)

    def _authenticate(self, room: JID, request: ConferenceRequest,
                      sender: JID | None) -> AuthSession | None:
        """Upstream's processExtensions: session checks, then only an authenticated requester
        may have a new room created. Rooms on the breakout MUC are not checked (the breakout
        component decides who moves there), nor is a main room whose breakout rooms live on."""
        if self.auth is None or self.is_breakout_room(room):
            return None
        try:
            session = self.auth.process(
                AuthRequest(room, request.machine_uid, request.session_id, request.token), sender)
        except AuthRefused as exc:
            log.info("conference request for %s from %s refused: %s", room,
                     sender or "HTTP", exc.text)
            raise ConferenceRequestError(exc.condition, exc.text,
                                         session_invalid=exc.session_invalid) from None
        live = self.conferences.get(room)
        if (live is None or live.stop_reason is not None) and session is None \
                and self.auth.identity_of(sender) is None and not self.has_breakout_rooms(room):
            log.info("conference request for %s from %s refused: a guest may not create a room",
                     room, sender or "HTTP")
            raise ConferenceRequestError("not-authorized", "not authorized user domain")
        return session

    # ----- breakout rooms (docs/jicofo.md §1.8 row 76) -------------------------------------

    @property
    def breakout_domain(self) -> str | None:
        """The breakout MUC's domain: the `breakout_rooms` component discovered on the main
        domain, as upstream (there is no config key for it)."""
        address = self.components.get(COMPONENT_BREAKOUT_ROOMS)
        return address.domain if address is not None else None

    def is_breakout_room(self, room: JID) -> bool:
        return self.breakout_domain is not None and room.domain == self.breakout_domain

    def has_breakout_rooms(self, main_room: JID) -> bool:
        """Whether a running breakout conference names `main_room` as its main room."""
        return any(c.main_room == main_room.bare and c.stop_reason is None
                   for c in self.conferences.values())

    def _on_authenticated(self, jid: JID, session: AuthSession) -> None:
        for conference in list(self.conferences.values()):
            with contain_stanza(None, "authenticated member", room=conference.room_jid):
                conference.member_authenticated(jid)

    def conference_iq_debug(self) -> dict[str, object]:
        """Upstream's /debug `conference_iq_handler` block."""
        return {
            "breakout_address": self.breakout_domain or "null",
            "focus_auth_jid": self.focus_jid,
            "jigasi_enabled": False,
            "auth_authority": ("null" if self.auth is None else
                               "ExternalJWTAuthority" if self.auth.external
                               else "XMPPDomainAuthAuthority"),
            "auth_sessions": len(self.auth.sessions) if self.auth is not None else 0,
        }

    def _check_room_domain(self, room: JID) -> None:
        """Only rooms on a configured MUC domain (or the breakout MUC): the focus joins no room
        elsewhere."""
        if self.is_breakout_room(room):
            return
        if self.muc_domains is not None and not room_domain_allowed(room.domain, self.muc_domains):
            log.info("conference request for %s refused: not on %s", room,
                     ", ".join(sorted(self.muc_domains)))
            raise ConferenceRequestError("not-allowed", "the room is not on the conference MUC")

    def _create(self, room: JID, request: ConferenceRequest) -> Conference:
        if self._nursery is None:
            raise ConferenceRequestError("service-unavailable", "the focus is not running")
        if len(self.conferences) >= self.max_conferences:
            raise ConferenceRequestError("resource-constraint", "too many conferences")
        conference = Conference(self.services, room, request.properties)
        conference.breakout = self.is_breakout_room(room)
        conference.has_breakout_rooms = lambda: self.has_breakout_rooms(room)
        conference.room_metadata_component = COMPONENT_ROOM_METADATA in self.components
        self.conferences[room] = conference
        self.services.stats.conferences_created += 1
        self._nursery.start_soon(self._run_conference, conference)
        return conference

    def adopt(self, conference: Conference) -> None:
        """Run a conference rebuilt from the restart store (it resumes rather than joins)."""
        if self._nursery is None:
            raise RuntimeError("the focus is not running")
        self.conferences[conference.room_jid] = conference
        self._nursery.start_soon(self._run_conference, conference)

    async def _run_conference(self, conference: Conference) -> None:
        try:
            await conference.run()
        except* XMPPError as group:
            conference.stop_reason = f"XMPP error: {group.exceptions[0]}"
            log.warning("conference %s: ended by an XMPP error: %s", conference.room_jid,
                        group.exceptions[0])
        except* trio.TooSlowError:
            conference.stop_reason = "joining the room timed out"
            log.warning("conference %s: joining the room timed out", conference.room_jid)
        except* Exception:
            conference.stop_reason = "internal error"
            log.exception("conference %s: failed", conference.room_jid)
        finally:
            conference.stopped.set()
            if self.conferences.get(conference.room_jid) is conference:
                del self.conferences[conference.room_jid]
            if self.auth is not None:
                self.auth.conference_ended(conference.room_jid)
            main = self.conferences.get(conference.main_room) if conference.main_room else None
            if main is not None:
                main.breakout_ended()
            self.services.stats.conference_seconds += time.time() - conference.created_at

    async def _live_conference(self, room: JID) -> Conference | None:
        """The conference of `room`, unless it is stopping: then wait (bounded) until it is
        gone, so that a new one is created rather than a stopping one reported ready."""
        conference = self.conferences.get(room)
        while conference is not None and conference.stop_reason is not None:
            with trio.move_on_after(self.services.request_timeout) as waited:
                await conference.stopped.wait()
            if waited.cancelled_caught:
                raise ConferenceRequestError("service-unavailable", "the conference is stopping")
            conference = self.conferences.get(room)
        return conference

    async def _wait_joined(self, conference: Conference) -> bool:
        timeout = self.services.request_timeout * 2
        with trio.move_on_after(timeout):
            async with trio.open_nursery() as waiters:
                async def wait(event: trio.Event) -> None:
                    await event.wait()
                    waiters.cancel_scope.cancel()

                waiters.start_soon(wait, conference.joined)
                waiters.start_soon(wait, conference.stopped)
        if conference.joined.is_set() and not conference.stopped.is_set():
            return True
        if conference.stopped.is_set():
            raise ConferenceRequestError(
                "internal-server-error",
                f"the conference could not start: {conference.stop_reason or 'unknown reason'}",
            )
        return False

    async def handle_conference_iq(self, iq: Element) -> Element:
        """IQ handler (client connection and component) for `<conference xmlns=focus>`. The
        answer goes back to the IQ's `from`, a client proxy's address included."""
        with contain_stanza(iq, "conference request"):
            return await self._conference_iq(iq)

    async def _conference_iq(self, iq: Element) -> Element:
        payload = iq.find(CONFERENCE)
        assert payload is not None
        try:
            sender = request_sender(iq.get("from"), self.client_proxy)
            request = ConferenceRequest.from_element(payload)
        except (StanzaError, ValueError) as exc:
            self.services.stats.conference_requests_errors += 1
            if isinstance(exc, StanzaError):
                raise
            raise StanzaError("bad-request", str(exc)) from None
        try:
            answer = await self.conference_request(request, sender)
        except ConferenceRequestError as exc:
            raise exc.stanza_error() from None
        log.info("conference request for %s from %s: ready=%s", answer.room, sender, answer.ready)
        return answer.to_element()

    # ----- login-url and logout (docs/jicofo.md §1.10 row 87, §7.2) --------------------------

    async def handle_login_url(self, iq: Element) -> Element:
        """`<login-url room machine-uid popup>` (get): where the user logs in."""
        with contain_stanza(iq, "login-url request"):
            payload = iq.find(LOGIN_URL)
            assert payload is not None
            request = LoginUrlRequest.from_element(payload)
            sender = request_sender(iq.get("from"), self.client_proxy)
            if self.auth is None:
                raise StanzaError("service-unavailable", "authentication is not enabled")
            if request.room is None:
                raise StanzaError("not-acceptable", "missing mandatory attribute 'room'")
            if request.machine_uid is None:
                raise StanzaError("bad-request", "missing mandatory attribute 'machineUID'")
            try:
                room = parse_room(request.room)
            except ConferenceRequestError:
                raise StanzaError("bad-request", "invalid room name") from None
            url = self.auth.login_url(room)
            log.info("login URL for %s to %s: %s", room, sender, url or "none (client-side)")
            return login_url_answer(url)

    async def handle_logout(self, iq: Element) -> Element:
        """`<logout session-id>` (set): the session is destroyed."""
        with contain_stanza(iq, "logout request"):
            payload = iq.find(LOGOUT)
            assert payload is not None
            request = LogoutRequest.from_element(payload)
            if self.auth is None:
                raise StanzaError("service-unavailable", "authentication is not enabled")
            try:
                logout_url = self.auth.logout(request.session_id)
            except AuthRefused as exc:
                raise StanzaError(exc.condition, exc.text, app_element=session_invalid()
                                  if exc.session_invalid else None) from None
            log.info("logout from %s: session destroyed",
                     request_sender(iq.get("from"), self.client_proxy))
            return logout_answer(logout_url)

    # ----- Jingle -------------------------------------------------------------------------------

    def route_jingle(self, iq: Element) -> None:
        """IQ router for Jingle (synchronous, in arrival order): to the sender's participant inbox."""
        with contain_stanza(iq, "Jingle IQ"):
            self._route_jingle(iq)

    def _route_jingle(self, iq: Element) -> None:
        try:
            sender = JID.parse(iq.get("from", ""))
        except InvalidJID:
            raise StanzaError("bad-request", "invalid sender") from None
        conference = self.conferences.get(sender.bare)
        if conference is None or sender.resource is None:
            raise StanzaError("item-not-found", "no such conference", app_element=unknown_session())
        if not conference.route_jingle(sender.resource, iq):
            raise StanzaError("item-not-found", "not a member of the conference",
                              app_element=unknown_session())

    # ----- mute requests (docs/jicofo.md §1.8 row 72, §7.19) ---------------------------------

    def route_mute(self, iq: Element) -> None:
        """IQ router for `<mute>` (audio, video, desktop) from a member, via the focus's occupant
        JID. Refusals are answered at once (StanzaError); a success answers `result`, then tells
        a remotely muted target, with `actor`, as upstream."""
        with contain_stanza(iq, "mute IQ"):
            self._route_mute(iq)

    def _route_mute(self, iq: Element) -> None:
        payload = next((child for child in iq if child.tag in MUTE_TAGS), None)
        assert payload is not None  # the client only routes <mute> here
        try:
            sender = JID.parse(iq.get("from", ""))
            request = MuteIQ.from_element(payload)
        except (InvalidJID, MuteParseError) as exc:
            raise StanzaError("bad-request", str(exc)) from None
        if request.mute is None or request.jid is None:
            raise StanzaError("bad-request", "a mute request needs a jid and true or false")
        conference = self.conferences.get(sender.bare)
        if conference is None:
            raise StanzaError("item-not-found", "no such conference")
        decision = conference.handle_mute(sender.resource, request.jid, request.mute, request.media)
        if decision.result is MuteResult.NOT_ALLOWED:
            raise StanzaError("not-allowed", decision.reason)
        if decision.result is MuteResult.ERROR:
            raise StanzaError("internal-server-error", decision.reason)
        notify = None
        if request.jid != sender:
            notify = MuteIQ(request.media, request.mute, actor=sender)
        if self._nursery is None:
            raise StanzaError("internal-server-error", "the focus is not running")
        self._nursery.start_soon(self._mute_done, iq, request.jid, notify)

    async def _mute_done(self, iq: Element, target: JID, notify: MuteIQ | None) -> None:
        client = self.services.client
        try:
            await client.reply(iq)
            if notify is not None:
                # The client never answers it (docs/client.md §4.1): sent, not requested.
                await client.send(client.iq("set", target, notify.to_element()))
        except NotConnected as exc:
            log.info("mute answer to %s not sent: %s", iq.get("from"), exc)

    # ----- bridges ------------------------------------------------------------------------------

    def on_bridge_event(self, event: BridgeEvent) -> None:
        """Every conference gets the event, whatever another one does with it."""
        for conference in list(self.conferences.values()):
            with contain_stanza(None, f"bridge event {type(event).__name__}", room=conference.room_jid):
                conference.bridge_event(event)

    # ----- a new XMPP session --------------------------------------------------------------------

    def _on_client_session(self, resumed: bool) -> None:
        """A session of the client connection came up. Not resumed: the server has forgotten our
        occupancy of every room, so every conference is stopped cleanly (its bridge conferences
        are expired on this new session), as upstream does; the clients see the focus leave and
        reload, which asks for the conference again."""
        if resumed:
            return
        if self._nursery is not None:
            self._nursery.start_soon(self.discover_components)
        for conference in list(self.conferences.values()):
            if conference.stop_reason is None:
                log.warning("conference %s: ending it: the focus's XMPP session was not resumed",
                            conference.room_jid)
                conference.stop("the focus's XMPP session was not resumed")

    # ----- shutdown -----------------------------------------------------------------------------

    async def stop_all(self, reason: str) -> None:
        """Stop every conference (each leaves its room and expires its endpoints)."""
        conferences = list(self.conferences.values())
        for conference in conferences:
            conference.stop(reason)
        for conference in conferences:
            await conference.stopped.wait()
