-- mod_jicofo_av_moderation: A/V moderation ("ask to speak") for Jitsi Meet on a stock Prosody 0.12.
--
-- Written for jicofo-trio. It takes the requests lib-jitsi-meet sends to Jitsi's av_moderation
-- component and sends the messages that component sends, to the clients and to the focus
-- (tested end to end with jicofo-trio's focus; upstream Jicofo reads the same messages but has
-- not been tried with this module):
--
--   plugin_paths = { "/usr/local/lib/jicofo-trio/prosody" }   -- the dir holding this file
--   Component "avmoderation.meet.example.com" "jicofo_av_moderation"
--       muc_component = "conference.meet.example.com"   -- default: conference.<main_host>
--       main_host = "meet.example.com"                  -- default: this address minus its first label
--
-- What it does:
--   * Advertises itself on the main host's disco#info as identity category "component", type
--     "av_moderation", name = this component's address (lib-jitsi-meet and the focus look there).
--   * Takes a moderator's requests, <message to=component><av_moderation .../></message>:
--       enable="true|false" mediaType="audio|video|desktop"   switch moderation of one media type
--       jidToWhitelist=OCCUPANT mediaType=...                 allow that occupant to unmute
--       jidToBlacklist=OCCUPANT mediaType=...                 take that permission back
--     The sender must be an occupant with the moderator role of a room of the conference MUC
--     (the room its session joined last: the requests name none).
--     Anything else is refused with a message error (not-allowed, bad-request, item-not-found),
--     which carries no part of the request.
--   * Sends every state change as a <json-message xmlns="http://jitsi.org/jitmeet">:
--       - to every occupant (the focus is one):
--         {"type":"av_moderation","room":ROOM,"enabled":BOOL,"mediaType":M,"actor":OCCUPANT}
--       - to every moderator (the focus is one) after a whitelist change:
--         {"type":"av_moderation","room":ROOM,"mediaType":M,"whitelists":{M:[OCCUPANT...],...}}
--         (plus "removed":true when an entry was taken out); every enabled media type's list is
--         sent, an empty one as [], so the focus can tell "emptied" from "not named";
--       - to the occupant approved or rejected: {"type":"av_moderation","room":ROOM,
--         "mediaType":M,"approved":true} or {...,"removed":true}; an approval while moderation
--         of M is off only asks that occupant to unmute ("approved" with "from":MODERATOR).
--     A newcomer is told which media types are moderated; a newcomer or new owner/admin with
--     the moderator role also gets the whitelists.
--
-- The focus enforces it (force-mute on the bridge, start muted); this module only keeps the
-- state and tells everyone. State lives in memory per room and goes with the room.

local jid = require "util.jid";
local array = require "util.array";

local lib = module:require "jicofo_component";

local MEDIA_TYPES = { "audio", "video", "desktop" };
local MEDIA = { audio = true, video = true, desktop = true };

local main_host, muc_host = lib.options(module);
-- Which room each client session is in (the requests do not say).
local occupants = lib.occupant_index(module, muc_host);

-- room object -> { [media] = { actor = OCCUPANT, whitelist = array of OCCUPANT } } for the media
-- types under moderation. Weak keys: a room that Prosody forgets takes its state with it.
local moderated = setmetatable({}, { __mode = "k" });

local function state_of(room)
	return moderated[room];
end

local function any_enabled(room)
	local state = state_of(room);
	return state ~= nil and next(state) ~= nil;
end

local function message(room, fields)
	fields.type = "av_moderation";
	fields.room = room.jid;
	return fields;
end

local function whitelists(room)
	local lists = {};
	for media, entry in pairs(state_of(room) or {}) do
		lists[media] = array(entry.whitelist);
	end
	return lists;
end

local function tell_enabled(room, to, media, enabled, actor)
	lib.send_json(module, to, message(room, { enabled = enabled, mediaType = media, actor = actor }));
end

local function tell_moderators(room, media, removed)
	local document = message(room, { mediaType = media, whitelists = whitelists(room),
		removed = removed or nil });
	for _, occupant in room:each_occupant() do
		if lib.is_moderator(room, occupant) then
			lib.send_json(module, occupant.jid, document);
		end
	end
end

