"""The simulated client's own reading of the focus's sources (jicofo/sim/client_sources.py and
client_jingle.py): cases the focus's decoder and source model let through or fold away, which the
simulator, as a second opinion, must record as deviations. Pure: no Prosody, no I/O.

The focus's own code appears here only to show the contrast (what it accepts) and to build wire
XML the way the focus does."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from jicofo.model.sources_jingle import sources_from_contents
from jicofo.model.sources_json import decode_json as focus_decode_json
from jicofo.sim.client_jingle import (
    SESSION_ACCEPT,
    SOURCE_ADD,
    Content,
    Description,
    GroupXml,
    Jingle,
    JingleReadError,
    SourceXml,
    read_jingle,
)
from jicofo.sim.client_sources import (
    RemoteSources,
    SourceUpdate,
    apply_add,
    apply_remove,
    read_compact_json,
    read_update,
)
from jicofo.xmlns.jingle import JingleIQ
from jicofo.xmpp.xml import element, qn

ME = "00aa11bb"
BOB = "ef56gh78"
EVE = "abcd1234"


def bob_json(extra: dict[str, object] | None = None) -> str:
    sources = {
        BOB: [[{"s": 4201, "n": f"{BOB}-v0", "m": "b-s b-tv"},
               {"s": 4202, "n": f"{BOB}-v0", "m": "b-s b-tv"}],
              [["f", 4201, 4202]], [{"s": 4101, "n": f"{BOB}-a0", "m": "b-s b-ta"}]],
    }
    sources.update(extra or {})
    return json.dumps({"sources": sources})


def add_json(known: RemoteSources, text: str) -> list[str]:
    _, problems = apply_add(known, read_update((), text, known), ME)
    return problems


def add_xml(known: RemoteSources, sources: list[SourceXml], groups: tuple[GroupXml, ...] = (),
            media: str = "video") -> list[str]:
    jingle = Jingle(SOURCE_ADD, "s1", contents=(
        Content(media, description=Description(media, sources=tuple(sources), groups=tuple(groups))),))
    parsed = read_jingle(jingle.to_element())  # through the wire form
    _, problems = apply_add(known, read_update(parsed.contents, None, known), ME)
    return problems


def test_a_correct_source_add_is_taken_without_problems() -> None:
    known = RemoteSources()
    assert add_json(known, bob_json()) == []
    assert known.get(BOB).ssrcs == {4101, 4201, 4202}
    assert [g.semantics for g in known.get(BOB).groups] == ["FID"]
    assert [s.video_type for s in known.get(BOB).sources if s.media_type == "video"] == [None, None]


def test_a_duplicate_source_in_one_source_add_is_a_deviation() -> None:
    # The same SSRC listed twice in one XML source-add: the focus's source model folds the two
    # into one silently; the client's model sees both.
    twice = [SourceXml(4101, f"{BOB}-a0", None, "b-s b-ta", BOB)] * 2
    description = Description("audio", sources=tuple(twice))
    wire = Jingle(SOURCE_ADD, "s1", contents=(Content("audio", description=description),))
    assert len(sources_from_contents(JingleIQ.from_element(wire.to_element()).contents).sources) == 1
    known = RemoteSources()
    problems = add_xml(known, twice, media="audio")
    assert len(problems) == 1 and "duplicate source in one update" in problems[0]
    assert known.get(BOB).ssrcs == {4101}  # the first one is taken, as the client would


def test_a_duplicate_group_in_one_source_add_is_a_deviation() -> None:
    text = json.dumps({"sources": {BOB: [
        [{"s": 4201, "n": f"{BOB}-v0", "m": "b-s b-tv"}, {"s": 4202, "n": f"{BOB}-v0", "m": "b-s b-tv"}],
        [["f", 4201, 4202], ["f", 4201, 4202]]]}})
    assert len(focus_decode_json(text, max_chars=len(text)).get(BOB).groups) == 1  # folded by the focus
    problems = add_json(RemoteSources(), text)
    assert len(problems) == 1 and "duplicate ssrc-group in one update" in problems[0]


def test_an_ssrc_owned_by_two_endpoints_is_a_deviation() -> None:
    known = RemoteSources()
    assert add_json(known, bob_json()) == []
    # Eve is signalled with Bob's audio SSRC, and in one update two owners share an SSRC.
    problems = add_json(known, json.dumps({"sources": {
        EVE: [[], [], [{"s": 4101, "n": f"{EVE}-a0", "m": "e-s e-ta"}]],
    }}))
    assert len(problems) == 1 and "owned by ef56gh78 already" in problems[0]
    problems = add_json(known, json.dumps({"sources": {
        EVE: [[], [], [{"s": 9001, "n": f"{EVE}-a0", "m": "e-s e-ta"}]],
        "99aa88bb": [[], [], [{"s": 9001, "n": "99aa88bb-a0", "m": "n-s n-ta"}]],
    }}))
    assert len(problems) == 1 and "listed twice" in problems[0] and "also for abcd1234" in problems[0]
    assert known.owner_of(9001) == EVE and known.owner_of(4101) == BOB


def test_a_source_already_known_is_a_deviation() -> None:
    known = RemoteSources()
    add_json(known, bob_json())
    again = {BOB: [[], [], [{"s": 4101, "n": f"{BOB}-a0", "m": "b-s b-ta"}]]}
    problems = add_json(known, json.dumps({"sources": again}))
    assert len(problems) == 1 and "already known" in problems[0]


def test_a_group_naming_unknown_ssrcs_or_of_a_wrong_shape_is_a_deviation() -> None:
    known = RemoteSources()
    video = [SourceXml(4201, f"{BOB}-v0", "camera", "b-s b-tv", BOB)]
    problems = add_xml(known, video, [GroupXml("FID", (4201, 7777))])
    assert len(problems) == 1 and "has unknown SSRCs" in problems[0]
    problems = add_xml(known, [SourceXml(4301, f"{BOB}-v1", "camera", "b-s2 b-tv2", BOB)],
                       [GroupXml("FID", (4301,))])
    assert len(problems) == 1 and "without exactly two SSRCs" in problems[0]
    problems = add_xml(known, [SourceXml(4401, f"{BOB}-v2", "camera", "b-s3 b-tv3", BOB)],
                       [GroupXml("XYZ", (4401, 4201))])
    assert len(problems) == 1 and "unknown semantics" in problems[0]


def test_group_members_must_share_one_msid() -> None:
    problems = add_json(RemoteSources(), json.dumps({"sources": {BOB: [
        [{"s": 4201, "n": f"{BOB}-v0", "m": "b-s b-tv"}, {"s": 4202, "n": f"{BOB}-v0", "m": "other msid"}],
        [["f", 4201, 4202]]]}}))
    assert any("different msids" in p for p in problems)
    assert any("without one common msid" in p for p in problems)


@pytest.mark.parametrize(("entry", "expected"), [
    ({"s": "4101", "n": f"{BOB}-a0", "m": "b-s b-ta"}, "invalid SSRC (str)"),  # a string, not a number
    ({"s": 0, "n": f"{BOB}-a0", "m": "b-s b-ta"}, "invalid SSRC (int)"),  # 0 is no SSRC
    ({"s": 4101, "n": f"{BOB}-a0", "m": "b-s b-ta", "v": "d"}, 'audio source 4101 carries "v"'),
    ({"s": 4101, "n": f"{BOB}-a0", "m": "b-s b-ta", "x": 1}, "unknown keys"),
])
def test_compact_json_the_focus_accepts_but_the_spec_forbids(entry: dict[str, object], expected: str) -> None:
    text = json.dumps({"sources": {BOB: [[], [], [entry]]}})
    focus_decode_json(text, max_chars=len(text))  # the focus's decoder lets it through
    problems = add_json(RemoteSources(), text)
    assert len(problems) == 1 and expected in problems[0], problems


def test_compact_json_video_type_other_than_d_and_one_ssrc_fid_group() -> None:
    text = json.dumps({"sources": {BOB: [
        [{"s": 4201, "n": f"{BOB}-v0", "m": "b-s b-tv", "v": "camera"}], [["f", 4201]]]}})
    assert focus_decode_json(text, max_chars=len(text)).get(BOB).sources[0].video_type == "desktop"
    problems = add_json(RemoteSources(), text)
    assert any('"v" other than "d"' in p for p in problems)
    assert any("without exactly two SSRCs" in p for p in problems)


def test_a_key_twice_in_the_json_is_a_deviation() -> None:
    # json.loads keeps the last of two equal keys; the focus's decoder does the same.
    text = (f'{{"sources":{{"{BOB}":[[],[],[{{"s":4101,"n":"{BOB}-a0","m":"x y"}}]],'
            f'"{BOB}":[[],[],[{{"s":4102,"n":"{BOB}-a0","m":"x y"}}]]}}}}')
    assert focus_decode_json(text, max_chars=len(text)).get(BOB).ssrcs == {4102}
    problems = add_json(RemoteSources(), text)
    assert problems == [f"json-message has a key twice in one object: {BOB!r}"]


def test_a_malformed_entry_is_skipped_and_the_rest_taken() -> None:
    text = json.dumps({"sources": {
        BOB: [[], [], [{"s": 4101, "n": f"{BOB}-a0", "m": "b-s b-ta"}, ["not", "a", "source"]]],
        EVE: "nonsense",
    }})
    known = RemoteSources()
    problems = add_json(known, text)
    assert len(problems) == 2, problems
    assert any("not an object" in p for p in problems) and any("at most four lists" in p for p in problems)
    assert known.get(BOB).ssrcs == {4101} and EVE not in known


@pytest.mark.parametrize("text", ["{", "[]", '{"sources":[]}', "[" * 100_000 + "]" * 100_000, "NaN",
                                  '{"sources":{}, "x": 1e999}'])
def test_a_malformed_document_is_one_problem_and_nothing_else(text: str) -> None:
    update = SourceUpdate()
    read_compact_json(text, update)
    assert len(update.problems) == 1 and not update.owners
    assert text[:20] not in update.problems[0] or len(text) < 3


def test_source_remove_of_what_was_never_added_is_a_deviation() -> None:
    known = RemoteSources()
    add_json(known, bob_json())
    never = {BOB: [[], [], [{"s": 5555}]], EVE: [[], [], [{"s": 1}]]}
    update = read_update((), json.dumps({"sources": never}), known)
    removed, problems = apply_remove(known, update)
    assert removed == {}
    assert sorted(problems) == [f"unknown source removed: {EVE} never had SSRC(s) [1]",
                                f"unknown source removed: {BOB} never had SSRC(s) [5555]"]
    # A proper remove of the video takes its FID group with it.
    update = read_update((), json.dumps({"sources": {BOB: [[{"s": 4201}, {"s": 4202}]]}}), known)
    removed, problems = apply_remove(known, update)
    assert problems == [] and removed == {BOB: 2}
    assert known.get(BOB).ssrcs == {4101} and known.get(BOB).groups == ()


def test_our_session_accept_reads_back_through_the_focus_parser() -> None:
    # What the client writes, read by the focus's parser: the two sides' XML agree.
    sources = tuple(SourceXml(ssrc, f"{ME}-v0", "camera", "m-s m-tv") for ssrc in (11, 12))
    description = Description("video", sources=sources, groups=(GroupXml("FID", (11, 12)),), rtcp_mux=True)
    jingle = Jingle(SESSION_ACCEPT, "sid9", responder="r@x/y", bundle=("video",),
                    contents=(Content("video", "responder", "both", description),))
    parsed = JingleIQ.from_element(jingle.to_element())
    assert parsed.bundle is not None and parsed.bundle.contents == ("video",)
    own = sources_from_contents(parsed.contents)
    assert own.ssrcs == {11, 12} and {s.msid for s in own.sources} == {"m-s m-tv"}
    assert [g.ssrcs for g in own.groups] == [(11, 12)]


def test_the_reader_refuses_without_echoing_the_payload() -> None:
    secret = "x" * 40 + "SECRET"
    source = element(qn("urn:xmpp:jingle:apps:rtp:ssma:0", "source"), {"ssrc": secret})
    description = element(qn("urn:xmpp:jingle:apps:rtp:1", "description"), {"media": "audio"}, source)
    bad = element(qn("urn:xmpp:jingle:1", "jingle"), {"action": "source-add", "sid": "s"},
                  element(qn("urn:xmpp:jingle:1", "content"), {"name": "audio"}, description))
    with pytest.raises(JingleReadError) as info:
        read_jingle(bad)
    assert "SECRET" not in str(info.value)
    with pytest.raises(JingleReadError):
        read_jingle(element(qn("urn:xmpp:jingle:1", "jingle"), {"action": secret, "sid": "s"}))


def test_the_simulators_and_the_load_generator_load_none_of_the_focus() -> None:
    code = ("import sys, jicofo.stress.cli, jicofo.sim.participant, jicofo.sim.bridge_cli; "
            "print([m for m in sys.modules if m.startswith(('jicofo.conference', 'jicofo.bridge', "
            "'jicofo.focus', 'jicofo.app', 'jicofo.rest'))])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"


def test_the_conference_answer_is_read_by_the_clients_own_reader() -> None:
    from jicofo.sim.client_conference import read_answer, request_element
    from jicofo.xmlns.conference_iq import ConferenceAnswer, ConferenceRequest

    answer = ConferenceAnswer("r@conference.meet.test", ready=True, focus_jid="focus@auth.meet.test",
                              session_id="s1", identity="a@meet.test", properties={"authentication": "false"})
    read = read_answer(answer.to_element())
    assert (read.room, read.ready, read.focus_jid, read.session_id, read.identity, read.vnode) == (
        "r@conference.meet.test", True, "focus@auth.meet.test", "s1", "a@meet.test", None)
    assert read.properties == {"authentication": "false"}
    bad = answer.to_element()
    bad.set("ready", "SECRET-maybe")
    with pytest.raises(ValueError) as info:
        read_answer(bad)
    assert "SECRET" not in str(info.value)
    # What the client writes, as the focus reads it.
    request = ConferenceRequest.from_element(request_element(
        "r@conference.meet.test", machine_uid="m1", session_id="s1", properties={"visitors-version": "1"}))
    assert (request.room, request.machine_uid, request.session_id, request.token) == (
        "r@conference.meet.test", "m1", "s1", None)
    assert request.properties == {"visitors-version": "1"}
