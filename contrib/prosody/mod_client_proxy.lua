-- mod_client_proxy: a component that relays clients' IQs to an online session of one account.
--
-- Written for jicofo-trio, for a stock Prosody 0.12 without Jitsi's plugins. It gives the same
-- wire behaviour as the client-proxy component of a Jitsi Meet install, so web clients can keep
-- sending their conference requests to focus.<domain>:
--
--   plugin_paths = { "/usr/local/lib/jicofo-trio/prosody" }   -- the dir holding this file
--   Component "focus.meet.example.com" "client_proxy"
--       target_address = "focus@auth.meet.example.com"
--
-- and in jicofo.conf: jicofo.xmpp.client.client-proxy = "focus.meet.example.com".
--
-- How it works:
--   * A session of the target account announces itself with presence to the component (the focus
--     sends <presence to="focus.meet.example.com"/> after each login). Its unavailable presence,
--     which Prosody also sends when the session ends, withdraws it.
--   * An IQ get/set from anyone else to the component is forwarded to the session that announced
--     itself last, from <component>/<sender's full JID>: the resource carries the real sender.
--   * The target's answer (result or error), addressed to <component>/<client JID>, is relayed to
--     that client, from the component.
--   * With no target session online, the client gets service-unavailable at once.

local jid = require "util.jid";
local st = require "util.stanza";

local jid_bare, jid_split, jid_prep = jid.bare, jid.split, jid.prep;

local full_sessions = prosody.full_sessions;
local bare_sessions = prosody.bare_sessions;
local hosts = prosody.hosts;

local component = module.host;

local target = jid_prep(module:get_option_string("target_address"));
if not target then
	module:log("error", "target_address is missing or not a valid JID; not relaying anything");
	error("client_proxy on " .. component .. " needs target_address");
end
local target_bare = jid_bare(target);
local target_is_full = target ~= target_bare;
local _, target_host = jid_split(target);

-- Full JIDs of the target's sessions that announced themselves, oldest first.
local online = {};

local function is_target(from)
	if from == nil then return false; end
	if target_is_full then return from == target; end
	return jid_bare(from) == target_bare and from ~= target_bare;
end

local function remove(full)
	for i = #online, 1, -1 do
		if online[i] == full then
			table.remove(online, i);
			module:log("info", "%s is no longer available (%d online)", full, #online);
		end
	end
end

local function add(full)
	for i = #online, 1, -1 do
		if online[i] == full then table.remove(online, i); end
	end
	table.insert(online, full);
	module:log("info", "%s is available (%d online)", full, #online);
end

-- A session of a local account that vanished without a word (should not happen: Prosody sends
-- the unavailable presence of directed presence when a session ends) is dropped here.
local function still_there(full)
	local host = hosts[target_host];
	if host == nil or host.type ~= "local" then
		return true; -- a remote account: nothing to check against
	end
	return full_sessions[full] ~= nil;
end

local function pick()
	for i = #online, 1, -1 do
		local full = online[i];
		if still_there(full) then
			return full;
		end
		module:log("warn", "%s has gone without unavailable presence; forgetting it", full);
		table.remove(online, i);
	end
	return nil;
end

-- After a reload of this module: sessions that had already announced themselves.
local function recover()
	local user = bare_sessions[target_bare];
	if user == nil or user.sessions == nil then return; end
	for _, session in pairs(user.sessions) do
		local full = session.full_jid;
		if full and is_target(full) and session.directed and session.directed[component] then
			add(full);
		end
	end
end

local function on_presence(event)
	local stanza = event.stanza;
	local from = stanza.attr.from;
	if not is_target(from) then
		return true; -- presence of others means nothing here
	end
	local kind = stanza.attr.type;
	if kind == nil then
		add(from);
	elseif kind == "unavailable" or kind == "error" then
		remove(from);
	end
	return true;
end

-- An answer of the target, addressed to <component>/<client JID>: relayed to the client.
local function relay_answer(event, client)
	local stanza = event.stanza;
	local kind = stanza.attr.type;
	if not is_target(stanza.attr.from) or (kind ~= "result" and kind ~= "error") then
		if kind == "get" or kind == "set" then
			event.origin.send(st.error_reply(stanza, "cancel", "service-unavailable"));
		end
		return true;
	end
	local relayed = st.clone(stanza);
	relayed.attr.from = component;
	relayed.attr.to = client;
	module:send(relayed);
	return true;
end

-- A request of a client to the component: forwarded to the target.
local function forward_request(event)
	local origin, stanza = event.origin, event.stanza;
	local kind = stanza.attr.type;
	if kind ~= "get" and kind ~= "set" then
		return true; -- results and errors for the component itself: nothing asked, nothing to do
	end
	local from = stanza.attr.from;
	if from == nil then
		origin.send(st.error_reply(stanza, "modify", "bad-request", "no sender"));
		return true;
	end
	if is_target(from) then
		-- The target talking to the proxy itself: only pings are answered (a round trip after
		-- its presence tells it that the proxy knows it is online).
		if stanza.tags[1] and stanza.tags[1].attr.xmlns == "urn:xmpp:ping" then
			origin.send(st.reply(stanza));
		else
			origin.send(st.error_reply(stanza, "cancel", "service-unavailable"));
		end
		return true;
	end
	local to = pick();
	if to == nil then
		module:log("debug", "no %s online for an IQ from %s", target, from);
		origin.send(st.error_reply(stanza, "cancel", "service-unavailable",
			"the service behind " .. component .. " is not available"));
		return true;
	end
	local forwarded = st.clone(stanza);
	forwarded.attr.from = component .. "/" .. from;
	forwarded.attr.to = to;
	module:log("debug", "IQ %s from %s forwarded to %s", tostring(stanza.attr.id), from, to);
	module:send(forwarded);
	return true;
end

-- Prosody fires iq/host for both <component> and <component>/<resource> (no node part).
local function on_iq(event)
	local _, _, client = jid_split(event.stanza.attr.to);
	if client ~= nil then
		return relay_answer(event, client);
	end
	return forward_request(event);
end

module:hook("presence/host", on_presence);
-- Above mod_iq, which a component inherits and which would answer service-unavailable.
module:hook("iq/host", on_iq, 10);

recover();
module:log("info", "relaying IQs to %s", target);
