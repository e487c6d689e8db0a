-- jicofo_component.lib.lua: helpers shared by our moderation components
-- (mod_jicofo_av_moderation, mod_jicofo_room_metadata), loaded with module:require.
--
-- Written for jicofo-trio, for a stock Prosody 0.12 without Jitsi's plugins. It finds the
-- conference MUC, the room and occupant a client's request is about, advertises a component
-- on the main virtual host's disco#info (where lib-jitsi-meet and the focus look for it), and
-- sends <json-message>s.

local jid = require "util.jid";
local json = require "util.json";
local st = require "util.stanza";
local modulemanager = require "core.modulemanager";

local NS_JITMEET = "http://jitsi.org/jitmeet";
-- Rooms the focus makes for its health checks: no component traffic for them.
local HEALTH_CHECK_PREFIX = "__jicofo-health-check";

local lib = { NS_JITMEET = NS_JITMEET };

-- The options every component of ours reads, with defaults derived from its own address:
-- "avmoderation.meet.example.com" serves the main host "meet.example.com" and its conference
-- MUC "conference.meet.example.com".
function lib.options(module)
	local parent = module.host:match("^[^.]+%.(.+)$") or module.host;
	local main_host = module:get_option_string("main_host", parent);
	local muc_host = module:get_option_string("muc_component", "conference." .. main_host);
	return main_host, muc_host;
end

-- mod_muc of `muc_host` (its module environment: get_room_from_jid, live_rooms), or nil.
function lib.muc(muc_host)
	local host = prosody.hosts[muc_host];
	return host and host.modules and host.modules.muc or nil;
end

function lib.is_health_check(room)
	local node = jid.node(room.jid) or "";
	return node:sub(1, #HEALTH_CHECK_PREFIX) == HEALTH_CHECK_PREFIX;
end

-- The room of `muc_host` named by `room_jid` (a bare room JID), or nil.
function lib.room(muc_host, room_jid)
	local muc = lib.muc(muc_host);
	if muc == nil or type(room_jid) ~= "string" then return nil; end
	local bare = jid.prep(room_jid);
	if bare == nil or jid.bare(bare) ~= bare or jid.host(bare) ~= muc_host then return nil; end
	return muc.get_room_from_jid(bare);
end

-- Which room a client session is in. lib-jitsi-meet does not name the room in A/V-moderation
-- requests (Jitsi's module takes it from the BOSH or WebSocket URL, which stock Prosody does not
-- keep), so the rooms sessions join are indexed: real full JID -> the room it joined last. Each
-- answer is checked against the room's own occupant list, so a stale entry is never believed;
-- stale entries are dropped when looked up and by a sweep every `sweep` seconds, and the index
-- holds rooms weakly (a destroyed room takes its entries with it). A lookup costs O(1) whatever
-- a sender sends, so requests from senders in no room cost nothing to refuse.
function lib.occupant_index(module, muc_host, sweep)
	local rooms = setmetatable({}, { __mode = "v" });
	local index = {};

	function index.attach(muc_module)
		muc_module:hook("muc-occupant-session-new", function(event)
			if event.jid ~= nil then rooms[event.jid] = event.room; end
		end);
		-- Sessions already in rooms (a module loaded or reloaded while rooms run).
		local muc = lib.muc(muc_host);
		if muc ~= nil then
			for room in muc.live_rooms() do
				for _, occupant in room:each_occupant() do
					for real_jid in occupant:each_session() do rooms[real_jid] = room; end
				end
			end
		end
		module:add_timer(sweep or 60, function()
			for real_jid, room in pairs(rooms) do
				if room:get_occupant_by_real_jid(real_jid) == nil then rooms[real_jid] = nil; end
			end
			return sweep or 60;
		end);
	end

	-- The room `real_jid` is an occupant of, and that occupant; or nil.
	function index.lookup(real_jid)
		local room = real_jid and rooms[real_jid];
		if room == nil then return nil; end
		local occupant = room:get_occupant_by_real_jid(real_jid);
		if occupant == nil then
			rooms[real_jid] = nil;
			return nil;
		end
		return room, occupant;
	end

	return index;
end

-- An occupant's current role (event.occupant.role can lag behind within a join event).
function lib.is_moderator(room, occupant)
	return room:get_role(occupant.nick) == "moderator";
end

-- <message from=component to=to><json-message xmlns=jitmeet [room=room]>text</json-message>
function lib.send_json(module, to, document, room_attr)
	local text, err = json.encode(document);
	if text == nil then
		module:log("error", "could not encode a json-message: %s", tostring(err));
		return;
	end
	local message = st.message({ from = module.host, to = to })
		:tag("json-message", { xmlns = NS_JITMEET, room = room_attr }):text(text):up();
	module:send(message);
end

-- Refuse a client's message: a message error carrying only the condition and our text, never
-- the request's payload (st.error_reply copies the addresses and id, no children).
function lib.refuse(module, stanza, condition, text)
	module:send(st.error_reply(stanza, "cancel", condition, text));
	return true;
end

-- Advertise `kind` (identity category "component", name = this component's address) in the
-- disco#info of `main_host`, where clients and the focus discover components. The identity is
-- added through the main host's mod_disco (the owner of that host's disco#info) once that host
-- is active. Returns a function that withdraws it (for module.unload).
function lib.advertise(module, main_host, kind)
	local added_to, item;

	local function try_add()
		if added_to ~= nil then return; end
		local disco = modulemanager.get_module(main_host, "disco");
		if disco == nil or disco.module == nil then return; end
		item = { category = "component", type = kind, name = module.host };
		disco.module:add_item("identity", item);
		added_to = disco.module;
		module:log("info", "advertised as the %s component on %s", kind, main_host);
	end

	try_add();
	if added_to == nil then
		module:log("info", "will advertise the %s component once %s is active", kind, main_host);
		if prosody.hosts[main_host] ~= nil then
			-- The host is there, its modules are being loaded.
			module:context(main_host):hook("module-loaded", function(event)
				if event.module == "disco" then try_add(); end
			end);
		else
			-- After the host's modules are loaded (modulemanager's handler, priority 0).
			module:hook_global("host-activated", function(host)
				if host == main_host then try_add(); end
			end, -10);
		end
	end
	return function()
		if added_to ~= nil then
			added_to:remove_item("identity", item);
			added_to = nil;
		end
	end;
end

-- Depth of a decoded JSON value (tables nest), stopping at `limit` + 1.
function lib.depth(value, limit)
	if type(value) ~= "table" then return 0; end
	if limit < 0 then return 1; end
	local deepest = 0;
	for _, child in pairs(value) do
		local d = lib.depth(child, limit - 1);
		if d > deepest then deepest = d; end
		if deepest > limit then break; end
	end
	return deepest + 1;
end

-- Deep equality of decoded JSON values.
function lib.equal(a, b)
	if type(a) ~= "table" or type(b) ~= "table" then return a == b; end
	for k, v in pairs(a) do
		if not lib.equal(v, b[k]) then return false; end
	end
	for k in pairs(b) do
		if a[k] == nil then return false; end
	end
	return true;
end

return lib;
