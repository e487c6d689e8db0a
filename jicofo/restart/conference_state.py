"""A conference's state as store records, and the conference rebuilt from them by a new process.

`snapshot_conference` / `snapshot_participant` read the live objects (nothing is changed);
`restore_conference` builds a `Conference` with its participants, sources, Jingle sessions and
Colibri2 sessions, whose `run` then resumes (`resume_conference`) instead of joining afresh: it
starts the Colibri2 and participant tasks, waits for the resumed XMPP session, joins the room
again (Prosody answers a joined occupant's join with the occupant list), and settles who left and
who came while the focus was down.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import trio

from jicofo.bridge.colibri import Allocation, BridgeConference, ColibriSession
from jicofo.conference.conference import FOCUS_NICK, Conference, ConferenceStopped
from jicofo.conference.participant import Invite, JingleSession, Participant, SessionState
from jicofo.conference.services import ConferenceServices
from jicofo.xmlns import colibri2 as c2
from jicofo.xmpp.jid import JID
from jicofo.xmpp.muc import MucRoom

from .codec import (
    decode_occupant,
    decode_options,
    decode_signaled,
    decode_sources,
    decode_transport,
    encode_occupant,
    encode_options,
    encode_signaled,
    encode_sources,
    encode_transport,
)

if TYPE_CHECKING:
    from jicofo.bridge.brewery import Brewery

log = logging.getLogger(__name__)

FORMAT = 1


# ----- snapshots --------------------------------------------------------------------------------


def snapshot_conference(conference: Conference) -> dict[str, Any]:
    room = conference.room
    return {
        "format": FORMAT,
        "room": str(conference.room_jid),
        "meeting_id": conference.meeting_id,
        "properties": conference.properties,
        "created_at": conference.created_at,
        "invite_positions": conference._invite_positions,
        "affiliation": room.affiliation if room is not None else "owner",
        "role": room.role if room is not None else "moderator",
        "av_moderation": conference.av_state.to_json(),
        # Octo: the bridges in the mesh, in the order they joined it, each with the endpoints its
        # relays on the others were told about.
        "cascade": [[str(session.bridge.jid), sorted(endpoints)]
                    for session, endpoints in conference.cascade._announced.items()],
        "bridges": [
            {
                "jid": str(bridge.jid),
                "id": session.id,
                "meeting_id": session.meeting_id,
                "endpoints": sorted(session.endpoints),
                "feedback": encode_sources(session.feedback_sources)
                if session.feedback_sources is not None else None,
                "force_muted": {ep: [m.audio, m.video] for ep, m in session.force_muted.items()},
            }
            for bridge, session in conference.colibri_sessions.items()
        ],
    }


def snapshot_participant(participant: Participant) -> dict[str, Any]:
    session = participant.session
    allocation = participant.allocation
    return {
        "occupant": encode_occupant(participant.occupant),
        "features": sorted(participant.features) if participant.features is not None else None,
        "invited": participant.invited,
        "joined_at": participant.joined_at,
        "sources": encode_sources(participant.sources),
        "signaled": encode_signaled(participant.signaled),
        "old_sids": list(participant._old_sids),
        "colibri": str(participant.colibri.bridge.jid) if participant.colibri is not None else None,
        "allocation": None if allocation is None else {
            "transport": encode_transport(allocation.transport),
            "sctp_port": allocation.sctp_port,
            "feedback": encode_sources(allocation.feedback_sources),
        },
        "session": None if session is None else {
            "sid": session.sid,
            "state": session.state.value,
            "options": encode_options(session.options),
            "ice_generation": session.ice_generation,
            "bridge": str(session.colibri.bridge.jid),
        },
    }


def bridge_conferences(record: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(bridge JID, meeting id, room) of every Colibri2 conference a stored conference had."""
    try:
        return [(str(b["jid"]), str(b["meeting_id"]), str(record.get("room")))
                for b in record.get("bridges", [])]
    except (KeyError, TypeError):
        return []


# ----- restoring --------------------------------------------------------------------------------


