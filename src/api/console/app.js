// maskline ops console: plain JS, no dependency. Builds the DOM with
// createElement/textContent only (never innerHTML with data). The API key is kept
// in sessionStorage (this tab only), never in a cookie.
const KEY = 'maskline.key';
const $ = (sel) => document.querySelector(sel);
const main = () => $('#main');

function el(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'on') for (const [ev, f] of Object.entries(v)) e.addEventListener(ev, f);
    else if (v !== undefined && v !== null) e.setAttribute(k, v);
  }
  for (const k of kids.flat()) if (k !== null && k !== undefined) e.append(k instanceof Node ? k : String(k));
  return e;
}

const SVG = 'http://www.w3.org/2000/svg';
function svg(tag, attrs = {}, ...kids) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  for (const k of kids) e.append(k);
  return e;
}

class ApiError extends Error {
  constructor(status, body) {
    super(body?.error?.message || `HTTP ${status}`);
    this.status = status;
    this.code = body?.error?.code;
  }
}

async function api(path, opts = {}) {
  const key = sessionStorage.getItem(KEY);
  const headers = { Authorization: `Bearer ${key}` };
  if (opts.body) headers['Content-Type'] = 'application/json';
  const r = await fetch(path, { method: opts.method || 'GET', headers, body: opts.body ? JSON.stringify(opts.body) : undefined });
  if (opts.raw && r.ok) return r;
  const body = await r.json().catch(() => null);
  if (!r.ok) throw new ApiError(r.status, body);
  return body;
}

const pct = (v) => `${Math.round((v || 0) * 100)}%`;
const enc = encodeURIComponent;

function showError(where, e) {
  where.replaceChildren(el('p', { class: 'error', role: 'alert' }, e.message));
}

// ------------------------------------------------------------------ sign in
function signedIn() {
  return !!sessionStorage.getItem(KEY);
}

function signinView() {
  $('#nav').hidden = true;
  const err = el('p', { id: 'signin-error', class: 'error', role: 'alert' });
  const input = el('input', { id: 'key', type: 'password', autocomplete: 'off', required: '' });
  const form = el('form', { id: 'signin', class: 'card' },
    el('h1', {}, 'Sign in'),
    el('p', {}, 'Use an ops, auditor or admin API key. It stays in this tab only.'),
    el('label', {}, 'API key', input),
    el('button', { type: 'submit' }, 'Sign in'),
    err);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    sessionStorage.setItem(KEY, input.value.trim());
    try {
      await api('/v1/pools');
      location.hash = '#/pools';
      route();
    } catch (e) {
      sessionStorage.removeItem(KEY);
      err.textContent = e.status === 403 ? 'This key may not read pools (use an ops, auditor or admin key).' : e.message;
    }
  });
  main().replaceChildren(form);
}

// ------------------------------------------------------------------ pools
async function poolsView() {
  const box = el('div', { class: 'grid', id: 'pools' });
  main().replaceChildren(el('h1', {}, 'Pools'), box);
  const { pools } = await api('/v1/pools');
  if (!pools.length) box.append(el('p', {}, 'No pool yet.'));
  for (const p of pools) {
    const o = await api(`/v1/pools/${enc(p.name)}/overview`);
    const cap = Math.max(1, o.numbers.active * p.max_bindings_per_number);
    const util = Math.min(1, o.live_bindings / cap);
    const peak = o.sizing.peak_party_exhaustion;
    box.append(el('a', { class: 'stat', href: `#/pool/${enc(p.name)}`, 'data-pool': p.name },
      el('b', {}, p.name),
      el('span', {}, `${o.live_bindings} live · ${o.numbers.active} numbers`),
      bar(util, `capacity ${pct(util)}`),
      bar(peak, `busiest party ${pct(peak)}`),
      o.sizing.add_now ? el('span', { class: 'suspect' }, `add ${o.sizing.add} numbers`) : null));
  }
}

function bar(v, label) {
  const fill = el('i');
  fill.style.width = `${Math.round(Math.min(1, v) * 100)}%`;
  return el('div', {}, el('span', {}, label), el('div', { class: v >= 0.8 ? 'bar hot' : 'bar', role: 'meter', 'aria-valuenow': Math.round(v * 100), 'aria-valuemin': 0, 'aria-valuemax': 100 }, fill));
}

