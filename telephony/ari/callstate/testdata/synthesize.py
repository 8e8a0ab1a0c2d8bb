#!/usr/bin/env python3
"""Writes the synth-*.jsonl scenarios of this folder.

These streams are SYNTHESIZED, not recorded: each event copies the shape of
the real Asterisk 20 events in ../../testdata/*.jsonl (same fields, same
chatter: ChannelVarset, ChannelDialplan, DeviceStateChanged, bridges) and
follows the order app_dial, app_queue and the bridging core publish them in.
They cover what the two recordings do not: busy agents, no answer, queues,
transfers, withheld callers, simultaneous callers, unknown event types and
reconnects.

Lines of type "ScreenpopTestResync" are no ARI event: they stand for a
reconnect, and carry the channel list GET /ari/channels would return then.

Run from this folder: python3 synthesize.py (then review the .golden files
with go test -run TestScenarios -update).
"""

import copy
import json
from datetime import datetime, timedelta, timezone

ASTERISK_ID = "02:fc:00:00:00:01"
APP = "screenpop"
JANE = ("Jane Doe", "+4930123456")
MAX = ("Max Mustermann", "+4940111222")

AGENT_NAMES = {"1001": "Alice Agent", "1002": "Bob Agent", "1003": "Carol Agent", "1004": "Dan Agent", "1005": "Eve Agent"}