def restore_conference(
    services: ConferenceServices, brewery: Brewery, record: dict[str, Any],
    participants: dict[str, dict[str, Any]],
) -> Conference:
    """The conference of `record` (and its participants' records), ready to `run` (resuming).
    Raises ValueError (or KeyError/TypeError) for a record that cannot be used."""
    if record.get("format") != FORMAT:
        raise ValueError(f"record format {record.get('format')!r}")
    room_jid = JID.parse(record["room"])
    conference = Conference(services, room_jid, dict(record.get("properties") or {}))
    conference.meeting_id = record.get("meeting_id")
    conference.created_at = float(record.get("created_at") or conference.created_at)
    conference._invite_positions = {str(k): int(v) for k, v in record["invite_positions"].items()}
    conference._ever_had_member = True
    for media, state in (record.get("av_moderation") or {}).items():
        if media in conference.av_state._media:
            conference.av_state._media[media].enabled = bool(state["enabled"])
            conference.av_state._media[media].whitelist = frozenset(str(j) for j in state["whitelist"])
    room = MucRoom(services.client, conference.room_jid, FOCUS_NICK,
                   presence_extensions=[services.client.caps()])
    room.affiliation = str(record.get("affiliation", "owner"))
    room.role = str(record.get("role", "moderator"))
    conference.room = room

    sessions: dict[str, ColibriSession] = {}
    for stored in record["bridges"]:
        bridge = brewery.adopt(JID.parse(stored["jid"]))
        session = conference.bridges.new_restored_session(bridge, str(stored["meeting_id"]))
        session.id = str(stored["id"])
        session.state = BridgeConference.CREATED
        session.endpoints = {str(e) for e in stored["endpoints"]}
        for _ in session.endpoints:
            bridge.endpoint_added(trio.current_time())
        if stored.get("feedback") is not None:
            session.feedback_sources = decode_sources(stored["feedback"])
        session.force_muted = {str(ep): c2.ForceMute(bool(a), bool(v))
                               for ep, (a, v) in stored["force_muted"].items()}
        conference.bridges.adopt(session)
        sessions[str(bridge.jid)] = session

    for jid, endpoints in record.get("cascade") or []:
        if str(jid) in sessions:
            conference.cascade._announced[sessions[str(jid)]] = {str(e) for e in endpoints}

    restored: list[tuple[Participant, dict[str, Any]]] = []
    for nick, stored in participants.items():
        occupant = decode_occupant(stored["occupant"])
        if occupant.nick != nick:
            raise ValueError(f"participant record {nick} names {occupant.nick}")
        participant = Participant(conference, occupant)
        participant.joined_at = float(stored["joined_at"])
        if stored.get("features") is not None:
            participant.features = frozenset(str(f) for f in stored["features"])
        participant.invited = bool(stored["invited"])
        participant._old_sids.extend(str(s) for s in stored["old_sids"])
        conference.sources.add(nick, decode_sources(stored["sources"]))
        participant.colibri = sessions.get(stored["colibri"]) if stored.get("colibri") else None
        if stored.get("allocation") is not None and participant.colibri is not None:
            a = stored["allocation"]
            participant.allocation = Allocation(decode_transport(a["transport"]), a["sctp_port"],
                                                decode_sources(a["feedback"]))
        s = stored.get("session")
        if s is not None and sessions.get(s["bridge"]) is participant.colibri \
                and participant.colibri is not None:
            participant.session = JingleSession(str(s["sid"]), participant.colibri,
                                                decode_options(s["options"]),
                                                SessionState(s["state"]), int(s["ice_generation"]))
        conference.participants[nick] = participant
        restored.append((participant, stored))
    for participant, stored in restored:
        extra = {}
        if participant.allocation is not None:
            extra["jvb"] = participant.allocation.feedback_sources
        participant.signaled = decode_signaled(stored["signaled"], conference.sources, extra)
    conference.resume = resume_conference
    return conference


async def resume_conference(conference: Conference, nursery: trio.Nursery) -> None:
    """`Conference.run`'s start for a restored conference (in place of joining afresh)."""
    services = conference.services
    await conference.bridges.start_adopted(nursery)
    for participant in conference.participants.values():
        nursery.start_soon(participant.run)
        if participant.invited and participant.session is None:
            # Killed between an allocation and its offer: the bridge may have an endpoint the
            # store never saw. Expire it (an unknown one is refused, which is ignored), then invite.
            for session in conference.colibri_sessions.values():
                if participant.endpoint_id not in session.endpoints:
                    session.endpoints.add(participant.endpoint_id)
                    session.bridge.endpoint_added(trio.current_time())
                session.expire_endpoint(participant.endpoint_id)
            participant.colibri = None
            participant.allocation = None
            participant.post(Invite("restored without a session"))
    await services.client.wait_connected()
    if conference.stop_reason is not None:  # the session was not resumed: today's path
        raise ConferenceStopped(conference.stop_reason)
    room = conference.room
    assert room is not None
    # Already an occupant: the service answers with the occupant list and our own presence, and
    # the members see a presence update from the focus, not a leave.
    with trio.fail_after(services.request_timeout * 2):
        await room.join(timeout=services.request_timeout)
        # A barrier: its answer comes after the whole occupant list (one stream, in order), even
        # if a self-presence the old process never saw answered the join early.
        await room.room_info()
    present = room.occupants
    gone = [p for nick, p in conference.participants.items() if nick not in present]
    for participant in conference.participants.values():
        occupant = present.get(participant.endpoint_id)
        if occupant is not None:
            participant.update_presence(occupant)
    log.info("conference %s: resumed after a restart (meeting id %s): %d member(s) kept, %d left "
             "meanwhile, %d new", conference.room_jid, conference.meeting_id,
             len(conference.participants) - len(gone), len(gone),
             sum(1 for nick in present if nick not in conference.participants))
    for participant in gone:
        conference._member_left(participant.occupant, "left while the focus was restarting")
    if conference.stop_reason is None:
        for participant in conference.participants.values():
            participant.sources_changed()  # what was still to be signalled when we stopped
        conference._check_single_participant()
        await conference._publish_presence()
        conference.persist()
