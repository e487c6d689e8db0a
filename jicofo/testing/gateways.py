"""Simulated Jibris (and Jigasis) on a test Prosody, with their control API: for the end-to-end
tests, the demo and the stress runner."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

import trio

from jicofo.http.server import HttpServer, Router
from jicofo.sim.jibri import SimulatedJibri
from jicofo.sim.jibri_cli import build_router
from jicofo.sim.jigasi import SimulatedJigasi
from jicofo.sim.jigasi_cli import build_router as build_jigasi_router
from jicofo.sim.serving import Simulator
from jicofo.testing.prosody import ProsodyInstance
from jicofo.xmpp.jid import JID
from jicofo.xmpp.settings import ClientSettings, TlsMode
from jicofo.xmpp.transport import TlsSettings


def jibri_brewery(prosody: ProsodyInstance, sip: bool = False) -> str:
    return f"{'jibrisipbrewery' if sip else 'jibribrewery'}@{prosody.internal_muc_domain}"


@dataclass
class Jibris:
    jibris: list[SimulatedJibri]
    http_port: int
    brewery: str

    def by_nick(self, nick: str) -> SimulatedJibri:
        return next(j for j in self.jibris if j.nickname == nick)


@asynccontextmanager
async def simulated_jibris(prosody: ProsodyInstance, count: int = 1, *, sip: bool = False,
                           prefix: str | None = None, user: str = "jibri",
                           call_domain: str | None = None) -> AsyncIterator[Jibris]:
    """`count` Jibris logged in as `user` on the auth domain (registered here), in the Jibri
    brewery (the SIP one with `sip`); with `call_domain`, they join conferences as
    `recorder@<call_domain>` (registered here too; the host must exist)."""
    password = secrets.token_hex(8)
    await prosody.register(user, prosody.auth_domain, password)
    if call_domain is not None:
        await prosody.register("recorder", call_domain, password)
    prefix = prefix or ("sipjibri-" if sip else "jibri-")
    brewery = jibri_brewery(prosody, sip)
    jibris = [
        SimulatedJibri(
            _login(prosody, prosody.auth_domain, user, password, f"{prefix}{n}"),
            JID.parse(brewery), f"{prefix}{n}", sip=sip,
            call_settings=None if call_domain is None
            else _login(prosody, call_domain, "recorder", password, f"{prefix}{n}"))
        for n in range(1, count + 1)
    ]
    async with _serving(jibris, build_router(jibris)) as port:
        yield Jibris(jibris, port, brewery)


def jigasi_brewery(prosody: ProsodyInstance) -> str:
    return f"jigasibrewery@{prosody.internal_muc_domain}"


@dataclass
class Jigasis:
    jigasis: list[SimulatedJigasi]
    http_port: int
    brewery: str

    def by_nick(self, nick: str) -> SimulatedJigasi:
        return next(j for j in self.jigasis if j.nickname == nick)


@asynccontextmanager
async def simulated_jigasis(prosody: ProsodyInstance, kinds: list[tuple[bool, bool, str | None]], *,
                            user: str = "jigasi") -> AsyncIterator[Jigasis]:
    """One Jigasi per (sip, transcription, region) in `kinds`, nicknames jigasi-1, jigasi-2, ..."""
    password = secrets.token_hex(8)
    await prosody.register(user, prosody.auth_domain, password)
    brewery = jigasi_brewery(prosody)
    jigasis = [
        SimulatedJigasi(_login(prosody, prosody.auth_domain, user, password, f"jigasi-{n}"),
                        JID.parse(brewery), f"jigasi-{n}", sip=sip, transcription=transcription,
                        region=region)
        for n, (sip, transcription, region) in enumerate(kinds, start=1)
    ]
    async with _serving(jigasis, build_jigasi_router(jigasis)) as port:
        yield Jigasis(jigasis, port, brewery)


def _login(prosody: ProsodyInstance, domain: str, user: str, password: str, resource: str) -> ClientSettings:
    return ClientSettings(domain=domain, username=user, password=password, resource=resource,
                          host=prosody.ip, port=prosody.c2s_port, tls=TlsMode.DISABLED,
                          tls_settings=TlsSettings(ca_file=prosody.ca_file), allow_plain_without_tls=True)


@asynccontextmanager
async def _serving(simulators: Sequence[Simulator], router: Router) -> AsyncIterator[int]:
    """The control API (its port is yielded) and every simulator running, stopped on exit."""
    async with trio.open_nursery() as nursery:
        port = await nursery.start(HttpServer(router).serve)
        for simulator in simulators:
            await nursery.start(simulator.run)
        try:
            yield port
        finally:
            with trio.CancelScope(shield=True):
                for simulator in simulators:
                    await simulator.stop()
            nursery.cancel_scope.cancel()