class PBX:
    def __init__(self, epoch, chanvars=True):
        """chanvars: ari.conf lists CALLERID(pres) in channelvars (as the
        shipped configs/asterisk/ari.conf does), so every snapshot carries the
        channel's presentation. False: a stock PBX, whose snapshots carry
        none."""
        self.epoch = epoch
        self.chanvars = chanvars
        self.uid = 0
        self.seq = 0
        self.bridges = 0
        self.t = datetime(2026, 11, 23, 10, 0, 0, tzinfo=timezone.utc) + timedelta(seconds=epoch % 3600)
        self.out = []

    # --- plumbing -------------------------------------------------------
    def ts(self):
        self.t += timedelta(milliseconds=1)
        return self.t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03d+0000" % (self.t.microsecond // 1000)

    def wait(self, seconds):
        self.t += timedelta(seconds=seconds)

    def emit(self, ev):
        self.out.append(ev)

    def ev(self, typ, **fields):
        e = {"type": typ, "timestamp": self.ts()}
        e.update(fields)
        e["asterisk_id"] = ASTERISK_ID
        e["application"] = APP
        self.emit(e)
        return e

    def snap(self, ch):
        return copy.deepcopy({k: v for k, v in ch.items() if not k.startswith("_")})

    def chan_ev(self, typ, ch, **fields):
        return self.ev(typ, channel=self.snap(ch), **fields)

    def new_channel(self, name, state, caller, context, exten):
        ch = {
            "id": "%d.%d" % (self.epoch, self.uid),
            "name": "%s-%08x" % (name, self.seq),
            "state": state,
            "protocol_id": "",
            "caller": {"name": caller[0], "number": caller[1]},
            "connected": {"name": "", "number": ""},
            "accountcode": "",
            "dialplan": {"context": context, "exten": exten, "priority": 1, "app_name": "", "app_data": ""},
            "creationtime": self.ts(),
            "language": "en",
        }
        if self.chanvars:
            ch["channelvars"] = {"CALLERID(pres)": "allowed_not_screened"}
        self.uid += 1
        self.seq += 1
        return ch

    def varset(self, ch, var, value):
        self.ev("ChannelVarset", variable=var, value=value, channel=self.snap(ch))

    def dialplan(self, ch, app, data, context=None, exten=None):
        if context:
            ch["dialplan"]["context"] = context
        if exten:
            ch["dialplan"]["exten"] = exten
            ch["dialplan"]["priority"] = 1
        else:
            ch["dialplan"]["priority"] += 1
        ch["dialplan"]["app_name"] = app
        ch["dialplan"]["app_data"] = data
        self.chan_ev("ChannelDialplan", ch, dialplan_app=app, dialplan_app_data=data)

    def state(self, ch, state):
        ch["state"] = state
        self.chan_ev("ChannelStateChange", ch)

    def device(self, name, state):
        self.emit({"type": "DeviceStateChanged", "application": APP, "timestamp": self.ts(),
                   "device_state": {"name": name, "state": state}, "asterisk_id": ASTERISK_ID})

    def hangup_request(self, ch, cause=16, soft=False):
        fields = {"cause": cause}
        if soft:
            fields["soft"] = True
        self.chan_ev("ChannelHangupRequest", ch, **fields)

    def destroyed(self, ch, cause, txt):
        self.chan_ev("ChannelDestroyed", ch, cause=cause, cause_txt=txt)

    def dial(self, caller, peer, status, dialstring=""):
        self.ev("Dial", dialstatus=status, forward="", dialstring=dialstring,
                caller=self.snap(caller), peer=self.snap(peer))

    def bridge(self, channels):
        self.bridges += 1
        return {"id": "b%07d-%d" % (self.bridges, self.epoch), "technology": "simple_bridge", "bridge_type": "mixing",
                "bridge_class": "basic", "creator": "", "name": "", "channels": list(channels),
                "creationtime": self.ts(), "video_mode": "none"}

    def enter(self, br, ch):
        br["channels"].append(ch["id"])
        self.ev("ChannelEnteredBridge", bridge=copy.deepcopy(br), channel=self.snap(ch))

    def leave(self, br, ch):
        br["channels"].remove(ch["id"])
        self.ev("ChannelLeftBridge", bridge=copy.deepcopy(br), channel=self.snap(ch))

    def resync(self, channels):
        self.emit({"type": "ScreenpopTestResync", "channels": [self.snap(c) for c in channels]})

    def write(self, path):
        with open(path, "w") as f:
            for e in self.out:
                f.write(json.dumps(e, separators=(",", ":")) + "\n")

    # --- what the example dialplan does ---------------------------------
    def inbound(self, caller, did="100", pres="allowed_not_screened", pres_var=False, call_var=False):
        ch = self.new_channel("PJSIP/carrier", "Ring", caller, "from-carrier", did)
        # The caller leg's very first snapshot still says allowed: the
        # presentation from the SIP headers is applied after ChannelCreated.
        self.chan_ev("ChannelCreated", ch)
        if self.chanvars:
            ch["channelvars"]["CALLERID(pres)"] = pres
        ch["protocol_id"] = "%d-1143@127.0.0.2" % self.uid
        self.varset(ch, "SIPDOMAIN", "127.0.0.1")
        self.dialplan(ch, "NoOp", 'Inbound "%s" <%s> pres=%s to DID %s' % (caller[0], caller[1], pres, did))
        if pres_var:
            self.dialplan(ch, "Set", "__SCREENPOP_PRES=%s" % pres)
            self.varset(ch, "__SCREENPOP_PRES", pres)
        if call_var:
            self.dialplan(ch, "Set", "__SCREENPOP_CALL=%s" % ch["id"])
            self.varset(ch, "__SCREENPOP_CALL", ch["id"])
            ch.setdefault("channelvars", {})["SCREENPOP_CALL"] = ch["id"]
        self.dialplan(ch, "Set", "__SCREENPOP_DID=%s" % did)
        self.varset(ch, "__SCREENPOP_DID", did)
        ch["_did"] = did
        return ch

    def dial_start(self, inbound, targets, timeout=30):
        """Dial(PJSIP/a&PJSIP/b,timeout): creates every peer, then the begins."""
        data = "&".join("PJSIP/" + a for a in targets) + ",%d" % timeout
        self.dialplan(inbound, "Dial", data)
        for var in ("DIALSTATUS", "DIALEDPEERNUMBER", "DIALEDPEERNAME", "ANSWEREDTIME", "DIALEDTIME", "RINGTIME"):
            self.varset(inbound, var, "")
        return self.create_peers(inbound, targets)

    def create_peers(self, caller, targets):
        peers = []
        for a in targets:
            p = self.new_channel("PJSIP/" + a, "Down", (AGENT_NAMES.get(a, ""), a), "agents", "s")
            self.chan_ev("ChannelCreated", p)
            p["protocol_id"] = "%08x-pid" % self.uid
            self.varset(p, "DIALEDPEERNUMBER", a)
            if "_did" in caller:
                p["_did"] = caller["_did"]
                self.varset(p, "__SCREENPOP_DID", caller["_did"])
            if "SCREENPOP_CALL" in caller.get("channelvars", {}):
                p.setdefault("channelvars", {})["SCREENPOP_CALL"] = caller["channelvars"]["SCREENPOP_CALL"]
                self.varset(p, "__SCREENPOP_CALL", caller["channelvars"]["SCREENPOP_CALL"])
            p["dialplan"]["exten"] = caller["dialplan"]["exten"]
            p["dialplan"]["app_name"] = "AppDial"
            p["dialplan"]["app_data"] = "(Outgoing Line)"
            self.chan_ev("ChannelDialplan", p, dialplan_app="AppDial", dialplan_app_data="(Outgoing Line)")
            p["connected"] = copy.deepcopy(caller["caller"])
            self.chan_ev("ChannelConnectedLine", p)
            peers.append(p)
        for p in peers:
            self.dial(caller, p, "", dialstring=p["caller"]["number"])
        return peers

    def ring(self, caller, peer):
        peer["state"] = "Ringing"
        self.chan_ev("ChannelStateChange", peer)
        self.device(peer["name"].rsplit("-", 1)[0], "RINGING")
        self.dial(caller, peer, "RINGING")

    def busy(self, caller, peer):
        self.dial(caller, peer, "BUSY")
        self.destroyed(peer, 17, "User busy")
        self.device(peer["name"].rsplit("-", 1)[0], "NOT_INUSE")

    def answer(self, caller, peer, others, bridge=True):
        """The peer picks up: app_dial cancels the others, then reports ANSWER."""
        self.state(peer, "Up")
        caller["connected"] = copy.deepcopy(peer["caller"])
        self.chan_ev("ChannelConnectedLine", caller)
        for o in others:
            self.dial(caller, o, "CANCEL")
        self.varset(caller, "DIALSTATUS", "ANSWER")
        self.varset(caller, "DIALEDPEERNAME", peer["name"])
        self.dial(caller, peer, "ANSWER")
        if caller["state"] != "Up":
            self.state(caller, "Up")
        for o in others:
            self.destroyed(o, 26, "Answered elsewhere")
        if not bridge:
            return None
        br = self.bridge([])
        self.ev("BridgeCreated", bridge=copy.deepcopy(br))
        self.enter(br, peer)
        self.enter(br, caller)
        self.varset(caller, "BRIDGEPEER", peer["name"])
        self.varset(peer, "BRIDGEPEER", caller["name"])
        return br

    def caller_hangs_up_talking(self, inbound, peer, br):
        self.hangup_request(inbound, 16)
        self.leave(br, inbound)
        self.varset(inbound, "DIALSTATUS", "ANSWER")
        self.hangup_request(inbound, 16, soft=True)
        self.leave(br, peer)
        self.ev("BridgeDestroyed", bridge=copy.deepcopy(br))
        self.destroyed(peer, 16, "Normal Clearing")
        self.destroyed(inbound, 16, "Normal Clearing")

    def caller_gives_up(self, inbound, ringing):
        self.hangup_request(inbound, 127)
        for p in ringing:
            self.dial(inbound, p, "CANCEL")
        for p in ringing:
            self.destroyed(p, 127, "Interworking, unspecified")
        self.varset(inbound, "DIALSTATUS", "CANCEL")
        self.hangup_request(inbound, 16, soft=True)
        self.destroyed(inbound, 127, "Interworking, unspecified")

    def dialplan_hangs_up(self, inbound, status):
        self.varset(inbound, "DIALSTATUS", status)
        self.dialplan(inbound, "Hangup", "")
        self.hangup_request(inbound, 16, soft=True)
        self.destroyed(inbound, 16, "Normal Clearing")


