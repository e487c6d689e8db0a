-- mod_jicofo_room_metadata: room metadata for Jitsi Meet on a stock Prosody 0.12.
--
-- Written for jicofo-trio. It takes the updates lib-jitsi-meet sends to Jitsi's room_metadata
-- component and sends the messages that component sends, to the clients and to the focus
-- (tested end to end with jicofo-trio's focus; not tried with upstream Jicofo):
--
--   plugin_paths = { "/usr/local/lib/jicofo-trio/prosody" }   -- the dir holding this file
--   Component "metadata.meet.example.com" "jicofo_room_metadata"
--       muc_component = "conference.meet.example.com"   -- default: conference.<main_host>
--       main_host = "meet.example.com"                  -- default: this address minus its first label
--
-- What it does:
--   * Advertises itself on the main host's disco#info (identity category "component", type
--     "room_metadata", name = this component's address).
--   * Keeps one JSON object of metadata per room. A moderator (an occupant with the moderator
--     role) sets one key of it, as lib-jitsi-meet's RoomMetadata.setMetadata does:
--       <message to=component><room_metadata xmlns="http://jitsi.org/jitmeet" room=ROOM>
--         {"key":"startMuted","data":{"audio":true,"video":false}}</room_metadata></message>
--     Refused with a message error that carries no part of the request: a sender who is not in
--     ROOM (item-not-found) or not a moderator (not-allowed); text that is not a JSON object with
--     a string "key" and a non-null "data", longer than room_metadata_max_size, nested deeper
--     than room_metadata_max_depth, a key the server owns (room_metadata_blocked_keys, by
--     default Jitsi's list: moderators, participants, participantsSoftLimit, visitorsEnabled,
--     transcription, ...), or a value of the wrong type for a field the focus reads (startMuted,
--     lobbyEnabled, visitors, recording: bad-request), so that no moderator can make the
--     focus refuse the room's metadata.
--   * After each change (a client's, or another module's that fires "room-metadata-changed"
--     { room = room } on the MUC host after setting room.jitsiMetadata, as Jitsi's modules do),
--     and to each newcomer when the room has metadata, sends
--       <json-message xmlns="http://jitsi.org/jitmeet" room=ROOM>
--         {"type":"room_metadata","metadata":{...}}</json-message>
--     to every occupant; the focus, an occupant, reads startMuted and the rest from it.

local json = require "util.json";
local array = require "util.array";

local lib = module:require "jicofo_component";

local main_host, muc_host = lib.options(module);

-- Bounds on what a client sends and on what is kept per room. The focus reads component
-- messages up to 128 KiB and 8 levels deep ({"type","metadata":{key: data}} puts data at
-- level 3), so the defaults keep every broadcast well inside what it accepts.
local max_size = module:get_option_number("room_metadata_max_size", 16 * 1024);
local max_total = module:get_option_number("room_metadata_max_total_size", 64 * 1024);
local max_depth = module:get_option_number("room_metadata_max_depth", 5);
local max_key = 128;
local blocked = module:get_option_set("room_metadata_blocked_keys", {
	"allownersEnabled", "asyncTranscription", "conferencePresetsServiceEnabled", "dialinEnabled",
	"moderators", "participants", "participantsSoftLimit", "services", "transcriberType",
	"transcription", "visitorsEnabled",
});

-- Fields the focus parses strictly: their value must have the type it expects. util.json gives
-- decoded arrays util.array's metatable: an array is not an object.
local array_mt = getmetatable(array());

local function booleans_of(value, keys)
	if type(value) ~= "table" or getmetatable(value) == array_mt or value == json.null then
		return false;
	end
	for k, v in pairs(value) do
		if keys[k] and type(v) ~= "boolean" and v ~= json.null then return false; end
	end
	return true;
end

local typed = {
	startMuted = function(v) return booleans_of(v, { audio = true, video = true }); end,
	visitors = function(v) return booleans_of(v, { live = true }); end,
	recording = function(v) return booleans_of(v, { isTranscribingEnabled = true }); end,
	lobbyEnabled = function(v) return type(v) == "boolean"; end,
};

-- A room's metadata is kept where Jitsi's modules keep it, `room.jitsiMetadata`, so that other
-- modules (a conference presets service, ...) can set fields and then fire
-- "room-metadata-changed" { room = room } on the MUC host to have it sent to everyone.

local function document(room)
	return { type = "room_metadata", metadata = room.jitsiMetadata or {} };
end

local function send_to(room, to)
	lib.send_json(module, to, document(room), room.jid);
end

local function broadcast(room)
	for _, occupant in room:each_occupant() do
		send_to(room, occupant.jid);
	end
end

local function handle(stanza, request)
	local room = lib.room(muc_host, request.attr.room);
	local occupant = room and room:get_occupant_by_real_jid(stanza.attr.from);
	if occupant == nil or lib.is_health_check(room) then
		return lib.refuse(module, stanza, "item-not-found", "not in that conference room");
	end
	if not lib.is_moderator(room, occupant) then
		module:log("info", "refused metadata from %s in %s: not a moderator", occupant.nick, room.jid);
		return lib.refuse(module, stanza, "not-allowed", "only moderators can set room metadata");
	end
	local text = request:get_text() or "";
	if #text > max_size then
		return lib.refuse(module, stanza, "bad-request", "the metadata update is too large");
	end
	local ok, update = pcall(json.decode, text);
	if not ok or type(update) ~= "table" or lib.depth(update, max_depth + 1) > max_depth + 1 then
		return lib.refuse(module, stanza, "bad-request", "not a JSON object (or nested too deep)");
	end
	local key, data = update.key, update.data;
	if type(key) ~= "string" or key == "" or #key > max_key or data == nil or data == json.null then
		return lib.refuse(module, stanza, "bad-request", "a string key and a non-null data are needed");
	end
	if blocked:contains(key) then
		module:log("info", "refused metadata key %q from %s in %s: set by the server only", key,
			occupant.nick, room.jid);
		return lib.refuse(module, stanza, "not-allowed", "this key is set by the server");
	end
	if typed[key] ~= nil and not typed[key](data) then
		return lib.refuse(module, stanza, "bad-request", "wrong type for " .. key);
	end
	local current = room.jitsiMetadata or {};
	if lib.equal(current[key], data) then
		return true;
	end
	local previous = current[key];
	current[key] = data;
	local encoded = json.encode({ type = "room_metadata", metadata = current });
	if encoded == nil or #encoded > max_total then
		current[key] = previous;
		return lib.refuse(module, stanza, "resource-constraint", "the room's metadata would be too large");
	end
	room.jitsiMetadata = current;
	module:log("info", "metadata %q of %s set by %s", key, room.jid, occupant.nick);
	broadcast(room);
	return true;
end

module:hook("message/host", function(event)
	local stanza = event.stanza;
	if stanza.attr.type == "error" then
		return true; -- never answer an error (no loops)
	end
	local request = stanza:get_child("room_metadata", lib.NS_JITMEET);
	if request == nil then
		return true;
	end
	return handle(stanza, request);
end);

local function occupant_joined(event)
	local room = event.room;
	if room.jitsiMetadata ~= nil and next(room.jitsiMetadata) ~= nil and not lib.is_health_check(room) then
		send_to(room, event.occupant.jid);
	end
end

local function attach(host)
	if host ~= muc_host then return; end
	local muc_module = module:context(muc_host);
	muc_module:hook("muc-occupant-joined", occupant_joined, -2);
	muc_module:hook("room-metadata-changed", function(event)
		if event.room ~= nil and not lib.is_health_check(event.room) then broadcast(event.room); end
	end);
	module:log("info", "keeping room metadata for %s", muc_host);
end

if prosody.hosts[muc_host] ~= nil then
	attach(muc_host);
else
	module:log("info", "waiting for the conference MUC %s", muc_host);
	module:hook_global("host-activated", attach);
end

local withdraw = lib.advertise(module, main_host, "room_metadata");
function module.unload()
	withdraw();
end