function stat(label, value, id) {
  return el('div', { class: 'stat' }, el('b', { 'data-stat': id }, value), el('span', {}, label));
}

// Hand-rolled SVG charts: a line (live bindings sampled per hour) and bars.
function lineChart(title, points) {
  const w = 480, h = 140, pad = 20;
  const vals = points.map((p) => p.v);
  const max = Math.max(1, ...vals.filter((v) => v !== null));
  const x = (i) => pad + (i * (w - 2 * pad)) / Math.max(1, points.length - 1);
  const y = (v) => h - pad - (v * (h - 2 * pad)) / max;
  const d = points.map((p, i) => (p.v === null ? null : `${x(i)},${y(p.v)}`)).filter(Boolean);
  const s = svg('svg', { viewBox: `0 0 ${w} ${h}`, role: 'img', 'aria-label': title });
  s.append(svg('text', { x: pad, y: 12 }, `${title} (max ${max})`));
  if (d.length) s.append(svg('polyline', { class: 'line', points: d.join(' ') }));
  for (const [i, p] of points.entries()) if (p.v !== null) s.append(svg('circle', { cx: x(i), cy: y(p.v), r: 2, class: 'exh' }));
  return s;
}

function barChart(title, points) {
  const w = 480, h = 140, pad = 20;
  const max = Math.max(1, ...points.map((p) => p.a + p.x));
  const bw = (w - 2 * pad) / points.length;
  const s = svg('svg', { viewBox: `0 0 ${w} ${h}`, role: 'img', 'aria-label': title });
  s.append(svg('text', { x: pad, y: 12 }, `${title} (max ${max}/h; red = pool_exhausted)`));
  points.forEach((p, i) => {
    const ha = (p.a * (h - 2 * pad)) / max;
    const hx = (p.x * (h - 2 * pad)) / max;
    s.append(svg('rect', { class: 'alloc', x: pad + i * bw, y: h - pad - ha - hx, width: Math.max(1, bw - 2), height: ha }));
    s.append(svg('rect', { class: 'exh', x: pad + i * bw, y: h - pad - hx, width: Math.max(1, bw - 2), height: hx }));
  });
  return s;
}

async function poolView(name) {
  const head = el('div');
  const nums = el('div', { class: 'card', id: 'numbers' });
  main().replaceChildren(el('h1', {}, `Pool ${name}`), head, nums);
  const o = await api(`/v1/pools/${enc(name)}/overview`);
  const s = o.sizing;
  head.append(
    el('div', { class: 'grid' },
      stat('active numbers', o.numbers.active, 'active'),
      stat('draining', o.numbers.draining, 'draining'),
      stat('retired', o.numbers.retired, 'retired'),
      stat('quarantined', o.numbers.quarantined, 'quarantined'),
      stat('live bindings', o.live_bindings, 'live'),
      stat('cooling holds', o.cooling, 'cooling'),
      stat('bindings/number min·med·p95·max', `${o.bindings_per_number.min}·${o.bindings_per_number.median}·${o.bindings_per_number.p95}·${o.bindings_per_number.max}`, 'quantiles'),
      stat('allocations 1 h / 24 h', `${o.last_hour.allocations} / ${o.last_day.allocations}`, 'allocations'),
      stat('pool_exhausted 1 h / 24 h', `${o.last_hour.exhausted} / ${o.last_day.exhausted}`, 'exhausted')),
    el('div', { class: `card advice ${s.add_now ? 'add' : 'fine'}`, id: 'sizing' },
      el('h2', {}, s.add_now ? `Add ${s.add} numbers now` : 'Pool size is sufficient'),
      el('p', {}, s.reason),
      el('p', {}, `Recommended ${s.recommended_numbers} numbers in service (now ${s.in_service}); busiest party at ${pct(s.peak_party_exhaustion)} of the pool.`)),
    el('div', { class: 'charts' },
      el('div', { class: 'card' }, lineChart('Live bindings, last 24 h', o.hours.map((b) => ({ v: b.live_sample })))),
      el('div', { class: 'card' }, barChart('Allocations per hour', o.hours.map((b) => ({ a: b.allocations, x: b.exhausted }))))),
    el('div', { class: 'card scroll' }, el('h2', {}, 'Busiest parties (masked)'),
      el('table', {}, el('tr', {}, el('th', {}, 'party'), el('th', {}, 'live'), el('th', {}, 'of the pool')),
        o.busiest_parties.map((p) => el('tr', {}, el('td', {}, p.party), el('td', {}, p.live_bindings), el('td', {}, pct(p.exhaustion)))))));
  await numbersTable(name, nums, null);
}