def ring_all(p, inbound, agents):
    peers = p.dial_start(inbound, agents)
    for x in peers:
        p.ring(inbound, x)
    return peers


# --- scenarios ---------------------------------------------------------

def busy_one_of_three():
    p = PBX(1795431000)
    a = p.inbound(JANE)
    p1, p2, p3 = p.dial_start(a, ["1001", "1002", "1003"])
    p.busy(a, p1)  # 486 Busy Here from 1001
    p.ring(a, p2)
    p.ring(a, p3)
    p.wait(4)
    br = p.answer(a, p3, [p2])
    p.wait(30)
    p.caller_hangs_up_talking(a, p3, br)
    return p


def all_busy():
    p = PBX(1795432000)
    a = p.inbound(JANE)
    peers = p.dial_start(a, ["1001", "1002", "1003"])
    for x in peers:
        p.busy(a, x)
    p.dialplan_hangs_up(a, "BUSY")
    return p


def no_answer():
    p = PBX(1795433000)
    a = p.inbound(JANE)
    peers = p.dial_start(a, ["1001", "1002"], timeout=20)
    for x in peers:
        p.ring(a, x)
    p.wait(20)
    for x in peers:
        p.dial(a, x, "NOANSWER")
    for x in peers:
        p.destroyed(x, 16, "Normal Clearing")
    p.dialplan_hangs_up(a, "NOANSWER")
    return p


def queue_member(p, inbound, agent):
    """app_queue rings Local/<agent>@agents: the ;1 half is the queue's
    peer, the ;2 half runs Dial(PJSIP/<agent>) in the agents context."""
    n = p.seq
    who = (inbound["caller"]["name"], inbound["caller"]["number"])
    l1 = p.new_channel("Local/%s@agents" % agent, "Down", who, "agents", agent)
    l1["name"] = "Local/%s@agents-%08x;1" % (agent, n)
    l2 = p.new_channel("Local/%s@agents" % agent, "Ring", who, "agents", agent)
    l2["name"] = "Local/%s@agents-%08x;2" % (agent, n)
    l2["_did"] = inbound["_did"]
    p.chan_ev("ChannelCreated", l1)
    p.chan_ev("ChannelCreated", l2)
    p.varset(l2, "__SCREENPOP_DID", inbound["_did"])
    p.dial(inbound, l1, "", dialstring="%s@agents" % agent)
    p.dialplan(l2, "Dial", "PJSIP/%s,,tT" % agent)
    for var in ("DIALSTATUS", "DIALEDPEERNUMBER", "DIALEDPEERNAME"):
        p.varset(l2, var, "")
    (phone,) = p.create_peers(l2, [agent])
    p.ring(l2, phone)
    l1["state"] = "Ringing"
    p.chan_ev("ChannelStateChange", l1)
    p.dial(inbound, l1, "RINGING")
    return l1, l2, phone


def queue_rotation():
    p = PBX(1795434000)
    a = p.inbound(JANE)
    p.dialplan(a, "Queue", "support,t,,,120")
    p.varset(a, "QUEUESTATUS", "")
    # Member 1 rings out after the member timeout (15 s).
    l1, l2, phone = queue_member(p, a, "1001")
    p.wait(15)
    p.dial(a, l1, "NOANSWER")
    p.hangup_request(l2, 16, soft=True)
    p.dial(l2, phone, "CANCEL")
    p.destroyed(phone, 16, "Normal Clearing")
    p.varset(l2, "DIALSTATUS", "CANCEL")
    p.destroyed(l2, 16, "Normal Clearing")
    p.destroyed(l1, 16, "Normal Clearing")
    p.device("PJSIP/1001", "NOT_INUSE")
    # retry = 5 s, then member 2, who answers.
    p.wait(5)
    m1, m2, phone2 = queue_member(p, a, "1002")
    p.wait(3)
    p.state(phone2, "Up")
    p.varset(m2, "DIALSTATUS", "ANSWER")
    p.dial(m2, phone2, "ANSWER")
    inner = p.bridge([])
    p.ev("BridgeCreated", bridge=copy.deepcopy(inner))
    p.enter(inner, phone2)
    p.enter(inner, m2)
    p.state(m1, "Up")
    p.dial(a, m1, "ANSWER")
    p.state(a, "Up")
    outer = p.bridge([])
    p.ev("BridgeCreated", bridge=copy.deepcopy(outer))
    p.enter(outer, m1)
    p.enter(outer, a)
    # Local channel optimisation: the phone takes ;1's place next to the
    # caller and the Local pair goes away.
    p.leave(inner, phone2)
    p.enter(outer, phone2)
    p.leave(outer, m1)
    p.leave(inner, m2)
    p.ev("BridgeDestroyed", bridge=copy.deepcopy(inner))
    p.destroyed(m2, 16, "Normal Clearing")
    p.destroyed(m1, 16, "Normal Clearing")
    p.wait(40)
    p.caller_hangs_up_talking(a, phone2, outer)
    return p


