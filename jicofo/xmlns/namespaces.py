"""Namespaces that more than one of the Jingle-family modules (jingle, ice_udp, ssma, colibri2)
use, defined once here so those modules need not import each other for a string."""

NS_RTP = "urn:xmpp:jingle:apps:rtp:1"
NS_JITMEET = "http://jitsi.org/jitmeet"
# Jitsi's Colibri (1) namespace: the bridge's `<web-socket>` in an ICE-UDP transport.
NS_COLIBRI = "http://jitsi.org/protocol/colibri"
NS_COLIBRI2 = "jitsi:colibri2"
