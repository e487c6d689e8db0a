-- Test-only: plays a conference presets service for a conference MUC, as a component:
--   Component "presets.meet.test" "test_conference_presets"
--       muc_component = "conference.meet.test"
--       presets_delay = 0.5            -- seconds after a room is created
-- Every room's configuration form says presets are enabled
-- (muc#roominfo_conference_presets_service_enabled = "true"), and `presets_delay` seconds after
-- a room is created its metadata gets startMuted = { audio = true, video = false } and
-- "room-metadata-changed" is fired on the MUC host, which mod_jicofo_room_metadata answers by
-- sending the metadata to every occupant (the focus included).
local muc_host = module:get_option_string("muc_component");
local delay = module:get_option_number("presets_delay", 0.5);

local function attach(host)
	if host ~= muc_host then return; end
	local muc = module:context(muc_host);

	muc:hook("muc-config-form", function(event)
		table.insert(event.form, {
			name = "muc#roominfo_conference_presets_service_enabled";
			type = "text-single";
			label = "Conference presets service enabled";
			value = "true";
		});
	end);

	muc:hook("muc-room-created", function(event)
		local room = event.room;
		module:add_timer(delay, function()
			room.jitsiMetadata = room.jitsiMetadata or {};
			room.jitsiMetadata.startMuted = { audio = true, video = false };
			muc:fire_event("room-metadata-changed", { room = room });
		end);
	end);
end

-- The MUC host may be activated after this component: hooks need its host object.
if prosody.hosts[muc_host] ~= nil then
	attach(muc_host);
else
	module:hook_global("host-activated", attach);
end