def blind_transfer_to_1003(p, a, p2, br, timeout):
    """1002 (leg p2, in bridge br with the caller a) blind-transfers to 1003:
    its phone sends REFER; in a two-party bridge the caller's own channel
    leaves the bridge and runs agents,1003,1, whose Dial rings 1003."""
    p.varset(a, "BLINDTRANSFER", p2["name"])
    p.ev("BridgeBlindTransfer", bridge=copy.deepcopy(br), channel=p.snap(p2), transferee=p.snap(a),
         context="agents", exten="1003", is_external=True, result="Success")
    p.leave(br, p2)
    p.hangup_request(p2, 16, soft=True)
    p.leave(br, a)
    p.ev("BridgeDestroyed", bridge=copy.deepcopy(br))
    p.destroyed(p2, 16, "Normal Clearing")
    p.device("PJSIP/1002", "NOT_INUSE")
    p.dialplan(a, "Dial", "PJSIP/1003,%d" % timeout, context="agents", exten="1003")
    for var in ("DIALSTATUS", "DIALEDPEERNUMBER", "DIALEDPEERNAME"):
        p.varset(a, var, "")
    (q3,) = p.create_peers(a, ["1003"])
    p.ring(a, q3)
    return q3


def blind_transfer():
    p = PBX(1795435000)
    a = p.inbound(JANE)
    p1, p2, p3 = ring_all(p, a, ["1001", "1002", "1003"])
    p.wait(3)
    br = p.answer(a, p2, [p1, p3])
    p.wait(20)
    q3 = blind_transfer_to_1003(p, a, p2, br, timeout=30)
    p.wait(2)
    br2 = p.answer(a, q3, [])
    p.wait(30)
    p.caller_hangs_up_talking(a, q3, br2)
    return p


def attended_transfer(reversed_refer):
    p = PBX(1795436000 if not reversed_refer else 1795436500)
    a = p.inbound(JANE)
    (p2,) = ring_all(p, a, ["1002"])
    p.wait(3)
    br_a = p.answer(a, p2, [])
    p.wait(10)
    # 1002 puts the caller on hold and calls 1003 from the phone.
    p.chan_ev("ChannelHold", p2, musicclass="default")
    b = p.new_channel("PJSIP/1002", "Ring", ("Bob Agent", "1002"), "agents", "1003")
    p.chan_ev("ChannelCreated", b)
    p.dialplan(b, "Dial", "PJSIP/1003,30")
    for var in ("DIALSTATUS", "DIALEDPEERNUMBER", "DIALEDPEERNAME"):
        p.varset(b, var, "")
    (c3,) = p.create_peers(b, ["1003"])
    p.ring(b, c3)
    p.wait(2)
    br_b = p.answer(b, c3, [])
    p.wait(8)
    # 1002 completes the transfer (REFER with Replaces). Phones send it on
    # the caller's dialog or on the consultation dialog; Asterisk then
    # reports the two sides the other way round.
    if not reversed_refer:
        fields = dict(transferer_first_leg=p.snap(p2), transferer_first_leg_bridge=copy.deepcopy(br_a),
                      transferer_second_leg=p.snap(b), transferer_second_leg_bridge=copy.deepcopy(br_b),
                      transferee=p.snap(a), transfer_target=p.snap(c3), destination_bridge=br_a["id"])
    else:
        fields = dict(transferer_first_leg=p.snap(b), transferer_first_leg_bridge=copy.deepcopy(br_b),
                      transferer_second_leg=p.snap(p2), transferer_second_leg_bridge=copy.deepcopy(br_a),
                      transferee=p.snap(c3), transfer_target=p.snap(a), destination_bridge=br_b["id"])
    p.ev("BridgeAttendedTransfer", destination_type="bridge", is_external=True, result="Success", **fields)
    p.leave(br_b, c3)
    p.enter(br_a, c3)
    p.leave(br_a, p2)
    p.leave(br_b, b)
    p.ev("BridgeDestroyed", bridge=copy.deepcopy(br_b))
    p.chan_ev("ChannelUnhold", a)
    p.destroyed(p2, 16, "Normal Clearing")
    p.destroyed(b, 16, "Normal Clearing")
    p.wait(25)
    p.caller_hangs_up_talking(a, c3, br_a)
    return p


def withheld_var():
    """The carrier sends the real number with Privacy: id; the dialplan
    copies CALLERID(pres) into SCREENPOP_PRES before ringing anyone (and
    ari.conf has no channelvars)."""
    p = PBX(1795437000, chanvars=False)
    a = p.inbound(MAX, pres="prohib_passed_screen", pres_var=True)
    (p1,) = ring_all(p, a, ["1001"])
    p.wait(2)
    br = p.answer(a, p1, [])
    p.wait(10)
    p.caller_hangs_up_talking(a, p1, br)
    return p


def withheld_anonymous():
    """The carrier hides the number itself: "anonymous", presentation
    prohibited."""
    p = PBX(1795437500)
    a = p.inbound(("Anonymous", "anonymous"), pres="prohib_passed_screen")
    peers = ring_all(p, a, ["1001", "1002"])
    p.wait(5)
    p.caller_gives_up(a, peers)
    return p


def withheld_callerid_event():
    """The dialplan restricts presentation itself (Set(CALLERID(pres)=prohib)),
    which Asterisk reports as ChannelCallerId."""
    p = PBX(1795437800)
    a = p.inbound(MAX)
    p.dialplan(a, "Set", "CALLERID(pres)=prohib")
    a["channelvars"]["CALLERID(pres)"] = "prohib"
    p.chan_ev("ChannelCallerId", a, caller_presentation=35,
              caller_presentation_txt="Presentation Prohibited, Network Number")
    (p3,) = ring_all(p, a, ["1003"])
    p.wait(2)
    br = p.answer(a, p3, [])
    p.wait(5)
    p.caller_hangs_up_talking(a, p3, br)
    return p


