"""Builds the focus from its config and runs the top-level nursery (DESIGN.md's task tree):
the XMPP connections, the bridge brewery, the conference registry, and the HTTP API."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from xml.etree.ElementTree import Element

import trio

from jicofo import __version__
from jicofo.auth import build_authority
from jicofo.bridge.brewery import Brewery
from jicofo.bridge.load_redistribution import LoadRedistributor
from jicofo.bridge.load_redistribution import run as run_load_redistribution
from jicofo.bridge.selector import BridgeSelector
from jicofo.conference.jibri_iq import handle_jibri_iq
from jicofo.conference.jigasi_iq import handle_dial_iq
from jicofo.conference.moves import move_from_bridge
from jicofo.conference.offer import OfferConfig
from jicofo.conference.services import ConferenceServices
from jicofo.config.model import JicofoConfig, XmppConnectionName
from jicofo.config.xmpp_settings import to_client_settings, to_component_settings
from jicofo.focus import ConferenceRequestError, Focus, parse_room
from jicofo.health import HealthChecker
from jicofo.jibri.setup import JibriSetup, build_jibri
from jicofo.jigasi.service import JigasiServices
from jicofo.jigasi.setup import build_jigasi
from jicofo.logs import log_context
from jicofo.rest.api import serve_rest
from jicofo.restart.keeper import RestartKeeper
from jicofo.stats import FocusStats
from jicofo.xmlns.auth_iq import LOGIN_URL, LOGOUT
from jicofo.xmlns.conference_iq import CONFERENCE
from jicofo.xmlns.jibri import JIBRI
from jicofo.xmlns.jingle import JINGLE
from jicofo.xmlns.mute import MUTE_TAGS
from jicofo.xmlns.rayo import DIAL
from jicofo.xmpp.caps import Identity
from jicofo.xmpp.client import BaseXMPPConnection, IqHandler, XMPPClient, XMPPComponent
from jicofo.xmpp.jid import JID

log = logging.getLogger(__name__)

FEATURE_TERMINATE_RESTART = "https://jitsi.org/meet/jicofo/terminate-restart"
FOCUS_FEATURES = (
    "urn:xmpp:jingle:1",
    "urn:xmpp:jingle:apps:rtp:1",
    "urn:xmpp:jingle:apps:rtp:audio",
    "urn:xmpp:jingle:apps:rtp:video",
    "urn:xmpp:jingle:transports:ice-udp:1",
    "urn:xmpp:jingle:apps:dtls:0",
    "urn:xmpp:jingle:transports:dtls-sctp:1",
    "http://jitsi.org/protocol/focus",
    FEATURE_TERMINATE_RESTART,
)


@dataclass
class FocusApp:
    """The running focus: what the HTTP API, tests and the stress runner look at."""

    config: JicofoConfig
    client: XMPPClient
    service: XMPPClient | None  # a separate connection for bridges, when configured
    component: XMPPComponent | None
    brewery: Brewery | None
    services: ConferenceServices
    focus: Focus
    started_at: float = field(default_factory=trio.current_time)
    stop_requested: trio.Event = field(default_factory=trio.Event)
    health: HealthChecker | None = None
    rest_port: int | None = None  # where the HTTP API listens, once serving
    load_redistributor: LoadRedistributor | None = None  # when bridge.load-redistribution is on
    stop_reason: str | None = None
    keeper: RestartKeeper | None = None  # the restart store (jicofo.restart.enabled)
    jibri: JibriSetup | None = None  # when a Jibri or SIP-Jibri brewery is configured
    jigasi: JigasiServices | None = None  # when a Jigasi brewery is configured

    def request_stop(self, reason: str) -> None:
        """Ask `serve` to stop in order (what SIGTERM does)."""
        if self.stop_reason is None:
            self.stop_reason = reason
        self.stop_requested.set()

    @property
    def stats(self) -> FocusStats:
        return self.services.stats


def _setup_connection(conn: BaseXMPPConnection) -> None:
    conn.identities.append(Identity("component", "focus", "Jitsi Meet Focus"))
    conn.features.update(FOCUS_FEATURES)


def _in_room_context(handler: IqHandler) -> IqHandler:
    """Wrap the conference-request handler so that its lines, and those of the conference it
    creates (trio copies the context into tasks started from it), carry the room."""

    async def handle(iq: Element) -> Element | None:
        payload = iq.find(CONFERENCE)
        room = payload.get("room") if payload is not None else None
        if room:
            try:
                room = str(parse_room(room))
            except ConferenceRequestError:  # the handler refuses it; show it as given
                pass
        with log_context(room=room):
            return await handler(iq)

    return handle


def build_app(config: JicofoConfig) -> FocusApp:
    """Create the connections and objects; nothing runs until `serve`."""
    limits = config.xmpp.stanza_limits
    client = XMPPClient(to_client_settings(config.xmpp.client, limits=limits), name="xmpp client")
    _setup_connection(client)
    service: XMPPClient | None = None
    if config.xmpp.service.enabled:
        service = XMPPClient(to_client_settings(config.xmpp.service, limits=limits),
                             name="xmpp service")
        _setup_connection(service)
    component: XMPPComponent | None = None
    if config.xmpp.component.enabled:
        component = XMPPComponent(
            to_component_settings(config.xmpp.component, config.xmpp.client.reply_timeout, limits),
            name="xmpp component",
        )
        _setup_connection(component)
    bridge_connection: BaseXMPPConnection = client
    if config.bridge.xmpp_connection_name is XmppConnectionName.SERVICE and service is not None:
        bridge_connection = service
    brewery = None
    if config.bridge.brewery_jid:
        brewery = Brewery(
            bridge_connection, JID.parse(config.bridge.brewery_jid), config.bridge,
            request_timeout=(config.xmpp.service if service else config.xmpp.client).reply_timeout,
        )
    else:
        log.warning("jicofo.bridge.brewery-jid is not set: no bridges, so no media")
    services = ConferenceServices(
        config=config,
        client=client,
        colibri_client=bridge_connection,
        brewery=brewery,
        selector=BridgeSelector(config.bridge, config.octo, local_region=config.local_region),
        offer_config=OfferConfig.from_codec_config(config.codec),
        version=__version__,
        auth=build_authority(config.authentication),
    )
    keeper = RestartKeeper.open(config.restart)
    if keeper is not None:
        services.state_hook = keeper
        keeper.attach_client(client, "client")
        if service is not None:
            keeper.attach_client(service, "service")
    jibri = build_jibri(config, client, service)
    services.jibri = jibri.services if jibri is not None else None
    services.jigasi = jigasi = build_jigasi(config, client, service)
    focus = Focus(services)
    if brewery is not None:
        brewery.add_listener(focus.on_bridge_event)
    for conn in (client, component):
        if conn is not None:
            conn.add_iq_handler(CONFERENCE, _in_room_context(focus.handle_conference_iq),
                                types=("set",))
            if services.auth is not None:  # as upstream: only with an authority
                conn.add_iq_handler(LOGIN_URL, focus.handle_login_url, types=("get",))
                conn.add_iq_handler(LOGOUT, focus.handle_logout, types=("set",))
    client.add_iq_router(JINGLE, focus.route_jingle, types=("set",))
    client.set_default_handlers(message=focus.route_component_message)
    for tag in MUTE_TAGS:
        client.add_iq_router(tag, focus.route_mute, types=("set",))
    jibri_handler = functools.partial(handle_jibri_iq, focus.conferences)
    client.add_iq_handler(JIBRI, jibri_handler, types=("set",))
    if jibri is not None and jibri.connection is not client:  # status IQs from Jibris arrive there
        jibri.connection.add_iq_handler(JIBRI, jibri_handler, types=("set",))
    if jigasi is not None:
        client.add_iq_handler(DIAL, functools.partial(handle_dial_iq, focus.conferences), types=("set",))
    app = FocusApp(config, client, service, component, brewery, services, focus, jibri=jibri,
                   jigasi=jigasi)
    app.keeper = keeper
    return app


async def serve(
    app: FocusApp,
    *,
    extra: Callable[[FocusApp, trio.Nursery], Awaitable[None]] | None = None,
    task_status: trio.TaskStatus[FocusApp] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the focus until `app.request_stop()` (or cancelled, which stops it abruptly).
    `task_status.started(app)` once the connections are up, the brewery is joined and
    conference requests are being answered."""
    async with trio.open_nursery() as nursery:
        keeper = app.keeper
        restored = keeper.restore(app.services, app.brewery) if keeper is not None else []
        if restored:
            # Routed before the resumed session delivers what the server queued for us.
            await nursery.start(app.focus.run)
            for conference in restored:
                app.focus.adopt(conference)
        await nursery.start(app.client.run)
        log.info("xmpp client connected as %s", app.client.jid)
        if restored:
            nursery.start_soon(app.focus.discover_components)
        if app.service is not None:
            await nursery.start(app.service.run)
            log.info("xmpp service connection up as %s", app.service.jid)
        if not restored:
            await nursery.start(app.focus.run)
        if app.brewery is not None:
            await nursery.start(app.brewery.run)
        if keeper is not None:
            await nursery.start(keeper.run, app.brewery, app.services)
        if app.jibri is not None:
            await app.jibri.run(nursery)
        if app.jigasi is not None:
            await nursery.start(app.jigasi.detector.run)
        if app.component is not None:
            await nursery.start(app.component.run)
            log.info("component %s connected", app.config.xmpp.component.jid)
        app.load_redistributor = await nursery.start(
            run_load_redistribution, app.services.bridges,
            lambda bridge, count: move_from_bridge(app.focus.conferences.values(), bridge, count),
            app.config.bridge.load_redistribution,
        )
        if app.config.health.enabled:
            app.health = HealthChecker(app, app.config.health)
            # In the background: the focus serves while the first check runs (until then
            # /about/health answers 503 "not checked yet").
            nursery.start_soon(app.health.run)
        app.rest_port = await nursery.start(serve_rest, app, app.health)
        if app.rest_port is not None:
            log.info("HTTP API on %s:%d", app.config.rest.host, app.rest_port)
        if extra is not None:
            await extra(app, nursery)
        task_status.started(app)
        await app.stop_requested.wait()
        # Orderly stop while the connections are still up: conferences leave their rooms and
        # expire their endpoints, then the connections close; all within a bound.
        log.info("stopping: %s", app.stop_reason)
        with trio.move_on_after(shutdown_timeout(app)):
            await app.focus.stop_all(app.stop_reason or "the focus is shutting down")
            for conn in (app.component, app.service, app.client):
                if conn is not None:
                    await conn.aclose()
        if keeper is not None:
            keeper.stopping()  # nothing to take back after an orderly stop, even a late one
        nursery.cancel_scope.cancel()


def shutdown_timeout(app: FocusApp) -> float:
    return max(5.0, app.config.xmpp.client.reply_timeout)
