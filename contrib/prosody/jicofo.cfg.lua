-- The Prosody settings a single-server Jitsi Meet install (meet.example.com) needs for jicofo-trio.
--
-- These are the focus's parts of the host file the jitsi-meet Debian package writes
-- (/etc/prosody/conf.avail/meet.example.com.cfg.lua); a fresh install already has most of them.
-- Compare, add what is missing, and choose how focus.<domain> is served: here a plain XEP-0114
-- component served by this focus; or, as upstream, a "client_proxy" component (see the end of this
-- file and the README's "Prosody settings"). Replace meet.example.com everywhere, and the secrets. Then:
--
--   prosodyctl register focus auth.meet.example.com 'the focus password'   # jicofo.xmpp.client.password
--   prosodyctl register jvb auth.meet.example.com 'the bridge password'    # the videobridge's account
--   systemctl restart prosody
--
-- The matching jicofo.conf is conf/jicofo.conf in this repository.

-- The focus's component (focus.meet.example.com) connects here, over loopback only.
component_ports = { 5347 }
component_interfaces = { "127.0.0.1" }

-- Web clients: anonymous users on the main domain, over BOSH or WebSocket (behind nginx).
-- For a secure domain, hosts log in here instead (authentication = "internal_hashed") and guests use
-- an anonymous VirtualHost "guest.meet.example.com"; see the README's "Authentication".
VirtualHost "meet.example.com"
    authentication = "jitsi-anonymous" -- stock Prosody: "anonymous"
    modules_enabled = {
        "bosh";
        "websocket";
        "smacks";
        "ping"; -- lib-jitsi-meet pings the server before it reports an ICE failure
        -- Jitsi's other plugins (speakerstats, conference_duration, muc_lobby_rooms, ...) as before.
    }
    main_muc = "conference.meet.example.com"
    c2s_require_encryption = false

-- Service accounts: the focus (focus@auth.meet.example.com) and the bridges (jvb@...).
VirtualHost "auth.meet.example.com"
    authentication = "internal_hashed"
    modules_enabled = {
        "smacks";          -- the focus resumes its stream after a network blip (XEP-0198)
        "limits_exception"; -- Jitsi plugin, optional: no rate limits for focus and bridges
    }
    smacks_hibernation_time = 15

-- Conferences. The focus creates every room (restrict_room_creation + admins) and must see and be
-- seen with real JIDs (muc_room_default_public_jids): clients only trust a focus they can identify.
Component "conference.meet.example.com" "muc"
    restrict_room_creation = true
    storage = "memory"
    admins = { "focus@auth.meet.example.com" }
    muc_room_locking = false
    muc_room_default_public_jids = true
    muc_tombstones = false
    modules_enabled = {
        "muc_meeting_id";         -- Jitsi plugin, optional: the meeting id the focus reads from disco
        "muc_password_whitelist"; -- Jitsi plugin, optional: the focus may enter password-protected rooms
        "muc_hide_all";
    }
    muc_password_whitelist = { "focus@auth.meet.example.com" }

-- The bridge brewery (jicofo.bridge.brewery-jid = "JvbBrewery@internal.auth.meet.example.com"):
-- bridges publish their stats here and the focus finds them.
Component "internal.auth.meet.example.com" "muc"
    storage = "memory"
    admins = { "focus@auth.meet.example.com", "jvb@auth.meet.example.com" }
    muc_room_locking = false
    muc_room_default_public_jids = true
    modules_enabled = { "muc_hide_all"; "ping" }

-- Where web clients send their conference requests (config.js hosts.focus, default focus.<domain>).
-- Either the upstream layout, a client proxy relaying to the focus account (Jitsi's plugin, or ours:
-- contrib/prosody/mod_client_proxy.lua in a dir listed in the global plugin_paths), with
-- jicofo.xmpp.client.client-proxy = "focus.meet.example.com" and the component disabled in jicofo.conf:
--     Component "focus.meet.example.com" "client_proxy"
--         target_address = "focus@auth.meet.example.com"
-- or this focus serves the address itself (jicofo.xmpp.component in jicofo.conf, same secret):
Component "focus.meet.example.com"
    component_secret = "change-me-too"

-- Optional: A/V moderation and room metadata. With Jitsi's plugins keep their components
-- (avmoderation./metadata. with "av_moderation_component" / "room_metadata_component"); on a stock
-- Prosody, ours (mod_jicofo_av_moderation.lua, mod_jicofo_room_metadata.lua and
-- jicofo_component.lib.lua from contrib/prosody, in a dir listed in the global plugin_paths).
-- They advertise themselves on meet.example.com's disco#info, where clients and the focus find
-- them; jicofo.xmpp.client.xmpp-domain must be meet.example.com for the focus to look there.
-- Component "avmoderation.meet.example.com" "jicofo_av_moderation"
--     muc_component = "conference.meet.example.com"
-- Component "metadata.meet.example.com" "jicofo_room_metadata"
--     muc_component = "conference.meet.example.com"