def withheld_channelvars():
    """A withheld number with nothing in the dialplan: CALLERID(pres) in
    ari.conf channelvars alone tells (after the first snapshot, which still
    says allowed)."""
    return withheld_answered(PBX(1795448000))


def withheld_stock_pbx():
    """A withheld number on a stock PBX: no channelvars, no dialplan line,
    so screenpop cannot know the presentation (and by default withholds)."""
    return withheld_answered(PBX(1795448500, chanvars=False))


def withheld_answered(p):
    """Max calls with his number withheld; 1001 answers."""
    a = p.inbound(MAX, pres="prohib_passed_screen")
    (p1,) = ring_all(p, a, ["1001"])
    p.wait(2)
    br = p.answer(a, p1, [])
    p.wait(10)
    p.caller_hangs_up_talking(a, p1, br)
    return p


def anonymous_allowed():
    """The network sent no number but presentation allowed: an unknown
    caller, not a withheld one."""
    p = PBX(1795448800)
    a = p.inbound(("", "anonymous"))
    (p1,) = ring_all(p, a, ["1002"])
    p.wait(3)
    p.caller_gives_up(a, [p1])
    return p


def rang_out_voicemail():
    """Dial(1001&1002,20) times out: every leg ends NOANSWER (cause 0), the
    caller goes on to voicemail, which answers (the caller channel goes Up
    with no agent), and leaves a message."""
    p = PBX(1795446000)
    a = p.inbound(JANE)
    peers = p.dial_start(a, ["1001", "1002"], timeout=20)
    for x in peers:
        p.ring(a, x)
    p.wait(20)
    for x in peers:
        p.dial(a, x, "NOANSWER")
    for x in peers:
        p.destroyed(x, 0, "Unknown")
        p.device(x["name"].rsplit("-", 1)[0], "NOT_INUSE")
    p.varset(a, "DIALSTATUS", "NOANSWER")
    p.dialplan(a, "VoiceMail", "100@default,u")
    p.state(a, "Up")
    p.wait(30)
    p.hangup_request(a, 16)
    p.destroyed(a, 16, "Normal Clearing")
    return p


def resync_blind_transfer():
    """The socket drops while a blind transfer rings at 1003; the reconnect
    finds the caller's channel dialling 1003, who then answers."""
    p = PBX(1795449500)
    a = p.inbound(JANE)
    p1, p2, p3 = ring_all(p, a, ["1001", "1002", "1003"])
    p.wait(3)
    br = p.answer(a, p2, [p1, p3])
    p.wait(20)
    q3 = blind_transfer_to_1003(p, a, p2, br, timeout=30)
    p.resync([a, q3])
    p.wait(2)
    br2 = p.answer(a, q3, [])
    p.wait(10)
    p.caller_hangs_up_talking(a, q3, br2)
    return p


def blind_transfer_unanswered(comes_back):
    """1002 blind-transfers to 1003, whose phone rings out (Dial timeout
    NOANSWER). Then the dialplan either sends the caller to 1003's voicemail,
    where the caller hangs up, or back to 1002, who answers."""
    p = PBX(1795445500 if comes_back else 1795445000)
    a = p.inbound(JANE)
    p1, p2, p3 = ring_all(p, a, ["1001", "1002", "1003"])
    p.wait(3)
    br = p.answer(a, p2, [p1, p3])
    p.wait(20)
    q3 = blind_transfer_to_1003(p, a, p2, br, timeout=20)
    p.wait(20)
    p.dial(a, q3, "NOANSWER")
    p.destroyed(q3, 0, "Unknown")
    p.device("PJSIP/1003", "NOT_INUSE")
    p.varset(a, "DIALSTATUS", "NOANSWER")
    if comes_back:
        p.dialplan(a, "Dial", "PJSIP/1002,20")
        for var in ("DIALSTATUS", "DIALEDPEERNUMBER", "DIALEDPEERNAME"):
            p.varset(a, var, "")
        (r2,) = p.create_peers(a, ["1002"])
        p.ring(a, r2)
        p.wait(2)
        br2 = p.answer(a, r2, [])
        p.wait(10)
        p.caller_hangs_up_talking(a, r2, br2)
    else:
        p.dialplan(a, "VoiceMail", "1003@default,u")
        p.wait(15)
        p.hangup_request(a, 16)
        p.destroyed(a, 16, "Normal Clearing")
    return p


