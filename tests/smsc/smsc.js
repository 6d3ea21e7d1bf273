// A test SMS centre for maskline's SMPP tests, built on node-smpp (an SMPP
// implementation independent of ours). It accepts transceiver binds, answers
// submit_sm (optionally throttling, optionally sending delivery receipts), and
// sends deliver_sm when told to on stdin. Every event is one JSON line on stdout.
//
// usage: node smsc.js --port N --system-id ID [--password PW]
// stdin commands (one JSON object a line):
//   {"cmd":"deliver","tag":"t1","source":"8613800138000","dest":"8617200000001",
//    "text":"...","coding":"gsm"|"ucs2","udh":[ref,total,seq],"sar":[ref,total,seq],"repeat":1}
//   {"cmd":"throttle","n":2}      next n submit_sm answered ESME_RTHROTTLED
//   {"cmd":"receipts","on":true}  send a delivery receipt for each submit_sm
'use strict';
const smpp = require('smpp');
const readline = require('readline');

const args = process.argv.slice(2);
const arg = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const port = Number(arg('--port', '0'));
const systemId = arg('--system-id', 'maskline');
const password = arg('--password', '');

const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const sessions = [];
let throttle = 0;
let receipts = false;
let submits = 0;

const server = smpp.createServer((session) => {
  session.on('bind_transceiver', (pdu) => {
    if (pdu.system_id !== systemId || (password && pdu.password !== password)) {
      session.send(pdu.response({ command_status: smpp.ESME_RBINDFAIL }));
      session.close();
      out({ event: 'bind_refused', system_id: pdu.system_id });
      return;
    }
    session.send(pdu.response({ system_id: 'testsmsc' }));
    sessions.push(session);
    out({ event: 'bound', sessions: sessions.length, version: pdu.interface_version });
  });
  session.on('enquire_link', (pdu) => session.send(pdu.response()));
  session.on('unbind', (pdu) => {
    session.send(pdu.response());
    session.close();
  });
  session.on('submit_sm', (pdu) => {
    if (throttle > 0) {
      throttle -= 1;
      session.send(pdu.response({ command_status: smpp.ESME_RTHROTTLED }));
      out({ event: 'throttled' });
      return;
    }
    submits += 1;
    const id = 'm' + submits;
    session.send(pdu.response({ message_id: id }));
    const sm = pdu.short_message || {};
    out({
      event: 'submit',
      id,
      source: pdu.source_addr,
      dest: pdu.destination_addr,
      data_coding: pdu.data_coding,
      esm_class: pdu.esm_class,
      udh: (sm.udh || []).map((u) => Array.from(u)),
      text: typeof sm.message === 'string' ? sm.message : String(sm.message || ''),
      bytes: Buffer.isBuffer(pdu.short_message) ? pdu.short_message.length : undefined,
    });
    if (receipts) {
      session.deliver_sm({
        source_addr: pdu.destination_addr,
        destination_addr: pdu.source_addr,
        esm_class: smpp.ESM_CLASS.MC_DELIVERY_RECEIPT,
        short_message: `id:${id} sub:001 dlvrd:001 submit date:2601010000 done date:2601010000 stat:DELIVRD err:000 text:`,
      });
    }
  });
  session.on('close', () => {
    const i = sessions.indexOf(session);
    if (i >= 0) sessions.splice(i, 1);
    out({ event: 'closed', sessions: sessions.length });
  });
  session.on('error', () => {});
});

function deliver(c) {
  const s = sessions[0];
  if (!s) {
    out({ event: 'deliver_resp', tag: c.tag, status: -1 });
    return;
  }
  const ucs2 = c.coding === 'ucs2';
  let body = ucs2 ? smpp.encodings.UCS2.encode(c.text) : smpp.encodings.ASCII.encode(c.text);
  let esm = 0;
  if (c.udh) {
    const [ref, total, seq] = c.udh;
    body = Buffer.concat([Buffer.from([5, 0, 3, ref, total, seq]), body]);
    esm |= 0x40;
  }
  const pdu = {
    source_addr_ton: 1,
    source_addr_npi: 1,
    source_addr: c.source,
    dest_addr_ton: 1,
    dest_addr_npi: 1,
    destination_addr: c.dest,
    esm_class: esm,
    data_coding: ucs2 ? 8 : 0,
    short_message: body,
  };
  if (c.sar) {
    pdu.sar_msg_ref_num = c.sar[0];
    pdu.sar_total_segments = c.sar[1];
    pdu.sar_segment_seqnum = c.sar[2];
  }
  for (let i = 0; i < (c.repeat || 1); i++) {
    s.deliver_sm(pdu, (resp) => out({ event: 'deliver_resp', tag: c.tag, status: resp.command_status }));
  }
}

readline.createInterface({ input: process.stdin }).on('line', (line) => {
  let c;
  try {
    c = JSON.parse(line);
  } catch (e) {
    return;
  }
  if (c.cmd === 'deliver') deliver(c);
  else if (c.cmd === 'throttle') throttle = c.n;
  else if (c.cmd === 'receipts') receipts = !!c.on;
});
process.stdin.on('end', () => process.exit(0));

server.listen(port, '127.0.0.1', () => out({ event: 'listening', port: server.address().port }));
