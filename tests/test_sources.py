"""The source model: every validation rule of docs/jicofo.md §2.5 (accepted and refused),
simulcast stripping, receiver filters and the compact JSON of §2.6."""

from __future__ import annotations

import pytest

from jicofo.conference.sources import (
    SourceLimits,
    check_source_set,
    sources_for_receiver,
    validate_add,
    validate_remove,
)
from jicofo.model.sources import (
    BRIDGE_OWNER,
    ConferenceSourceMap,
    EndpointSourceSet,
    MediaType,
    Semantics,
    Source,
    SourceValidationError,
    SsrcGroup,
    diff,
    parse_semantics,
)
from jicofo.model.sources_json import decode_json, encode_json

A, V = MediaType.AUDIO, MediaType.VIDEO
SIM, FID = Semantics.SIM, Semantics.FID
LIMITS = SourceLimits()


def audio(ssrc: int, msid: str | None = "s a", name: str = "x-a0") -> Source:
    return Source(ssrc, A, name=name, msid=msid)


def video(ssrc: int, msid: str | None = "s v", name: str = "x-v0", video_type: str = "camera") -> Source:
    return Source(ssrc, V, name=name, msid=msid, video_type=video_type)


def sset(*items: Source | SsrcGroup) -> EndpointSourceSet:
    return EndpointSourceSet(
        tuple(i for i in items if isinstance(i, Source)),
        tuple(i for i in items if isinstance(i, SsrcGroup)),
    )


def simulcast_camera(base: int = 11, msid: str = "s v") -> EndpointSourceSet:
    """3 simulcast layers (base, base+1, base+2) with RTX base+10..base+12."""
    layers = [base, base + 1, base + 2]
    return sset(
        *(video(s, msid) for s in layers),
        *(video(s + 10, msid) for s in layers),
        SsrcGroup(SIM, tuple(layers), V),
        *(SsrcGroup(FID, (s, s + 10), V) for s in layers),
    )


def refused(message: str, existing: ConferenceSourceMap, owner: str, add: EndpointSourceSet,
            limits: SourceLimits = LIMITS) -> None:
    with pytest.raises(SourceValidationError) as info:
        validate_add(existing, owner, add, limits)
    assert info.value.condition == "bad-request"
    assert info.value.message == message


# --- add: SSRC range --------------------------------------------------------------------------


@pytest.mark.parametrize("ssrc", [1, 0xFFFF_FFFF])
def test_ssrc_in_range_accepted(ssrc: int) -> None:
    assert validate_add(ConferenceSourceMap(), "e1", sset(audio(ssrc)), LIMITS) == sset(audio(ssrc))


@pytest.mark.parametrize("ssrc", [0, -1, 0x1_0000_0000])
def test_ssrc_out_of_range_refused(ssrc: int) -> None:
    refused("Invalid SSRC", ConferenceSourceMap(), "e1", sset(audio(ssrc)))


# --- add: SSRC reuse --------------------------------------------------------------------------


def test_unused_ssrc_accepted() -> None:
    existing = ConferenceSourceMap({"e2": sset(audio(1, "o a"))})
    assert validate_add(existing, "e1", sset(audio(2)), LIMITS)


@pytest.mark.parametrize("owner", ["e1", "e2"])
def test_ssrc_used_by_anyone_refused(owner: str) -> None:
    existing = ConferenceSourceMap({"e2": sset(audio(1, "o a"))})
    refused("SSRC is already used", existing, owner, sset(audio(1, "n a")))


def test_ssrc_twice_in_one_add_refused() -> None:
    refused("SSRC is already used", ConferenceSourceMap(), "e1", sset(audio(1, "a"), audio(1, "b")))


# --- add: MSID reuse --------------------------------------------------------------------------


def test_msid_of_another_endpoint_refused() -> None:
    existing = ConferenceSourceMap({"e2": sset(audio(1, "shared"))})
    refused("MSID is already used", existing, "e1", sset(audio(2, "shared")))


def test_own_msid_for_another_media_type_accepted() -> None:
    existing = ConferenceSourceMap({"e1": sset(audio(1, "same"))})
    assert validate_add(existing, "e1", sset(video(2, "same")), LIMITS)


# --- add: limits ------------------------------------------------------------------------------


def test_source_limit() -> None:
    limits = SourceLimits(max_ssrcs_per_user=3, max_ssrc_groups_per_user=20)
    existing = ConferenceSourceMap({"e1": sset(audio(1))})
    assert validate_add(existing, "e1", sset(video(2, "v1"), video(3, "v2")), limits)
    refused("SSRC limit (3) exceeded", existing, "e1",
            sset(video(2, "v1"), video(3, "v2"), video(4, "v3")), limits)


def test_group_limit() -> None:
    limits = SourceLimits(max_ssrcs_per_user=20, max_ssrc_groups_per_user=1)
    one = sset(video(1, "m1"), video(2, "m1"), SsrcGroup(FID, (1, 2), V))
    assert validate_add(ConferenceSourceMap(), "e1", one, limits) == one
    two = one.union(sset(video(3, "m2"), video(4, "m2"), SsrcGroup(FID, (3, 4), V)))
    refused("ssrc-group limit (1) exceeded", ConferenceSourceMap(), "e1", two, limits)