def attended_transfer_local(complete):
    """Asterisk's own attended transfer (features.conf atxfer, *2): 1002's
    leg goes on hold, a Local/1003@agents;1/;2 pair dials 1003. The consult
    legs name the agent, never the customer; ATTENDEDTRANSFER on ;1 names
    1002's channel and CHANNEL(linkedid) ties every leg to the customer's
    channel. complete: 1003 answers and 1002 completes the transfer
    (BridgeAttendedTransfer without transfer_target); else 1002 gives up
    while 1003 still rings and goes back to the caller."""
    p = PBX(1795447000 if complete else 1795447500)
    a = p.inbound(JANE)
    link = a["id"]
    a["channelvars"]["CHANNEL(linkedid)"] = link
    (p2,) = ring_all(p, a, ["1002"])
    p.wait(3)
    br_a = p.answer(a, p2, [])
    p.wait(10)
    p.chan_ev("ChannelHold", p2, musicclass="default")
    n = p.seq
    bob = ("Bob Agent", "1002")
    l1 = p.new_channel("Local/1003@agents", "Down", bob, "agents", "1003")
    l1["name"] = "Local/1003@agents-%08x;1" % n
    l2 = p.new_channel("Local/1003@agents", "Ring", bob, "agents", "1003")
    l2["name"] = "Local/1003@agents-%08x;2" % n
    for ch in (l1, l2):
        ch["channelvars"]["CHANNEL(linkedid)"] = link
    p.chan_ev("ChannelCreated", l1)
    p.chan_ev("ChannelCreated", l2)
    p.varset(l1, "TRANSFERERNAME", p2["name"])
    p.varset(l1, "ATTENDEDTRANSFER", p2["name"])
    p.leave(br_a, p2)
    br_b = p.bridge([])
    p.ev("BridgeCreated", bridge=copy.deepcopy(br_b))
    p.enter(br_b, p2)
    p.dialplan(l2, "Dial", "PJSIP/1003,30")
    for var in ("DIALSTATUS", "DIALEDPEERNUMBER", "DIALEDPEERNAME"):
        p.varset(l2, var, "")
    (c3,) = p.create_peers(l2, ["1003"])
    c3["channelvars"]["CHANNEL(linkedid)"] = link
    p.ring(l2, c3)
    l1["state"] = "Ringing"
    p.chan_ev("ChannelStateChange", l1)
    p.wait(3)
    if not complete:
        p.hangup_request(l1, 16)
        p.dial(l2, c3, "CANCEL")
        p.destroyed(c3, 16, "Normal Clearing")
        p.varset(l2, "DIALSTATUS", "CANCEL")
        p.destroyed(l2, 16, "Normal Clearing")
        p.destroyed(l1, 16, "Normal Clearing")
        p.leave(br_b, p2)
        p.ev("BridgeDestroyed", bridge=copy.deepcopy(br_b))
        p.enter(br_a, p2)
        p.chan_ev("ChannelUnhold", p2)
        p.wait(10)
        p.caller_hangs_up_talking(a, p2, br_a)
        return p
    inner = p.answer(l2, c3, [])
    l1["state"] = "Up"
    p.chan_ev("ChannelStateChange", l1)
    p.enter(br_b, l1)
    p.wait(8)
    p.ev("BridgeAttendedTransfer", destination_type="bridge", is_external=False, result="Success",
         transferer_first_leg=p.snap(p2), transferer_first_leg_bridge=copy.deepcopy(br_a),
         transferer_second_leg=p.snap(p2), transferer_second_leg_bridge=copy.deepcopy(br_b),
         transferee=p.snap(a), destination_bridge=br_a["id"])
    p.leave(br_b, l1)
    p.enter(br_a, l1)
    p.leave(br_b, p2)
    p.ev("BridgeDestroyed", bridge=copy.deepcopy(br_b))
    p.hangup_request(p2, 16, soft=True)
    p.destroyed(p2, 16, "Normal Clearing")
    # Local channel optimisation: 1003's phone takes ;1's place.
    p.leave(inner, c3)
    p.enter(br_a, c3)
    p.leave(br_a, l1)
    p.leave(inner, l2)
    p.ev("BridgeDestroyed", bridge=copy.deepcopy(inner))
    p.destroyed(l2, 16, "Normal Clearing")
    p.destroyed(l1, 16, "Normal Clearing")
    p.wait(20)
    p.caller_hangs_up_talking(a, c3, br_a)
    return p


def pbx_restart():
    """Two calls, one answered and one ringing, when the PBX restarts: the
    socket drops and the reconnect finds a PBX that started anew, with a new
    call already ringing (channel ids from the new uptime)."""
    p = PBX(1795449000)
    a = p.inbound(JANE)
    pa = ring_all(p, a, ["1001", "1002"])
    p.answer(a, pa[1], [pa[0]])
    b = p.inbound(MAX, did="200")
    ring_all(p, b, ["1003"])
    p.wait(40)
    q = PBX(1795449100)
    c = q.new_channel("PJSIP/carrier", "Ring", ("Carla Caller", "+4930222333"), "from-carrier", "100")
    c["dialplan"].update({"priority": 3, "app_name": "Dial", "app_data": "PJSIP/1001,30"})
    r1 = q.new_channel("PJSIP/1001", "Ringing", ("Alice Agent", "1001"), "agents", "100")
    r1["connected"] = {"name": "Carla Caller", "number": "+4930222333"}
    p.emit({"type": "ScreenpopTestResync", "restarted": True, "channels": [q.snap(c), q.snap(r1)]})
    p.wait(3)
    p.caller_gives_up(c, [r1])
    return p


def two_callers():
    p = PBX(1795438000)
    a = p.inbound(JANE)
    b = p.inbound(MAX, did="200")
    # Both Dials start before either has reported all its begins.
    p.dialplan(a, "Dial", "PJSIP/1001&PJSIP/1002,30")
    p.dialplan(b, "Dial", "PJSIP/1003,30")
    a1 = p.new_channel("PJSIP/1001", "Down", ("Alice Agent", "1001"), "agents", "s")
    a2 = p.new_channel("PJSIP/1002", "Down", ("Bob Agent", "1002"), "agents", "s")
    b3 = p.new_channel("PJSIP/1003", "Down", ("Carol Agent", "1003"), "agents", "s")
    for x, owner in ((a1, a), (b3, b), (a2, a)):
        p.chan_ev("ChannelCreated", x)
        x["connected"] = copy.deepcopy(owner["caller"])
        p.chan_ev("ChannelConnectedLine", x)
    p.dial(a, a1, "", "1001")
    p.dial(b, b3, "", "1003")
    p.state(a1, "Ringing")
    p.dial(a, a2, "", "1002")
    p.ring(b, b3)
    p.ring(a, a1)
    p.ring(a, a2)
    p.wait(2)
    br = p.answer(a, a1, [a2])
    p.wait(3)
    p.caller_gives_up(b, [b3])
    p.wait(20)
    p.caller_hangs_up_talking(a, a1, br)
    return p