-- A command from a client. Returns true once handled (answered or refused).
local function handle(stanza, command)
	local from = stanza.attr.from;
	local room, occupant = occupants.lookup(from);
	if room == nil then
		module:log("info", "refused a request from %s: not in a conference room", tostring(from));
		return lib.refuse(module, stanza, "item-not-found", "not in a conference room");
	end
	if lib.is_health_check(room) then
		return lib.refuse(module, stanza, "not-allowed", "not in this room");
	end
	if not lib.is_moderator(room, occupant) then
		module:log("info", "refused a request from %s in %s: not a moderator", occupant.nick, room.jid);
		return lib.refuse(module, stanza, "not-allowed", "only moderators can do this");
	end
	local media = command.attr.mediaType;
	if not MEDIA[media or ""] then
		return lib.refuse(module, stanza, "bad-request", "mediaType is audio, video or desktop");
	end

	local state = moderated[room];
	local enable = command.attr.enable;
	if enable ~= nil then
		if enable ~= "true" and enable ~= "false" then
			return lib.refuse(module, stanza, "bad-request", "enable is true or false");
		end
		local on = enable == "true";
		if on == (state ~= nil and state[media] ~= nil) then
			module:log("debug", "%s moderation in %s is already %s", media, room.jid, enable);
			return true;
		end
		if on then
			state = state or {};
			moderated[room] = state;
			state[media] = { actor = occupant.nick, whitelist = array() };
		else
			state[media] = nil;
			if next(state) == nil then moderated[room] = nil; end
		end
		module:log("info", "%s moderation %s in %s by %s", media, on and "enabled" or "disabled",
			room.jid, occupant.nick);
		for _, each in room:each_occupant() do
			tell_enabled(room, each.jid, media, on, occupant.nick);
		end
		if on then tell_moderators(room, media); end
		return true;
	end

	local add, remove = command.attr.jidToWhitelist, command.attr.jidToBlacklist;
	local target_jid = add or remove;
	if target_jid == nil then
		return lib.refuse(module, stanza, "bad-request", "no enable, jidToWhitelist or jidToBlacklist");
	end
	local target = jid.bare(target_jid) == room.jid and room:get_occupant_by_nick(target_jid) or nil;
	if target == nil then
		return lib.refuse(module, stanza, "item-not-found", "no such occupant in the room");
	end
	local entry = state and state[media];
	if entry == nil then
		if add then
			-- Not moderated: only ask that occupant to unmute, as Jitsi's component does.
			lib.send_json(module, target.jid, message(room, { mediaType = media, approved = true,
				from = occupant.nick }));
		end
		return true;
	end
	local index;
	for i, listed in ipairs(entry.whitelist) do
		if listed == target.nick then index = i; break; end
	end
	if add and index == nil then
		entry.whitelist:push(target.nick);
	elseif remove and index ~= nil then
		table.remove(entry.whitelist, index);
	else
		return true; -- nothing changes
	end
	module:log("info", "%s %s for %s in %s by %s", target.nick, add and "approved" or "rejected", media,
		room.jid, occupant.nick);
	tell_moderators(room, media, remove ~= nil);
	if not lib.is_moderator(room, target) then
		lib.send_json(module, target.jid, message(room, { mediaType = media,
			approved = add and true or nil, removed = remove and true or nil }));
	end
	return true;
end

module:hook("message/host", function(event)
	local stanza = event.stanza;
	if stanza.attr.type == "error" then
		return true; -- never answer an error (no loops)
	end
	local command = stanza:get_child("av_moderation");
	if command == nil then
		return true; -- not for us; nothing to answer
	end
	return handle(stanza, command);
end);

-- A newcomer learns what is moderated; a moderator also gets the whitelists.
local function occupant_joined(event)
	local room, occupant = event.room, event.occupant;
	if not any_enabled(room) or lib.is_health_check(room) then return; end
	for _, media in ipairs(MEDIA_TYPES) do
		local entry = state_of(room)[media];
		if entry ~= nil then
			tell_enabled(room, occupant.jid, media, true, entry.actor);
		end
	end
	if lib.is_moderator(room, occupant) then
		lib.send_json(module, occupant.jid, message(room, { whitelists = whitelists(room) }));
	end
end

-- Someone made owner or admin (auto-owner, a moderator's grant) gets the whitelists.
local function affiliation_changed(event)
	local room = event.room;
	if not any_enabled(room) or (event.affiliation ~= "owner" and event.affiliation ~= "admin") then
		return;
	end
	for _, occupant in room:each_occupant() do
		if occupant.bare_jid == event.jid and lib.is_moderator(room, occupant) then
			lib.send_json(module, occupant.jid, message(room, { whitelists = whitelists(room) }));
		end
	end
end

local function room_destroyed(event)
	moderated[event.room] = nil;
end

local function attach(host)
	if host ~= muc_host then return; end
	local muc_module = module:context(muc_host);
	-- After the MUC's own handlers (and allowners-like modules): roles are final by then.
	muc_module:hook("muc-occupant-joined", occupant_joined, -2);
	muc_module:hook("muc-set-affiliation", affiliation_changed, -1);
	muc_module:hook("muc-room-destroyed", room_destroyed);
	occupants.attach(muc_module);
	module:log("info", "moderating rooms of %s", muc_host);
end

if prosody.hosts[muc_host] ~= nil then
	attach(muc_host);
else
	module:log("info", "waiting for the conference MUC %s", muc_host);
	module:hook_global("host-activated", attach);
end

local withdraw = lib.advertise(module, main_host, "av_moderation");
function module.unload()
	withdraw();
end