# --- add: groups ------------------------------------------------------------------------------


def test_empty_and_duplicate_groups_silently_dropped() -> None:
    group = SsrcGroup(FID, (1, 2), V)
    existing = ConferenceSourceMap({"e1": sset(video(1), video(2), group)})
    add = sset(video(3, "other"), SsrcGroup(SIM, (), V), group)
    assert validate_add(existing, "e1", add, LIMITS) == sset(video(3, "other"))


def test_group_over_own_ssrcs_accepted_including_existing_ones() -> None:
    existing = ConferenceSourceMap({"e1": sset(video(1))})
    add = sset(video(2), SsrcGroup(FID, (1, 2), V))
    assert validate_add(existing, "e1", add, LIMITS) == add


def test_group_with_unsignaled_ssrc_refused() -> None:
    existing = ConferenceSourceMap({"e2": sset(video(2, "o"))})
    refused("An SSRC group contains an SSRC, which hasn't been signaled as a source",
            existing, "e1", sset(video(1), SsrcGroup(FID, (1, 2), V)))


@pytest.mark.parametrize("value", ["SIM", "fid", "Sim"])
def test_known_semantics_accepted(value: str) -> None:
    assert parse_semantics(value) in (SIM, FID)


def test_invalid_semantics_refused() -> None:
    with pytest.raises(SourceValidationError) as info:
        parse_semantics("FEC-FR")
    assert info.value.condition == "bad-request"


# --- add: validity of the resulting set -------------------------------------------------------


def test_fid_group_needs_exactly_two() -> None:
    assert validate_add(ConferenceSourceMap(), "e1", simulcast_camera(), LIMITS)
    refused("Invalid FID group", ConferenceSourceMap(), "e1",
            sset(video(1), video(2), video(3), SsrcGroup(FID, (1, 2, 3), V)))
    refused("Invalid FID group", ConferenceSourceMap(), "e1", sset(video(1), SsrcGroup(FID, (1,), V)))


def test_grouped_source_needs_msid() -> None:
    assert validate_add(ConferenceSourceMap(), "e1", sset(video(1, None)), LIMITS)  # ungrouped: fine
    refused("Required source parameter 'msid' is not present", ConferenceSourceMap(), "e1",
            sset(video(1, None), video(2, None), SsrcGroup(FID, (1, 2), V)))


def test_group_members_share_msid() -> None:
    refused("SsrcGroup contains sources with different MSIDs", ConferenceSourceMap(), "e1",
            sset(video(1, "a"), video(2, "b"), SsrcGroup(FID, (1, 2), V)))


def test_extended_groups_need_distinct_msids() -> None:
    camera = simulcast_camera(11, "cam")
    screen = sset(video(51, "screen"), video(52, "screen"), SsrcGroup(FID, (51, 52), V))
    assert validate_add(ConferenceSourceMap(), "e1", camera.union(screen), LIMITS)
    # A lone FID group reusing the simulcast group's msid.
    clash = sset(video(51, "cam"), video(52, "cam"), SsrcGroup(FID, (51, 52), V))
    refused("MSID is already used", ConferenceSourceMap(), "e1", camera.union(clash))
    # Two lone sources of one media type with one msid.
    refused("MSID is already used", ConferenceSourceMap(), "e1", sset(audio(1, "m"), audio(2, "m")))


def test_add_is_all_or_nothing() -> None:
    existing = ConferenceSourceMap({"e1": sset(audio(1))})
    before = existing.copy()
    with pytest.raises(SourceValidationError):
        validate_add(existing, "e1", sset(audio(2, "n"), audio(1, "n")), LIMITS)
    assert existing == before


# --- remove -----------------------------------------------------------------------------------


def test_remove_own_source_matched_by_ssrc_only_and_its_groups() -> None:
    camera = simulcast_camera()
    existing = ConferenceSourceMap({"e1": camera.union(sset(audio(1)))})
    removed = validate_remove(existing, "e1", sset(*(Source(s, V) for s in camera.ssrcs)))
    assert removed == camera  # the stored sources, and every group touching them
    existing.remove("e1", removed)
    assert existing.get("e1") == sset(audio(1))


def test_remove_source_of_another_endpoint_refused() -> None:
    existing = ConferenceSourceMap({"e1": sset(audio(1)), "e2": sset(audio(2, "o"))})
    with pytest.raises(SourceValidationError, match="Source does not exist or is not owned by endpoint"):
        validate_remove(existing, "e1", sset(audio(2)))
    with pytest.raises(SourceValidationError, match="Source does not exist or is not owned by endpoint"):
        validate_remove(existing, "e1", sset(audio(3)))


def test_remove_listed_group() -> None:
    group = SsrcGroup(FID, (1, 2), V)
    existing = ConferenceSourceMap({"e1": sset(video(1), video(2), group)})
    assert validate_remove(existing, "e1", sset(Source(1, V), Source(2, V), group)) == existing.get("e1")
    with pytest.raises(SourceValidationError, match="Source group does not exist"):
        validate_remove(existing, "e1", sset(SsrcGroup(SIM, (1, 2), V)))