def unknown_events():
    """answered.jsonl's call with events the tracker has no use for, and
    types ari/v5 v5.3.1 cannot decode (newer Asterisk versions send them)."""
    p = PBX(1795439000)
    a = p.inbound(JANE)
    p.emit({"type": "ChannelToneDetected", "timestamp": p.ts(), "channel": p.snap(a),
            "asterisk_id": ASTERISK_ID, "application": APP})
    peers = ring_all(p, a, ["1001", "1002", "1003"])
    p.ev("EndpointStateChange", endpoint={"technology": "PJSIP", "resource": "1001", "state": "online",
                                          "channel_ids": [peers[0]["id"]]})
    p.ev("PeerStatusChange", endpoint={"technology": "PJSIP", "resource": "1003", "state": "online",
                                       "channel_ids": []}, peer={"peer_status": "Reachable"})
    p.wait(3)
    br = p.answer(a, peers[1], [peers[0], peers[2]])
    p.chan_ev("ChannelTalkingStarted", a)
    p.chan_ev("ChannelDtmfReceived", peers[1], digit="5", duration_ms=120)
    p.chan_ev("ChannelUserevent", a, eventname="crm", userevent={"ticket": "42"})
    p.emit({"type": "ChannelTransfer", "timestamp": p.ts(), "state": "channel_declined",
            "refer_to": {"requested_destination": {"exten": "1003"}}, "transferer_channel": p.snap(peers[1]),
            "asterisk_id": ASTERISK_ID, "application": APP})
    p.chan_ev("ChannelHold", peers[1])
    p.chan_ev("ChannelUnhold", peers[1])
    p.chan_ev("ChannelTalkingFinished", a, duration=4200)
    p.wait(6)
    p.caller_hangs_up_talking(a, peers[1], br)
    return p


def resync_ended():
    """Call 1 is answered and call 2 rings when the socket drops; both end
    while screenpop is disconnected."""
    p = PBX(1795440000)
    a = p.inbound(JANE)
    pa = ring_all(p, a, ["1001", "1002"])
    p.answer(a, pa[1], [pa[0]])
    b = p.inbound(MAX, did="200")
    ring_all(p, b, ["1001", "1003"])
    p.wait(60)
    p.resync([])
    return p


def resync_started():
    """A call begins and rings while screenpop is disconnected; the channel
    list also holds two agents talking to each other and an agent's
    outgoing call through the trunk."""
    p = PBX(1795441000)
    x4 = p.new_channel("PJSIP/1004", "Up", ("Dan Agent", "1004"), "agents", "1005")
    x5 = p.new_channel("PJSIP/1005", "Up", ("Eve Agent", "1005"), "agents", "s")
    x4["connected"] = {"name": "Eve Agent", "number": "1005"}
    x5["connected"] = {"name": "Dan Agent", "number": "1004"}
    out1 = p.new_channel("PJSIP/1001", "Up", ("Alice Agent", "1001"), "agents", "+4989000111")
    trunk = p.new_channel("PJSIP/carrier", "Up", ("", "+4930100"), "from-carrier", "s")
    out1["connected"] = {"name": "", "number": "+4989000111"}
    trunk["connected"] = {"name": "Alice Agent", "number": "1001"}
    a = p.new_channel("PJSIP/carrier", "Ring", JANE, "from-carrier", "100")
    a["dialplan"].update({"priority": 3, "app_name": "Dial", "app_data": "PJSIP/1002&PJSIP/1003,30"})
    r2 = p.new_channel("PJSIP/1002", "Ringing", ("Bob Agent", "1002"), "agents", "100")
    r3 = p.new_channel("PJSIP/1003", "Down", ("Carol Agent", "1003"), "agents", "100")
    for r in (r2, r3):
        r["connected"] = {"name": JANE[0], "number": JANE[1]}
    p.resync([x4, x5, out1, trunk, a, r2, r3])
    # Events flow again.
    p.ring(a, r3)
    p.wait(2)
    br = p.answer(a, r3, [r2])
    p.wait(10)
    p.caller_hangs_up_talking(a, r3, br)
    p.hangup_request(trunk, 16)
    p.destroyed(out1, 16, "Normal Clearing")
    p.destroyed(trunk, 16, "Normal Clearing")
    p.hangup_request(x4, 16)
    p.destroyed(x5, 16, "Normal Clearing")
    p.destroyed(x4, 16, "Normal Clearing")
    return p


