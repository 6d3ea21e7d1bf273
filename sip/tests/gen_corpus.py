# Regenerates tests/corpus/{valid,invalid}: run from sip/tests/corpus with `python3 ../gen_corpus.py`.
# The files are the source of truth; this script only documents how they were written.
import os
SDP = "v=0\no=- 1 1 IN IP4 192.0.2.10\ns=-\nc=IN IP4 192.0.2.10\nt=0 0\nm=audio 20000 RTP/AVP 0 8 101\na=rtpmap:101 telephone-event/8000\n"
def crlf(s): return s.replace("\n", "\r\n")
def msg(head, body="", cl=True, extra=b""):
    body_b = crlf(body).encode()
    h = crlf(head)
    if cl is True:
        h += "Content-Length: %d\r\n" % len(body_b)
    elif cl is not None:
        h += crlf(cl)
    return h.encode() + b"\r\n" + body_b + extra
V = {}
I = {}
V["rfc3261-f1-invite.sip"] = msg("""INVITE sip:bob@biloxi.example.com SIP/2.0
Via: SIP/2.0/TCP client.atlanta.example.com:5060;branch=z9hG4bK74bf9
Max-Forwards: 70
From: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl
To: Bob <sip:bob@biloxi.example.com>
Call-ID: 3848276298220188511@atlanta.example.com
CSeq: 1 INVITE
Contact: <sip:alice@client.atlanta.example.com;transport=tcp>
Content-Type: application/sdp
""", SDP)
V["rfc3261-f9-200ok.sip"] = msg("""SIP/2.0 200 OK
Via: SIP/2.0/TCP ss1.atlanta.example.com:5060;branch=z9hG4bK2d4790.1;received=192.0.2.111
Via: SIP/2.0/TCP client.atlanta.example.com:5060;branch=z9hG4bK74bf9;received=192.0.2.101
Record-Route: <sip:ss1.atlanta.example.com;lr>
From: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl
To: Bob <sip:bob@biloxi.example.com>;tag=314159
Call-ID: 3848276298220188511@atlanta.example.com
CSeq: 2 INVITE
Contact: <sip:bob@client.biloxi.example.com;transport=tcp>
Content-Type: application/sdp
""", SDP)
V["rfc3261-register.sip"] = msg("""REGISTER sip:registrar.biloxi.example.com SIP/2.0
Via: SIP/2.0/UDP bobspc.biloxi.example.com:5060;branch=z9hG4bKnashds7
Max-Forwards: 70
To: Bob <sip:bob@biloxi.example.com>
From: Bob <sip:bob@biloxi.example.com>;tag=456248
Call-ID: 843817637684230@998sdasdh09
CSeq: 1826 REGISTER
Contact: <sip:bob@192.0.2.4>
Expires: 7200
""")
V["rfc3261-bye.sip"] = msg("""BYE sip:alice@pc33.atlanta.example.com SIP/2.0
Via: SIP/2.0/UDP 192.0.2.4;branch=z9hG4bKnashds10
Max-Forwards: 70
From: Bob <sip:bob@biloxi.example.com>;tag=a6c85cf
To: Alice <sip:alice@atlanta.example.com>;tag=1928301774
Call-ID: a84b4c76e66710
CSeq: 231 BYE
""")
# RFC 4475 3.1.1.1 style short torture: unusual spacing, folding, compact forms, escapes.
V["torture-wsinv.sip"] = msg("""INVITE sip:vivekg@chair-dnrc.example.com;unknownparam SIP/2.0
TO :
 sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n
from   : "J Rosenberg \\\\\\""       <sip:jdrosen@example.com>
  ;
  tag = 98asjd8
MaX-fOrWaRdS: 0068
Call-ID: wsinv.ndaksdj@192.0.2.1
Content-Length   : 150
cseq: 0009
  INVITE
Via  : SIP  /   2.0
 /UDP
    192.0.2.2;branch=390skdjuw
s :
NewFangledHeader:   newfangled value
 continued newfangled value
UnknownHeaderWithUnusualValue: ;;,,;;,;
Content-Type: application/sdp
Route:
 <sip:services.example.com;lr;unknownwith=value;unknown-no-value>
v:  SIP  / 2.0  / TCP     spindle.example.com   ;
  branch  =   z9hG4bK9ikj8  ,
 SIP  /    2.0   / UDP  192.168.255.111   ; branch=
 z9hG4bK30239
m:"Quoted string \\"\\"" <sip:jdrosen@example.com> ; newparam =
      newvalue ;
  secondparam ; q = 0.33
""", "v=0\no=mhandley 29739 7272939 IN IP4 192.0.2.3\ns=-\nc=IN IP4 192.0.2.4\nt=0 0\nm=audio 49217 RTP/AVP 0 12\nm=video 3227 RTP/AVP 31\na=rtpmap:31 LPC\n", cl="")
V["torture-intmeth.sip"] = msg("""!interesting-Method0123456789_*+`.%indeed'~ sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com SIP/2.0
Via: SIP/2.0/TCP host1.example.com;branch=z9hG4bK-.!%66*_+`'~
To: "BEL:\\b NUL:\\0 DEL:\\d" <sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*@example.com>
From: token1~` token2'+_ token3*%!.- <sip:mundane@example.com>;fromParam''~+*_!.-%="работающий";tag=_token~1'+`*%!-.
Call-ID: intmeth.word%ZK-!.*_+'@word`~)(><:\\/"][?}{
CSeq: 139122385 !interesting-Method0123456789_*+`.%indeed'~
Max-Forwards: 255
extensionHeader-!.%*+_`'~: ﻿大停電
""")
V["escaped-uris.sip"] = msg("""INVITE sip:sips%3Auser%40example.com@example.net SIP/2.0
To: sip:%75se%72@example.com
From: <sip:I%20have%20spaces@example.net>;tag=938
Max-Forwards: 87
i: esc01.239409asdfakjkn23onasd0-3234
CSeq: 234234 INVITE
Via: SIP/2.0/UDP host5.example.net;branch=z9hG4bKkdjuw
m: <sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31>
""")
V["escaped-null.sip"] = msg("""REGISTER sip:example.com SIP/2.0
To: sip:null-%00-null@example.com
From: sip:null-%00-null@example.com;tag=839923423
Max-Forwards: 70
Call-ID: escnull.39203ndfvkjdasfkq3w4otrq0adsfdfnavd
CSeq: 14398234 REGISTER
Via: SIP/2.0/UDP host5.example.com;branch=z9hG4bKkdjuw
Contact: <sip:%00@host5.example.com>
Contact: <sip:%00%00@host5.example.com>
L:0
""", cl=None)
V["lws-display-name.sip"] = msg("""OPTIONS sip:user@example.com SIP/2.0
To: sip:user@example.com
From: caller<sip:caller@example.com>;tag=323
Max-Forwards: 70
Call-ID: lwsdisp.1234abcd@funky.example.com
CSeq: 60 OPTIONS
Via: SIP/2.0/UDP funky.example.com;branch=z9hG4bKkdjuw
""")
V["semicolon-user.sip"] = msg("""OPTIONS sip:user;par=u%40example.net@example.com SIP/2.0
To: sip:j_user@example.com
From: sip:caller@example.org;tag=33242
Max-Forwards: 3
Call-ID: semiuri.0ha0isndaksdj
CSeq: 8 OPTIONS
Accept: application/sdp, application/pkcs7-mime,
        multipart/mixed, multipart/signed,
        message/sip, message/sipfrag
Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKkdjuw
""")
V["transports.sip"] = msg("""OPTIONS sip:user@example.com SIP/2.0
To: sip:user@example.com
From: <sip:caller@example.com>;tag=323
Max-Forwards: 70
Call-ID: transports.kijh4akdnaqjkwendsasfdj
Accept: application/sdp
CSeq: 60 OPTIONS
Via: SIP/2.0/UDP t1.example.com;branch=z9hG4bKkdjuw
Via: SIP/2.0/SCTP t2.example.com;branch=z9hG4bKklasjdhf
Via: SIP/2.0/TLS t3.example.com;branch=z9hG4bK2980unddj
Via: SIP/2.0/UNKNOWN t4.example.com;branch=z9hG4bKasd0f3en
Via: SIP/2.0/TCP t5.example.com;branch=z9hG4bK0a9idfnee
Via: SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bK56sdasks
""")
V["unusual-reason.sip"] = msg("""SIP/2.0 200 = 2**3 * 5**2 но сто девяносто девять - простое
Via: SIP/2.0/UDP 192.0.2.198;branch=z9hG4bK1324923
Call-ID: unreason.1234ksdfak3j2erwedfsASdf
CSeq: 35 INVITE
From: sip:user@example.com;tag=11141343
To: sip:user@example.edu;tag=2229
Content-Type: application/sdp
Contact: <sip:user@host198.example.com>
""", SDP)
V["empty-reason.sip"] = msg("""SIP/2.0 100 
Via: SIP/2.0/UDP 192.0.2.105;branch=z9hG4bK2398ndaoe
Call-ID: noreason.asndj203insdf99223ndf
CSeq: 35 INVITE
From: <sip:user@example.com>;tag=39ansfi3
To: <sip:user@example.edu>;tag=902jndnke3
""")
V["ipv6-uris.sip"] = msg("""REGISTER sip:[2001:db8::10] SIP/2.0
To: sip:user@example.com
From: sip:user@example.com;tag=81x2
Via: SIP/2.0/UDP [2001:db8::9:1]:5070;branch=z9hG4bKas3-111;received=[2001:db8::9:255]
Call-ID: SSG9559905523997077@hlau_4100
Max-Forwards: 70
Contact: "Caller" <sip:caller@[2001:db8::1]:5080;transport=udp>
CSeq: 98176 REGISTER
""")
V["tel-uris.sip"] = msg("""INVITE tel:+1-201-555-0123;phone-context=example.com SIP/2.0
Via: SIP/2.0/UDP carrier.example.net:5060;branch=z9hG4bKtel1
Max-Forwards: 69
From: <tel:+15550100>;tag=ab12
To: <tel:+1-201-555-0123;phone-context=example.com>
Call-ID: tel-1@carrier.example.net
CSeq: 1 INVITE
P-Asserted-Identity: <tel:+15550100>
Contact: <sip:+15550100@carrier.example.net:5060;user=phone>
Content-Type: application/sdp
""", SDP)
V["compact-forms.sip"] = msg("""INVITE sip:bob@example.com SIP/2.0
v: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKcmp1;rport
f: "Alice" <sip:alice@example.com>;tag=cmp-a
t: <sip:bob@example.com>
i: compact.1@192.0.2.1
CSeq: 4 INVITE
m: <sip:alice@192.0.2.1:5060>
k: 100rel, timer
s: compact test
c: application/sdp
e: identity
u: talk, hold
o: dialog
r: <sip:carol@example.com>
""", SDP, cl=None, extra=b"")
# append compact l: at end manually below
V["two-requests-one-datagram.sip"] = msg("""OPTIONS sip:user@example.com SIP/2.0
To: sip:user@example.com
From: <sip:caller@example.com>;tag=dbl
Max-Forwards: 70
Call-ID: dblreq.0ha0isndaksdj99sdfafnl3lk233412
CSeq: 1 OPTIONS
Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKdblreq1
""", extra=crlf("""BYE sip:user@example.com SIP/2.0
Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKdblreq2
Content-Length: 0

""").encode())
V["leading-crlf-keepalive.sip"] = b"\r\n\r\n" + msg("""OPTIONS sip:ka@example.com SIP/2.0
Via: SIP/2.0/TCP 192.0.2.1;branch=z9hG4bKka
From: <sip:a@example.com>;tag=ka
To: <sip:ka@example.com>
Call-ID: ka-1
CSeq: 1 OPTIONS
""")
V["rfc2543-branchless.sip"] = msg("""INVITE sip:UserB@example.com SIP/2.0
Via: SIP/2.0/UDP iftgw.example.com
From: <sip:+13035551111@ift.client.example.net;user=phone>
Record-Route: <sip:UserB@example.com;maddr=ss1.example.com>
To: sip:+16505552222@ss1.example.net;user=phone
Call-ID: inv2543.1717@ift.client.example.com
CSeq: 56 INVITE
Content-Type: application/sdp
""", SDP)
V["zero-max-forwards.sip"] = msg("""OPTIONS sip:user@example.com SIP/2.0
Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKmf0
Max-Forwards: 0
From: <sip:a@example.com>;tag=mf0
To: <sip:user@example.com>
Call-ID: mf0-1
CSeq: 2147483647 OPTIONS
""")
V["identity-headers.sip"] = msg("""INVITE sip:+15550100@relay.example.com;user=phone SIP/2.0
Via: SIP/2.0/UDP 198.51.100.1:5060;branch=z9hG4bKid1
Max-Forwards: 70
From: "Anonymous" <sip:anonymous@anonymous.invalid>;tag=id1
To: <sip:+15550100@relay.example.com;user=phone>
Call-ID: identity-1@198.51.100.1
CSeq: 10 INVITE
P-Asserted-Identity: "Alice" <sip:+15550111@carrier.example.net;user=phone>, <tel:+15550111>
Privacy: id;header;user
Diversion: <sip:+15550122@carrier.example.net>;reason=unconditional;counter=1;privacy=off
History-Info: <sip:+15550122@carrier.example.net>;index=1,<sip:+15550100@relay.example.com?Reason=SIP%3Bcause%3D302>;index=1.1
Remote-Party-ID: "Alice" <sip:+15550111@carrier.example.net>;party=calling;screen=yes;privacy=full
Reason: Q.850;cause=16;text="Normal call clearing"
Authorization: Digest username="a, b", realm="x", nonce="n", uri="sip:x", response="r"
""")
V["carrier-invite.sip"] = msg("""INVITE sip:+15550100@relay.example.com:5060;user=phone SIP/2.0
Via: SIP/2.0/UDP 203.0.113.10:5060;branch=z9hG4bK-524287-1---8b2c5fa2e0d3c1a4;rport
Via: SIP/2.0/UDP 10.20.30.40:5060;branch=z9hG4bK3f9a7c21b;received=10.20.30.40
Max-Forwards: 68
Record-Route: <sip:203.0.113.10:5060;lr;ftag=as1b2c3d4e>
From: "ALICE SMITH" <sip:+15550111@carrier.example.net;user=phone>;tag=as1b2c3d4e
To: <sip:+15550100@relay.example.com;user=phone>
Call-ID: 6c4b1d0f3a2e7b98c5d41f0e2a3b7c6d@10.20.30.40
CSeq: 102 INVITE
Contact: <sip:+15550111@10.20.30.40:5060;transport=udp>
P-Asserted-Identity: "ALICE SMITH" <sip:+15550111@carrier.example.net;user=phone>
Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, PRACK, UPDATE, INFO, REFER, NOTIFY
Supported: 100rel, timer, replaces
User-Agent: CarrierSBC/4.2
Session-Expires: 1800;refresher=uac
Min-SE: 90
Content-Type: application/sdp
""", """v=0
o=SBC 1643981 1643981 IN IP4 203.0.113.10
s=SIP Call
c=IN IP4 203.0.113.10
t=0 0
m=audio 31644 RTP/AVP 0 8 18 101
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:18 G729/8000
a=fmtp:18 annexb=no
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=ptime:20
a=maxptime:40
a=sendrecv
""")
# ---------- invalid ----------
base = """OPTIONS sip:user@example.com SIP/2.0
Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKbase
Max-Forwards: 70
From: <sip:caller@example.com>;tag=b1
To: <sip:user@example.com>
Call-ID: base-1@example.com
CSeq: 1 OPTIONS
"""
def drop(name): return "".join(l + "\n" for l in base.splitlines() if not l.startswith(name + ":"))
I["content-length-too-big.sip"] = msg(base, cl="Content-Length: 9999\n", body="v=0\n")
I["content-length-negative.sip"] = msg(base, cl="Content-Length: -999\n", body="v=0\n")
I["content-length-multiple.sip"] = msg(base, cl="Content-Length: 4\nl: 5\n", body="v=0\n")
I["content-length-overflow.sip"] = msg(base, cl="Content-Length: 18446744073709551617\n", body="")
I["content-length-huge.sip"] = msg(base, cl="Content-Length: 99999999\n", body="")
for h in ["Via", "From", "To", "Call-ID", "CSeq"]:
    I["missing-%s.sip" % h.lower()] = msg(drop(h))