def test_remove_must_leave_a_valid_set() -> None:
    # Removing the FID group alone would leave two lone sources sharing an msid.
    group = SsrcGroup(FID, (1, 2), V)
    existing = ConferenceSourceMap({"e1": sset(video(1), video(2), group)})
    with pytest.raises(SourceValidationError, match="MSID is already used"):
        validate_remove(existing, "e1", sset(group))
    with pytest.raises(SourceValidationError, match="MSID is already used"):
        check_source_set(existing.get("e1").difference(sset(group)))
    # Dropping one simulcast layer leaves the others as lone FID groups with one msid.
    camera = ConferenceSourceMap({"e1": simulcast_camera()})
    with pytest.raises(SourceValidationError, match="MSID is already used"):
        validate_remove(camera, "e1", sset(Source(11, V), Source(21, V)))


# --- receivers --------------------------------------------------------------------------------


def test_strip_simulcast_keeps_first_layer_and_its_rtx() -> None:
    stripped = simulcast_camera().union(sset(audio(1))).strip_simulcast()
    assert stripped.ssrcs == {11, 21, 1}
    assert stripped.groups == (SsrcGroup(FID, (11, 21), V),)


def test_sources_for_receiver() -> None:
    conference = ConferenceSourceMap({"e1": simulcast_camera().union(sset(audio(1))),
                                      "e2": sset(audio(2, "o"))})
    for_e2 = sources_for_receiver(conference, "e2")
    assert list(for_e2) == ["e1"] and for_e2.get("e1").ssrcs == {11, 21, 1}
    assert sources_for_receiver(conference, "e2", strip_simulcast=False).get("e1") == conference.get("e1")
    audio_only = sources_for_receiver(conference, "e2", media_types=[A])
    assert audio_only.get("e1").ssrcs == {1}
    assert not sources_for_receiver(conference, "e2", ssrc_rewriting=True)


def test_map_add_remove_diff() -> None:
    signaled = ConferenceSourceMap({"e1": sset(audio(1)), "e2": sset(audio(2, "o"))})
    desired = ConferenceSourceMap({"e1": sset(audio(1), video(3))})
    change = diff(signaled, desired)
    assert change.remove == ConferenceSourceMap({"e2": sset(audio(2, "o"))})
    assert change.add == ConferenceSourceMap({"e1": sset(video(3))})
    signaled.remove_all(change.remove)
    signaled.add_all(change.add)
    assert signaled == desired
    assert desired.remove_endpoint("e1") and not desired


# --- compact JSON -----------------------------------------------------------------------------

SPEC_EXAMPLE = (
    '{"sources":{"jvb":[[{"s":2001,"n":"jvb-v0","m":"mixedmslabel mixedlabelvideo0"}],[],'
    '[{"s":1001,"n":"jvb-a0","m":"mixedmslabel mixedlabelaudio0"}]],"ab12cd34":[[{"s":11,'
    '"n":"ab12cd34-v0","m":"s-1 t-1"},{"s":12,"n":"ab12cd34-v0","m":"s-1 t-1"}],[["f",11,12]],'
    '[{"s":31,"n":"ab12cd34-a0","m":"s-1 t-2"}]]}}'
)


def test_json_spec_example_round_trip() -> None:
    decoded = decode_json(SPEC_EXAMPLE)
    assert list(decoded) == [BRIDGE_OWNER, "ab12cd34"]
    endpoint = decoded.get("ab12cd34")
    assert endpoint.groups == (SsrcGroup(FID, (11, 12), V),)
    assert Source(31, A, name="ab12cd34-a0", msid="s-1 t-2") in endpoint.sources
    assert encode_json(decoded) == SPEC_EXAMPLE


def test_json_desktop_and_omitted_audio() -> None:
    screen = sset(video(51, "ss", "ab-v1", "desktop"), video(52, "ss", "ab-v1", "desktop"),
                  SsrcGroup(FID, (51, 52), V))
    text = encode_json(ConferenceSourceMap({"ab": screen}))
    assert text == ('{"sources":{"ab":[[{"s":51,"n":"ab-v1","m":"ss","v":"d"},'
                    '{"s":52,"n":"ab-v1","m":"ss","v":"d"}],[["f",51,52]]]}}')
    assert decode_json(text) == ConferenceSourceMap({"ab": screen})
    assert decode_json('{"sources":{"x":[[{"s":"7"}]]}}').get("x").sources == (Source(7, V),)


@pytest.mark.parametrize(
    "text",
    ["not json", "[]", '{"sources":[]}', '{"sources":{"x":{}}}', '{"sources":{"x":[[{"n":"a"}]]}}',
     '{"sources":{"x":[[],[["q",1]]]}}', '{"sources":{"x":[[{"s":true}]]}}',
     '{"sources":{"x":[[],[],[],[],[]]}}', '{"sources":{"x":[[{"s":1,"n":5}]]}}'],
)
def test_json_malformed_refused(text: str) -> None:
    with pytest.raises(ValueError):
        decode_json(text)