def resync_channelvars():
    """Two anonymous callers start while disconnected. Their numbers are
    alike, so only SCREENPOP_CALL (ari.conf channelvars) tells whose agent
    rings for whom."""
    p = PBX(1795442000)
    anon = ("Anonymous", "anonymous")
    a = p.new_channel("PJSIP/carrier", "Ring", anon, "from-carrier", "100")
    b = p.new_channel("PJSIP/carrier", "Ring", anon, "from-carrier", "200")
    a["channelvars"] = {"SCREENPOP_CALL": a["id"], "SCREENPOP_PRES": "allowed_not_screened", "SCREENPOP_DID": "100"}
    b["channelvars"] = {"SCREENPOP_CALL": b["id"], "SCREENPOP_PRES": "allowed_not_screened", "SCREENPOP_DID": "200"}
    legs = []
    for owner, agent in ((a, "1001"), (a, "1002"), (b, "1003")):
        r = p.new_channel("PJSIP/" + agent, "Ringing", (AGENT_NAMES[agent], agent), "agents", owner["dialplan"]["exten"])
        r["connected"] = copy.deepcopy(owner["caller"])
        r["channelvars"] = {"SCREENPOP_CALL": owner["id"], "SCREENPOP_PRES": "allowed_not_screened",
                            "SCREENPOP_DID": owner["channelvars"]["SCREENPOP_DID"]}
        legs.append(r)
    p.resync([a, b] + legs)
    p.wait(2)
    br = p.answer(b, legs[2], [])
    p.caller_gives_up(a, legs[:2])
    p.wait(5)
    p.caller_hangs_up_talking(b, legs[2], br)
    return p


def resync_answered():
    """What a reconnect finds for calls that were known before:
    A rang and was answered by 1002 meanwhile; B was answered before and
    still talks; C still rings at the same agent; D was answered by 1001 and
    blind-transferred to 1004 meanwhile."""
    p = PBX(1795443000)
    a = p.inbound(JANE)
    pa = ring_all(p, a, ["1001", "1002", "1003"])
    b = p.inbound(MAX, did="200")
    (pb,) = ring_all(p, b, ["1005"])
    br_b = p.answer(b, pb, [])
    c = p.inbound(("Carla Caller", "+4930222333"), did="300")
    (pc,) = ring_all(p, c, ["1003"])
    d = p.inbound(("Dora Caller", "+4930444555"), did="400")
    (pd,) = ring_all(p, d, ["1001"])
    br_d = p.answer(d, pd, [])
    # -- disconnected: A answered by 1002 (1001 and 1003 gone), D moved to 1004.
    p.wait(30)
    a["state"] = "Up"
    pa[1]["state"] = "Up"
    d4 = p.new_channel("PJSIP/1004", "Up", ("Dan Agent", "1004"), "agents", "1004")
    d4["connected"] = copy.deepcopy(d["caller"])
    p.resync([a, pa[1], b, pb, c, pc, d, d4])
    # -- connected again
    p.resync([a, pa[1], b, pb, c, pc, d, d4])  # a second reconnect changes nothing but repeats
    p.wait(5)
    p.hangup_request(a, 16)
    p.destroyed(pa[1], 16, "Normal Clearing")
    p.destroyed(a, 16, "Normal Clearing")
    p.caller_hangs_up_talking(b, pb, br_b)
    p.caller_gives_up(c, [pc])
    p.hangup_request(d, 16)
    p.destroyed(d4, 16, "Normal Clearing")
    p.destroyed(d, 16, "Normal Clearing")
    return p


def agents_call_out():
    """No customer call: agent 1001 calls a customer through the trunk (the
    trunk channel is created in from-carrier, like a caller's) and agent
    1004 calls agent 1005."""
    p = PBX(1795444000)
    o = p.new_channel("PJSIP/1001", "Ring", ("Alice Agent", "1001"), "agents", "+4989000111")
    p.chan_ev("ChannelCreated", o)
    p.dialplan(o, "Dial", "PJSIP/+4989000111@carrier,60")
    t = p.new_channel("PJSIP/carrier", "Down", ("", "+4930100"), "from-carrier", "s")
    p.chan_ev("ChannelCreated", t)
    p.dial(o, t, "", "+4989000111@carrier")
    p.dial(o, t, "PROGRESS")
    br = p.answer(o, t, [])
    i = p.new_channel("PJSIP/1004", "Ring", ("Dan Agent", "1004"), "agents", "1005")
    p.chan_ev("ChannelCreated", i)
    (j,) = p.dial_start(i, ["1005"])
    p.ring(i, j)
    br2 = p.answer(i, j, [])
    p.wait(30)
    p.caller_hangs_up_talking(o, t, br)
    p.caller_hangs_up_talking(i, j, br2)
    return p


SCENARIOS = {
    "synth-agents-call-out": agents_call_out,
    "synth-busy-one-of-three": busy_one_of_three,
    "synth-all-busy": all_busy,
    "synth-no-answer": no_answer,
    "synth-queue-rotation": queue_rotation,
    "synth-blind-transfer": blind_transfer,
    "synth-attended-transfer": lambda: attended_transfer(False),
    "synth-attended-transfer-reversed": lambda: attended_transfer(True),
    "synth-withheld-var": withheld_var,
    "synth-withheld-anonymous": withheld_anonymous,
    "synth-withheld-callerid-event": withheld_callerid_event,
    "synth-two-callers": two_callers,
    "synth-unknown-events": unknown_events,
    "synth-resync-ended": resync_ended,
    "synth-resync-started": resync_started,
    "synth-resync-channelvars": resync_channelvars,
    "synth-resync-answered": resync_answered,
    "synth-withheld-channelvars": withheld_channelvars,
    "synth-withheld-stock-pbx": withheld_stock_pbx,
    "synth-anonymous-allowed": anonymous_allowed,
    "synth-rang-out-voicemail": rang_out_voicemail,
    "synth-blind-transfer-unanswered": lambda: blind_transfer_unanswered(False),
    "synth-blind-transfer-comes-back": lambda: blind_transfer_unanswered(True),
    "synth-attended-transfer-local": lambda: attended_transfer_local(True),
    "synth-attended-transfer-local-abort": lambda: attended_transfer_local(False),
    "synth-pbx-restart": pbx_restart,
    "synth-resync-blind-transfer": resync_blind_transfer,
}

if __name__ == "__main__":
    for name, build in SCENARIOS.items():
        build().write(name + ".jsonl")