async function numbersTable(pool, box, cursor) {
  const q = cursor ? `?limit=50&cursor=${enc(cursor)}` : '?limit=50';
  const page = await api(`/v1/pools/${enc(pool)}/numbers${q}`);
  const reason = el('input', { id: 'reason', placeholder: 'why (required, goes to the audit log)', size: 40 });
  const msg = el('p', { class: 'error', role: 'alert', id: 'numbers-msg' });
  const act = (n, what) => async () => {
    try {
      await api(`/v1/pools/${enc(pool)}/numbers/${enc(n.number)}/${what}`, { method: 'POST', body: { reason: reason.value } });
      msg.className = 'ok';
      msg.textContent = `${n.number}: ${what} done`;
      await poolView(pool);
    } catch (e) {
      msg.className = 'error';
      msg.textContent = e.message;
    }
  };
  const rows = page.numbers.map((n) => el('tr', { 'data-number': n.number },
    el('td', {}, n.number), el('td', {}, n.area || ''),
    el('td', { class: n.state === 'quarantined' ? 'suspect' : '', 'data-state': n.state }, n.state),
    el('td', {}, n.live_bindings), el('td', {}, n.calls_24h), el('td', {}, n.texts_24h),
    el('td', {}, n.answer_ratio === null ? '–' : pct(n.answer_ratio)),
    el('td', {}, n.short_call_ratio === null ? '–' : pct(n.short_call_ratio)),
    el('td', {}, n.rejections_24h),
    el('td', { class: n.suspect ? 'suspect' : '', title: n.evidence || '' }, n.suspect ? `suspect: ${n.evidence}` : ''),
    el('td', {},
      n.state !== 'quarantined' && n.state !== 'retired' ? el('button', { type: 'button', class: 'secondary', 'data-action': 'quarantine', on: { click: act(n, 'quarantine') } }, 'Quarantine') : null,
      n.state !== 'active' ? el('button', { type: 'button', class: 'secondary', 'data-action': 'release', on: { click: act(n, 'release') } }, 'Return to service') : null,
      n.state !== 'retired' ? el('button', { type: 'button', class: 'secondary', 'data-action': 'retire', on: { click: act(n, 'retire') } }, 'Retire') : null)));
  box.replaceChildren(...[
    el('h2', {}, 'Numbers'),
    el('form', { class: 'row' }, el('label', {}, 'Reason for changes', reason)), msg,
    el('div', { class: 'scroll' }, el('table', {},
      el('tr', {}, ['number', 'area', 'state', 'live', 'calls 24h', 'texts 24h', 'answered', 'short calls', 'rejections', 'health', 'actions'].map((h) => el('th', {}, h))),
      rows)),
    page.next_cursor ? el('button', { type: 'button', id: 'next-page', on: { click: () => numbersTable(pool, box, page.next_cursor) } }, 'Next page') : null,
  ].filter(Boolean));
}

