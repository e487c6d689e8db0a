-- Test-only: advertises Jitsi component identities (category "component") in this host's
-- disco#info, as Jitsi's own modules (av_moderation, room_metadata) do, so that the focus's
-- component discovery can be exercised with stock Prosody.
--   test_component_identities = { av_moderation = "avmoderation.meet.test" }
for kind, address in pairs(module:get_option("test_component_identities", {})) do
	module:add_identity("component", kind, address);
end