I["unterminated-quote.sip"] = msg(base.replace("From: <sip:caller@example.com>", 'From: "Mr J. User <sip:caller@example.com>'))
I["unterminated-angle.sip"] = msg(base.replace("To: <sip:user@example.com>", "To: <sip:user@example.com"))
I["cseq-not-numeric.sip"] = msg(base.replace("CSeq: 1 OPTIONS", "CSeq: caller OPTIONS"))
I["cseq-overflow.sip"] = msg(base.replace("CSeq: 1 OPTIONS", "CSeq: 36893488147419103232 OPTIONS"))
I["cseq-method-mismatch.sip"] = msg(base.replace("CSeq: 1 OPTIONS", "CSeq: 1 INVITE"))
I["cseq-missing-method.sip"] = msg(base.replace("CSeq: 1 OPTIONS", "CSeq: 1"))
I["unknown-scheme.sip"] = msg(base.replace("OPTIONS sip:user@example.com", "OPTIONS nobodyknowsthisscheme:totallyopaquecontent"))
I["max-forwards-overflow.sip"] = msg(base.replace("Max-Forwards: 70", "Max-Forwards: 4294967301"))
I["max-forwards-negative.sip"] = msg(base.replace("Max-Forwards: 70", "Max-Forwards: -1"))
I["bad-version.sip"] = msg(base.replace("SIP/2.0\n", "SIP/7.0\n", 1))
I["request-line-spaces.sip"] = msg(base.replace("OPTIONS sip:", "OPTIONS  sip:"))
I["request-line-extra-token.sip"] = msg(base.replace("SIP/2.0\n", "SIP/2.0 extra\n", 1))
I["request-uri-with-spaces.sip"] = msg(base.replace("OPTIONS sip:user@example.com", "OPTIONS sip:user@example.com; lr"))
I["bad-status-code.sip"] = msg("SIP/2.0 1000 Too Big\n" + drop("Max-Forwards").split("\n", 1)[1])
I["bad-via.sip"] = msg(base.replace("SIP/2.0/UDP 192.0.2.1;", "SIP/2.0/UDP ;"))
I["bad-ipv6-request-uri.sip"] = msg(base.replace("sip:user@example.com SIP", "sip:user@[2001:db8::10 SIP"))
I["nul-in-header.sip"] = msg(base.replace("Call-ID: base-1", "Call-ID: base\x00-1"))
I["bad-utf8.sip"] = msg(base).replace(b"base-1@", b"base-\xff\xfe@")
I["header-without-colon.sip"] = msg(base + "NoColonHere\n")
I["unterminated-headers.sip"] = crlf(base).encode()
I["too-many-vias.sip"] = msg(base + "".join("Via: SIP/2.0/UDP h%d.example.com;branch=z9hG4bK%d\n" % (i, i) for i in range(70)))
I["bare-lf.sip"] = msg(base).replace(b"\r\nCall-ID", b"\nCall-ID")
I["call-id-with-space.sip"] = msg(base.replace("Call-ID: base-1@example.com", "Call-ID: base 1@example.com"))
I["duplicate-call-id.sip"] = msg(base + "i: other@example.com\n")
I["continuation-first.sip"] = msg(base.replace("Via:", " Via:", 1))
I["bad-contact.sip"] = msg(base + 'Contact: "unterminated <sip:x@y>\n')
I["bad-from-uri.sip"] = msg(base.replace("From: <sip:caller@example.com>", "From: <sip:caller@>"))
I["empty.sip"] = b""
I["quoted-pair-raw-controls.sip"] = V["torture-intmeth.sip"].replace(b"BEL:\\b NUL:\\0 DEL:\\d", b"BEL:\\\x07 NUL:\\\x00 DEL:\\\x7f")
I["only-crlf.sip"] = b"\r\n\r\n\r\n"
# RFC 4475 §3.1.1.5: '%' that is not an escape, in a method and CSeq.
V["percent-not-escape.sip"] = msg("""RE%47IST%45R sip:registrar.example.com SIP/2.0
To: "%Z%45" <sip:resource@example.com>
From: "%Z%45" <sip:resource@example.com>;tag=f232jadfj23
Call-ID: esc02.asdfnqwo34rq23i34jrjasdcnl23nrlknsdf
Via: SIP/2.0/TCP host.example.com;branch=z9hG4bK209%fzsnel234
CSeq: 29344 RE%47IST%45R
Max-Forwards: 70
Contact: <sip:alias1@host1.example.com>
C%6Fntact: <sip:alias2@host2.example.com>
Contact: <sip:alias3@host3.example.com>
""")
# LWS just inside <...> is tolerated (stricter grammar would say 400).
V["lws-inside-angle-brackets.sip"] = msg("""OPTIONS sip:user@example.org SIP/2.0
Via: SIP/2.0/UDP host4.example.com;branch=z9hG4bKkdju43234
Max-Forwards: 70
From: "Bell, Alexander" <sip:a.g.bell@example.com>;tag=433423
To: "Watson, Thomas" < sip:t.watson@example.org >
Call-ID: badaspec.sdf0234n2nds0a099u23h3hnnw009cdkne3
Accept: application/sdp
CSeq: 3923239 OPTIONS
l: 0
""", cl=None)
V["unknown-uri-schemes.sip"] = msg("""OPTIONS sip:user@example.com SIP/2.0
To: isbn:2983792873
From: <http://www.example.com>;tag=3234233
Call-ID: unksm2.daksdj@hyphenated-host.example.com
CSeq: 234902 OPTIONS
Max-Forwards: 70
Via: SIP/2.0/UDP 192.0.2.21:5060;branch=z9hG4bKkdjuw
Contact: <name:John_Smith>
""")
I["response-cseq-overflow.sip"] = msg("""SIP/2.0 503 Service Unavailable
Via: SIP/2.0/TCP host129.example.com;branch=z9hG4bKzzxdiwo34sw;received=192.0.2.129
To: <sip:user@example.com>
From: <sip:other@example.net>;tag=2easdjfejw
CSeq: 9292394834772304023312 OPTIONS
Call-ID: scalarlg.noase0of0234hn2qofoaf0232aewf2394r
Retry-After: 949302838503028349304023988
Warning: 1812 overture "In Progress"
""")
I["request-uri-in-angles.sip"] = msg(base.replace("OPTIONS sip:user@example.com SIP/2.0", "OPTIONS <sip:user@example.com> SIP/2.0"))
I["request-line-trailing-spaces.sip"] = msg(base.replace("SIP/2.0\n", "SIP/2.0  \n", 1))
I["request-uri-with-headers.sip"] = msg(base.replace("OPTIONS sip:user@example.com", "OPTIONS sip:user@example.com?Route=%3Csip:example.com%3E"))
I["contact-addr-spec-with-headers.sip"] = msg(base + "Contact: sip:user@example.com?Route=%3Csip:sip.example.com%3E\n")
I["spaces-in-addr-spec.sip"] = msg(base.replace("From: <sip:caller@example.com>", "From: \"Bell, Alexander\" <sip:a.g.bell@ bell-tel.com >"))
I["unquoted-display-name-comma.sip"] = msg(base.replace("From: <sip:caller@example.com>", "From: Bell, Alexander <sip:a.g.bell@bell-tel.com>"))
I["atypical-scheme.sip"] = msg(base.replace("OPTIONS sip:user@example.com", "OPTIONS soap.beep://192.0.2.103:3002"))
I["overlarge-status-code.sip"] = msg("SIP/2.0 4294967301 better not break the receiver\n" + drop("Max-Forwards").split("\n", 1)[1])
# RFC 4475 §3.1.1.7 style: long values (within the default limits).
V["long-values.sip"] = msg("""INVITE sip:user@example.com SIP/2.0
To: "I have a user name of %s proportion" <sip:user@example.com:6000;unknownparam1=verylonguriparametervalue;longuriparameter%s=shortvalue>
From: sip:caller@example.net;tag=%s
Call-ID: longreq.one%s@example.com
CSeq: 3882340 INVITE
Max-Forwards: 70
%sContact: <sip:amazinglylongcallername%s@host5.example.net>
Content-Type: application/sdp
""" % ("extreme" * 12, "name" * 20, "1918181833n" * 40, "really" * 30,
       "".join("Via: SIP/2.0/TCP sip%d.example.com;branch=z9hG4bK%s\n" % (i, "longbranch" * 8) for i in range(16)),
       "amazinglylong" * 20), SDP)
I["header-line-too-long.sip"] = msg(base + "X-Long: " + "a" * 9000 + "\n")
I["too-many-headers.sip"] = msg(base + "".join("X-H%d: %d\n" % (i, i) for i in range(125)))
for d, m in (("valid", V), ("invalid", I)):
    for name, data in m.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
# compact form: add l: at the end (body length)
p = "valid/compact-forms.sip"
data = open(p, "rb").read()
head, body = data.split(b"\r\n\r\n", 1)
open(p, "wb").write(head + b"\r\nl: %d\r\n\r\n" % len(body) + body)
p = "valid/torture-wsinv.sip"
data = open(p, "rb").read()
head, body = data.split(b"\r\n\r\n", 1)
open(p, "wb").write(head.replace(b"Content-Length   : 150", b"Content-Length   : %d" % len(body)) + b"\r\n\r\n" + body)
print(len(V), len(I))