// ------------------------------------------------------------------ shipment
function shipmentView() {
  const id = el('input', { id: 'shipment-id', required: '' });
  const why = el('input', { id: 'reveal-reason', placeholder: 'reason (auditors only)', size: 30 });
  const out = el('div', { id: 'shipment' });
  const show = async (reveal) => {
    try {
      const q = reveal ? `?reveal=true&reason=${enc(why.value)}` : '';
      const s = await api(`/v1/shipments/${enc(id.value.trim())}${q}`);
      out.replaceChildren(
        el('div', { class: 'card scroll' }, el('h2', {}, s.revealed ? 'Bindings (revealed, audited)' : 'Bindings (masked)'),
          el('table', {}, el('tr', {}, ['pool', 'X', 'extension', 'party A', 'party B', 'expires', 'state'].map((h) => el('th', {}, h))),
            s.bindings.map((b) => el('tr', {}, el('td', {}, b.pool), el('td', {}, b.number), el('td', {}, b.extension || ''),
              el('td', { 'data-party': 'a' }, b.party_a), el('td', { 'data-party': 'b' }, b.party_b), el('td', {}, b.expires_at), el('td', {}, b.state))))),
        el('div', { class: 'card scroll' }, el('h2', {}, 'Calls'),
          el('table', {}, el('tr', {}, ['when', 'X', 'caller', 'callee', 'result', 'seconds'].map((h) => el('th', {}, h))),
            s.calls.map((c) => el('tr', {}, el('td', {}, new Date(c.invite_at).toISOString()), el('td', {}, c.number), el('td', {}, c.caller), el('td', {}, c.callee || ''), el('td', {}, c.end_reason), el('td', {}, Math.round(c.duration_ms / 1000)))))),
        el('div', { class: 'card scroll' }, el('h2', {}, 'Texts'),
          el('table', {}, el('tr', {}, ['X', 'sender', 'recipient', 'status'].map((h) => el('th', {}, h))),
            s.messages.map((m) => el('tr', {}, el('td', {}, m.number), el('td', {}, m.sender), el('td', {}, m.recipient || ''), el('td', {}, m.status))))));
    } catch (e) {
      showError(out, e);
    }
  };
  const form = el('form', { class: 'row card' }, el('label', {}, 'Shipment id', id), el('button', { type: 'submit' }, 'Look up'),
    el('label', {}, 'Reveal reason', why), el('button', { type: 'button', id: 'reveal', class: 'secondary', on: { click: () => show(true) } }, 'Reveal'));
  form.addEventListener('submit', (ev) => { ev.preventDefault(); show(false); });
  main().replaceChildren(el('h1', {}, 'Shipment lookup'), form, out);
}

// ------------------------------------------------------------------ audit
function auditView() {
  const f = { actor: el('input', { name: 'actor' }), action: el('input', { name: 'action' }), pool: el('input', { name: 'pool' }), since: el('input', { name: 'since', placeholder: '2026-12-01T00:00:00Z' }) };
  const out = el('div', { id: 'audit', class: 'card scroll' });
  const query = () => Object.entries(f).filter(([, i]) => i.value.trim()).map(([k, i]) => `${k}=${enc(i.value.trim())}`).join('&');
  const load = async () => {
    try {
      const q = query();
      const { entries } = await api(`/v1/audit?limit=200${q ? `&${q}` : ''}`);
      out.replaceChildren(el('table', {}, el('tr', {}, ['when', 'actor', 'role', 'action', 'target', 'pool', 'reason'].map((h) => el('th', {}, h))),
        entries.map((e) => el('tr', {}, [e.at, e.actor, e.role, e.action, e.target, e.pool || '', e.reason || ''].map((v) => el('td', {}, v))))));
    } catch (e) {
      showError(out, e);
    }
  };
  const csv = async () => {
    try {
      const q = query();
      const r = await api(`/v1/audit?limit=1000&format=csv${q ? `&${q}` : ''}`, { raw: true });
      const url = URL.createObjectURL(await r.blob());
      const a = el('a', { href: url, download: 'maskline-audit.csv' });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 1000);
    } catch (e) {
      showError(out, e);
    }
  };
  const form = el('form', { class: 'row card' }, Object.entries(f).map(([k, i]) => el('label', {}, k, i)),
    el('button', { type: 'submit' }, 'Filter'), el('button', { type: 'button', class: 'secondary', id: 'csv', on: { click: csv } }, 'Export CSV'));
  form.addEventListener('submit', (ev) => { ev.preventDefault(); load(); });
  main().replaceChildren(el('h1', {}, 'Audit log'), form, out);
  load();
}

// ------------------------------------------------------------------ routing
async function route() {
  if (!signedIn()) return signinView();
  $('#nav').hidden = false;
  const h = location.hash || '#/pools';
  try {
    if (h.startsWith('#/pool/')) await poolView(decodeURIComponent(h.slice(7)));
    else if (h === '#/shipment') shipmentView();
    else if (h === '#/audit') auditView();
    else await poolsView();
    document.body.dataset.ready = h;
  } catch (e) {
    if (e.status === 401) {
      sessionStorage.removeItem(KEY);
      return signinView();
    }
    showError(main(), e);
  }
}

window.addEventListener('hashchange', route);
document.addEventListener('DOMContentLoaded', () => {
  $('#signout').addEventListener('click', () => {
    sessionStorage.removeItem(KEY);
    location.hash = '';
    route();
  });
  route();
});
