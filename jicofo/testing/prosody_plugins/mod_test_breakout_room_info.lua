-- Test-only: what Jitsi's mod_muc_breakout_rooms puts in a breakout room's disco#info, so that
-- the focus's breakout-room handling can be exercised with stock Prosody. Load it on the
-- breakout MUC component; the main room of each breakout room comes from the config:
--   test_breakout_main_rooms = { ["br1@breakout.meet.test"] = "main@conference.meet.test" }
local main_rooms = module:get_option("test_breakout_main_rooms", {});

module:hook("muc-disco#info", function(event)
	local main_room = main_rooms[event.room.jid];
	if not main_room then
		return;
	end
	table.insert(event.form, { name = "muc#roominfo_isbreakout"; type = "boolean";
		label = "Is this a breakout room?" });
	event.formdata["muc#roominfo_isbreakout"] = true;
	table.insert(event.form, { name = "muc#roominfo_breakout_main_room";
		label = "The main room associated with this breakout room" });
	event.formdata["muc#roominfo_breakout_main_room"] = main_room;
end);
