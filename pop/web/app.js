// screenpop agent page. Plain JavaScript, no build step: the daemon embeds
// this file. Protocol: see pop/README.md.
'use strict';

(function () {
  const TOKEN_KEY = 'screenpop.token';
  const SUBPROTOCOL = 'screenpop.v1';
  const MAX_NOTE = 2000;
  const WITHDRAWN_VISIBLE_MS = 4000;
  const MISSED_VISIBLE_MS = 15000;

  const $ = (sel, root) => (root || document).querySelector(sel);

  // h builds an element. Text always goes through textContent: card data
  // comes from company systems and must never be parsed as HTML.
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k === 'text') el.textContent = v;
      else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children.flat()) {
      if (c === undefined || c === null || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }

  // ---- token -------------------------------------------------------------

  // The sign-in link carries the token in the fragment, which browsers never
  // send to a server. It moves to sessionStorage (this tab only) and leaves
  // the address bar, so that it is not bookmarked or shared by mistake.
  function takeToken() {
    const m = location.hash.match(/(?:^#|&)token=([^&]+)/);
    if (m) {
      sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(m[1]));
      history.replaceState(null, '', location.pathname + location.search);
    }
    return sessionStorage.getItem(TOKEN_KEY);
  }

  // claims reads the token's payload for display only; the server checks it.
  function claims(token) {
    try {
      const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
      const json = decodeURIComponent(atob(part).split('').map(c => '%' + ('00' + c.charCodeAt(0).toString(16)).slice(-2)).join(''));
      return JSON.parse(json);
    } catch (e) {
      return {};
    }
  }

  // ---- formatting --------------------------------------------------------

  const locale = navigator.language || 'en';
  const numberFmt = new Intl.NumberFormat(locale);
  const dateFmt = new Intl.DateTimeFormat(locale, { dateStyle: 'medium', timeZone: 'UTC' });
  const dateTimeFmt = new Intl.DateTimeFormat(locale, { dateStyle: 'medium', timeStyle: 'short' });
  const timeFmt = new Intl.DateTimeFormat(locale, { hour: '2-digit', minute: '2-digit' });
  const DATE_ONLY = /^\d{4}-\d{2}-\d{2}$/;
  const DATE_TIME = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}/;

  function toNumber(v) {
    if (typeof v === 'number') return v;
    if (typeof v === 'string' && v.trim() !== '' && !isNaN(Number(v))) return Number(v);
    return null;
  }

  function formatDate(v) {
    if (typeof v !== 'string') return null;
    if (DATE_ONLY.test(v)) {
      const d = new Date(v + 'T00:00:00Z');
      return isNaN(d) ? null : dateFmt.format(d);
    }
    if (DATE_TIME.test(v)) {
      const d = new Date(v);
      if (isNaN(d)) return null;
      // Midnight UTC is how databases hand over a DATE: show the day only.
      if (d.getUTCHours() === 0 && d.getUTCMinutes() === 0 && d.getUTCSeconds() === 0) return dateFmt.format(d);
      return dateTimeFmt.format(d);
    }
    return null;
  }

  function formatMoney(n, currency) {
    if (currency && /^[A-Za-z]{3}$/.test(currency)) {
      try {
        return new Intl.NumberFormat(locale, { style: 'currency', currency: currency.toUpperCase() }).format(n);
      } catch (e) { /* unknown currency code: fall through */ }
    }
    return new Intl.NumberFormat(locale, { minimumFractionDigits: 2, maximumFractionDigits: 2 }).format(n);
  }

  // formatValue returns {text, cls} for a field or cell value.
  function formatValue(v, format, currency) {
    if (v === null || v === undefined || v === '') return { text: '—', cls: 'muted' };
    const n = toNumber(v);
    switch (format) {
      case 'money':
        if (n !== null) return { text: formatMoney(n, currency), cls: n < 0 ? 'num neg' : 'num' };
        break;
      case 'number':
        if (n !== null) return { text: numberFmt.format(n), cls: 'num' };
        break;
      case 'percent':
        if (n !== null) {
          // Sources hand over either a fraction (0.85) or percent points (85).
          const p = Math.abs(n) <= 1 ? n * 100 : n;
          return { text: new Intl.NumberFormat(locale, { maximumFractionDigits: 1 }).format(p) + ' %', cls: 'num' };
        }
        break;
      case 'date': {
        const d = formatDate(v);
        if (d) return { text: d, cls: 'date' };
        break;
      }
    }
    if (typeof v === 'boolean') return { text: v ? 'Yes' : 'No', cls: '' };
    if (Array.isArray(v)) return { text: v.join(', '), cls: '' };
    if (typeof v === 'object') return { text: JSON.stringify(v), cls: '' };
    if (!format || format === 'text') {
      const d = formatDate(v);
      if (d) return { text: d, cls: 'date' };
    }
    if (typeof v === 'number') return { text: numberFmt.format(v), cls: 'num' };
    return { text: String(v), cls: '' };
  }

  function formatDuration(ns) {
    const s = Math.round((ns || 0) / 1e9);
    if (s < 60) return s + ' s';
    const m = Math.floor(s / 60);
    if (m < 60) return m + ' min ' + String(s % 60).padStart(2, '0') + ' s';
    return Math.floor(m / 60) + ' h ' + String(m % 60).padStart(2, '0') + ' min';
  }

  const OUTCOMES = {
    answered: 'Call finished',
    abandoned: 'Caller hung up',
    busy: 'All agents busy',
    noanswer: 'Not answered',
    failed: 'Call failed',
    interrupted: 'Cut off by the phone system',
  };
  const HISTORY_OUTCOMES = {
    answered: 'Answered',
    abandoned: 'Caller hung up',
    busy: 'Busy',
    noanswer: 'Not answered',
    failed: 'Failed',
    interrupted: 'Cut off (phone system)',
  };

  function sectionStatusText(s) {
    const title = s.title || s.name;
    switch (s.status) {
      case 'ok': return s.cached ? 'from cache' : '';
      case 'empty': return 'No records for this caller';
      case 'timeout': return title + ': no answer in time';
      case 'error': return title + ': not available' + (s.error ? ' (' + s.error + ')' : '');
      case 'unavailable': return title + ': system unavailable right now';
      case 'skipped': return 'Needs a known customer';
      default: return s.status || '';
    }
  }

  const STATUS_BADGE = {
    ok: 'OK', empty: 'Nothing found', timeout: 'Timed out', error: 'Error',
    unavailable: 'Unavailable', skipped: 'Skipped',
  };

  // ---- state -------------------------------------------------------------

  const token = takeToken();
  const me = token ? claims(token) : {};
  const myID = me.sub || '';
  const calls = new Map(); // call_id -> call
  let lastSeq = 0;
  let ws = null;
  let attempts = 0;
  let retryTimer = null;
  let noteRef = 0;

  const callsEl = $('#calls');
  const emptyEl = $('#empty');
  const noticesEl = $('#notices');
  const connEl = $('#conn');
  const template = $('#pop-template');

  function setConnection(state, text) {
    connEl.dataset.connection = state;
    $('.conn-text', connEl).textContent = text;
    document.body.dataset.connection = state;
  }

  function notice(text, attrs, ms) {
    const el = h('div', Object.assign({ class: 'notice' }, attrs || {}), text);
    noticesEl.prepend(el);
    setTimeout(() => {
      el.classList.add('leaving');
      setTimeout(() => el.remove(), 400);
    }, ms || 6000);
  }

  function updateChrome() {
    const visible = [...calls.values()].filter(c => c.state !== 'gone');
    emptyEl.hidden = !token || visible.length > 0;
    const ringing = visible.filter(c => c.state === 'ringing');
    if (ringing.length > 0) {
      document.title = '(' + ringing.length + ') Ringing: ' + callerTitle(ringing[ringing.length - 1].card) + ' · screenpop';
    } else {
      document.title = 'screenpop';
    }
  }

  // ---- rendering ---------------------------------------------------------

  function callerTitle(card) {
    if (!card) return 'Caller';
    if (card.customer && card.customer.name) return card.customer.name;
    if (card.caller && card.caller.withheld) return 'Withheld number';
    if (card.resolution === 'ambiguous') return 'Several customers';
    return 'Unknown caller';
  }

  function renderCaller(el, card) {
    el.replaceChildren();
    const caller = card.caller || {};
    const cust = card.customer;
    el.dataset.resolution = card.resolution || '';
    const number = caller.withheld ? '' : (caller.number || card.phone || '');
    if (cust) {
      el.append(h('h2', { class: 'caller-name', 'data-field': 'customer-name' }, cust.name));
      const who = [];
      if (cust.contact) who.push(h('span', { class: 'contact', 'data-field': 'contact' }, cust.contact));
      if (cust.role) who.push(h('span', { class: 'role', 'data-field': 'role' }, cust.role));
      if (cust.kind === 'company' && !cust.contact) who.push(h('span', { class: 'kind' }, 'Company account'));
      if (cust.kind === 'person') who.push(h('span', { class: 'kind' }, 'Private customer'));
      if (who.length) el.append(h('div', { class: 'caller-who' }, who));
      const facts = [];
      if (number) facts.push(h('span', { class: 'caller-number', 'data-field': 'number', title: card.phone || '' }, number));
      if (cust.city || cust.country) facts.push(h('span', { class: 'place' }, [cust.city, cust.country].filter(Boolean).join(', ')));
      if (cust.email) facts.push(h('span', { class: 'email' }, cust.email));
      facts.push(h('span', { class: 'customer-id' }, 'Customer ' + cust.id));
      el.append(h('div', { class: 'caller-facts' }, facts));
      if (cust.tags && cust.tags.length) {
        el.append(h('ul', { class: 'tags' }, cust.tags.map(t => h('li', { class: 'tag', 'data-tag': t }, t))));
      }
    } else {
      let title = 'Unknown caller';
      let hint = 'This number is not in the customer directory.';
      switch (card.resolution) {
        case 'withheld':
          title = 'Withheld number';
          hint = 'The caller did not send a number. Ask who is calling.';
          break;
        case 'ambiguous':
          title = 'Who is calling?';
          hint = 'This number belongs to ' + (card.candidates || []).length + ' customers. Pick the caller below.';
          break;
        case 'failed':
          title = 'Caller not looked up';
          hint = 'The customer directory did not answer in time.';
          break;
      }
      if (caller.withheld) title = 'Withheld number';
      el.append(h('h2', { class: 'caller-name', 'data-field': 'caller-title' }, title));
      if (number) el.append(h('div', { class: 'caller-number big', 'data-field': 'number', title: card.phone || '' }, number));
      el.append(h('p', { class: 'caller-hint' }, hint));
    }
    if (caller.name && (!cust || caller.name !== cust.name)) {
      el.append(h('div', { class: 'caller-cnam' }, 'Caller ID: ', h('span', { 'data-field': 'caller-id-name' }, caller.name)));
    }
  }

  function renderCandidates(el, call) {
    const card = call.card;
    const list = card.candidates || [];
    el.replaceChildren();
    el.hidden = list.length === 0;
    if (!list.length) return;
    const picked = card.customer ? card.customer.id : '';
    el.append(h('h3', {}, picked ? 'Not the right customer? Pick another:' : 'Several customers use this number. Who is calling?'));
    el.append(h('ul', { class: 'candidate-list' }, list.map(k => h('li', {},
      h('button', {
        type: 'button',
        class: 'candidate' + (k.id === picked ? ' picked' : ''),
        'data-customer-id': k.id,
        disabled: call.state === 'ended' || call.selecting ? true : undefined,
        onclick: () => selectCustomer(call, k.id),
      },
      h('span', { class: 'candidate-name' }, k.name),
      h('span', { class: 'candidate-sub' }, [k.contact, k.role, k.city].filter(Boolean).join(' · ') || k.id),
      k.tags && k.tags.length ? h('span', { class: 'candidate-tags' }, k.tags.join(', ')) : null),
    ))));
  }

  function currencyOf(section, row) {
    if (row && typeof row.currency === 'string') return row.currency;
    const f = (section.fields || []).find(f => f.key === 'currency');
    return f && typeof f.value === 'string' ? f.value : '';
  }

  function renderSection(s) {
    const status = s.status || 'ok';
    const statusText = sectionStatusText(s);
    const el = h('section', { class: 'card-section', 'data-section': s.name, 'data-status': status },
      h('header', { class: 'section-head' },
        h('h3', {}, s.title || s.name),
        h('span', { class: 'section-badge', 'data-role': 'section-status', title: statusText }, STATUS_BADGE[status] || status)));
    if (status !== 'ok' && statusText) {
      el.append(h('p', { class: 'section-note' }, statusText));
    }
    const money = (s.fields || []).some(f => f.format === 'money');
    const fields = (s.fields || []).filter(f => !(money && f.key === 'currency'));
    if (fields.length) {
      el.append(h('dl', { class: 'fields' }, fields.map(f => {
        const v = formatValue(f.value, f.format, currencyOf(s));
        return h('div', { class: 'field', 'data-key': f.key },
          h('dt', {}, f.label || f.key),
          h('dd', { class: v.cls }, v.text));
      })));
    }
    for (const l of s.lists || []) {
      const cols = (l.columns || []).filter(c => !(c.key === 'currency' && (l.columns || []).some(x => x.format === 'money')));
      const rows = l.rows || [];
      const table = h('table', { class: 'list-table' },
        h('thead', {}, h('tr', {}, cols.map(c => h('th', { class: c.format === 'money' || c.format === 'number' || c.format === 'percent' ? 'num' : '' }, c.label || c.key)))),
        h('tbody', {}, rows.length ? rows.map(r => h('tr', {}, cols.map(c => {
          const v = formatValue(r[c.key], c.format, currencyOf(s, r));
          return h('td', { class: v.cls, 'data-key': c.key }, v.text);
        }))) : h('tr', {}, h('td', { colspan: Math.max(cols.length, 1), class: 'muted' }, 'None'))));
      el.append(h('div', { class: 'list', 'data-list': l.key },
        h('h4', {}, l.label || l.key, h('span', { class: 'count' }, String(rows.length) + (l.truncated ? '+' : ''))),
        h('div', { class: 'table-wrap' }, table),
        l.truncated ? h('p', { class: 'muted small' }, 'More rows exist than are shown.') : null));
    }
    if (status === 'ok' && !fields.length && !(s.lists || []).length) {
      el.append(h('p', { class: 'muted small' }, 'Nothing to show.'));
    }
    return el;
  }

  function renderHistory(el, card) {
    el.replaceChildren();
    const hist = card.history || [];
    el.append(h('h3', {}, 'Earlier calls', h('span', { class: 'count' }, String(hist.length))));
    if (!hist.length) {
      el.append(h('p', { class: 'muted small' }, card.phone ? 'No earlier calls from this number.' : 'No history without a number.'));
      return;
    }
    el.append(h('ol', { class: 'history-list' }, hist.map(pc => h('li', { class: 'history-item', 'data-history-call': pc.call_id, 'data-outcome': pc.outcome },
      h('div', { class: 'history-row' },
        h('span', { class: 'history-when' }, pc.at ? dateTimeFmt.format(new Date(pc.at)) : ''),
        h('span', { class: 'history-outcome' }, HISTORY_OUTCOMES[pc.outcome] || pc.outcome),
        pc.agent ? h('span', { class: 'history-agent' }, 'Agent ' + pc.agent) : null,
        pc.duration ? h('span', { class: 'history-duration' }, formatDuration(pc.duration)) : null),
      (pc.notes || []).length ? h('ul', { class: 'history-notes' }, pc.notes.map(n => h('li', {},
        h('span', { class: 'note-meta' }, (n.agent ? n.agent + ' · ' : '') + (n.at ? dateTimeFmt.format(new Date(n.at)) : '')),
        h('span', { class: 'note-text' }, n.text)))) : null))));
  }

  function renderState(call) {
    const el = call.el;
    el.dataset.state = call.state;
    const badge = $('[data-role=state]', el);
    const dismiss = $('[data-action=dismiss]', el);
    dismiss.hidden = call.state !== 'ended';
    switch (call.state) {
      case 'ringing':
        badge.textContent = call.transfer && call.transfer.consult ? 'Consultation' : 'Ringing';
        break;
      case 'answered':
        badge.textContent = call.transferred ? 'On call with you (transferred)' : 'On call with you';
        break;
      case 'ended':
        badge.textContent = 'Ended · ' + (OUTCOMES[call.outcome] || call.outcome || 'over');
        el.dataset.outcome = call.outcome || '';
        break;
      case 'withdrawn':
        badge.textContent = 'Withdrawn';
        break;
    }
    const transfer = $('[data-role=transfer]', el);
    const why = call.state === 'ringing' ? transferText(call.transfer) : '';
    transfer.textContent = why;
    transfer.hidden = !why;
    const form = $('[data-role=note-form]', el);
    const canNote = !!(call.card && call.card.phone && !(call.card.caller || {}).withheld);
    form.hidden = !canNote;
    $('[data-role=note-unavailable]', el).hidden = canNote || !call.card;
    if (call.card) renderCandidates($('[data-role=candidates]', el), call);
  }

  // renderLine names the line the customer dialled, so that the agent
  // answers as that line ("Support DE") before reading who calls.
  function renderLine(el, line) {
    el.replaceChildren();
    el.hidden = !line || !line.number;
    if (el.hidden) {
      el.removeAttribute('title');
      return;
    }
    el.title = 'The customer dialled ' + line.number;
    el.append('Line: ', h('span', { class: 'line-label', 'data-field': 'line' }, line.label || line.number));
    if (line.label) el.append(' ', h('span', { class: 'line-number', 'data-field': 'line-number' }, '(' + line.number + ')'));
  }

  // transferText says why the phone rings when it is not a first ring: a
  // call a colleague transferred, or a colleague consulting before an
  // attended transfer.
  function transferText(tr) {
    if (!tr || !tr.from) return '';
    if (tr.from.id === myID) return 'The call you transferred came back to you.';
    if (tr.consult) return agentName(tr.from) + ' is calling you about this caller (the caller is on hold).';
    return 'Transferred to you by ' + agentName(tr.from) + '.';
  }

  function renderCard(call) {
    const el = call.el;
    const card = call.card;
    el.dataset.resolution = card.resolution || '';
    const at = call.at ? new Date(call.at) : null;
    $('[data-role=time]', el).textContent = at && !isNaN(at) ? timeFmt.format(at) : '';
    renderLine($('[data-role=line]', el), card.line);
    renderCaller($('[data-role=caller]', el), card);
    renderCandidates($('[data-role=candidates]', el), call);
    const incomplete = $('[data-role=incomplete]', el);
    const missing = card.incomplete || [];
    incomplete.hidden = missing.length === 0;
    incomplete.textContent = missing.length
      ? 'Incomplete card: no answer from ' + missing.join(', ') + '. Check before quoting figures.'
      : '';
    $('[data-role=sections]', el).replaceChildren(...(card.sections || []).map(renderSection));
    renderHistory($('[data-role=history]', el), card);
    renderState(call);
  }

  function createCallElement(call) {
    const el = template.content.firstElementChild.cloneNode(true);
    el.dataset.callId = call.id;
    call.el = el;
    const form = $('[data-role=note-form]', el);
    const textarea = $('textarea', form);
    const count = $('[data-role=note-count]', el);
    textarea.addEventListener('input', () => {
      count.textContent = textarea.value.length + ' / ' + MAX_NOTE;
    });
    form.addEventListener('submit', ev => {
      ev.preventDefault();
      sendNote(call, textarea.value);
    });
    textarea.addEventListener('keydown', ev => {
      if (ev.key === 'Enter' && (ev.ctrlKey || ev.metaKey)) {
        ev.preventDefault();
        sendNote(call, textarea.value);
      }
    });
    $('[data-action=dismiss]', el).addEventListener('click', () => removeCall(call.id));
    callsEl.prepend(el);
    return el;
  }

  function upsertPop(callID, data, at) {
    let call = calls.get(callID);
    if (!call || call.state === 'withdrawn' || call.state === 'gone') {
      if (call && call.el) call.el.remove();
      call = { id: callID, notes: [], at: at };
      calls.set(callID, call);
      createCallElement(call);
    }
    clearTimeout(call.removeTimer);
    call.card = data.card;
    call.state = data.state === 'answered' ? 'answered' : 'ringing';
    call.answeredBy = data.answered_by || null;
    call.transfer = data.state === 'answered' ? null : (data.transfer || null);
    call.at = call.at || at;
    renderCard(call);
    updateChrome();
  }

  function removeCall(callID) {
    const call = calls.get(callID);
    if (!call) return;
    clearTimeout(call.removeTimer);
    calls.delete(callID);
    if (call.el) {
      call.el.classList.add('leaving');
      setTimeout(() => call.el.remove(), 300);
    }
    updateChrome();
  }

  const WITHDRAWN_TEXT = {
    not_ringing: () => 'Stopped ringing at your phone',
    answered_elsewhere: by => 'Answered by ' + agentName(by),
    transferred: by => by ? 'Transferred to ' + agentName(by) : 'Transferred',
    rang_out: () => 'Rang out: not answered at your phone',
    transfer_cancelled: () => 'Transfer cancelled: your colleague kept the call',
    expired: () => 'This call is no longer followed',
  };

  function agentName(ref) {
    if (!ref) return 'a colleague';
    if (ref.id === myID) return 'you';
    return ref.name || ('agent ' + ref.id);
  }

  function onWithdrawn(callID, data) {
    const call = calls.get(callID);
    const text = (WITHDRAWN_TEXT[data.reason] || (() => 'Withdrawn'))(data.by);
    const who = call ? callerTitle(call.card) : 'A call';
    // A blind transfer is told at once, and again with the target's name
    // when their phone rings: the second only updates the card.
    const retold = call && call.state === 'withdrawn' && call.withdrawnReason === data.reason;
    if (!retold) {
      notice(who + ': ' + text.charAt(0).toLowerCase() + text.slice(1), {
        'data-call-id': callID, 'data-reason': data.reason,
      });
    }
    if (!call) return;
    clearTimeout(call.removeTimer);
    call.withdrawnReason = data.reason;
    call.state = 'withdrawn';
    renderState(call);
    const w = $('[data-role=withdrawn]', call.el);
    w.textContent = text;
    w.hidden = false;
    call.removeTimer = setTimeout(() => removeCall(callID), WITHDRAWN_VISIBLE_MS);
    updateChrome();
  }

  function onEnded(callID, data) {
    const call = calls.get(callID);
    if (!call) return;
    const wasMine = call.state === 'answered';
    call.state = 'ended';
    // A call that ended while it rang here (a transfer the caller left
    // during) was not answered by this agent, whatever happened before.
    call.outcome = !wasMine && data.outcome === 'answered' ? 'abandoned' : data.outcome;
    renderState(call);
    // A call you talked to stays until you close it (notes are written
    // after the call); one that only rang leaves by itself.
    if (!wasMine) call.removeTimer = setTimeout(() => removeCall(callID), MISSED_VISIBLE_MS);
    updateChrome();
  }

  function onSnapshot(data) {
    const live = new Set();
    for (const p of data.pops || []) {
      live.add(p.call_id);
      upsertPop(p.call_id, p, p.card && p.card.built_at);
    }
    // What is not in the snapshot was withdrawn or ended while we were away.
    // Ended cards stay: their notes box may still be in use.
    for (const [id, call] of calls) {
      if (!live.has(id) && (call.state === 'ringing' || call.state === 'answered')) removeCall(id);
    }
    if (data.agent) showAgent(data.agent);
    updateChrome();
  }

  function handle(msg) {
    if (msg.seq) lastSeq = msg.seq;
    const data = msg.data || {};
    switch (msg.type) {
      case 'snapshot':
        onSnapshot(data);
        break;
      case 'pop':
        upsertPop(msg.call_id, data, msg.at);
        break;
      case 'answered': {
        const call = calls.get(msg.call_id);
        if (call && call.state !== 'ended') {
          call.state = 'answered';
          call.transferred = !!data.transferred;
          renderState(call);
          updateChrome();
        }
        break;
      }
      case 'withdrawn':
        onWithdrawn(msg.call_id, data);
        break;
      case 'ended':
        onEnded(msg.call_id, data);
        break;
      case 'card': {
        const call = calls.get(msg.call_id);
        if (call) {
          call.card = data.card;
          call.selecting = false;
          renderCard(call);
        }
        break;
      }
      case 'note_saved':
        onNoteSaved(msg.call_id, data);
        break;
      case 'error':
        onError(msg.call_id, data);
        break;
    }
  }

  // ---- requests ----------------------------------------------------------

  function send(req) {
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(JSON.stringify(req));
    return true;
  }

  function selectCustomer(call, customerID) {
    if (!send({ type: 'select', call_id: call.id, customer_id: customerID })) {
      notice('Not connected: the choice was not sent. Try again in a moment.', { 'data-kind': 'error' });
      return;
    }
    call.selecting = true;
    renderCandidates($('[data-role=candidates]', call.el), call);
    setTimeout(() => {
      if (call.selecting) {
        call.selecting = false;
        if (call.el) renderCandidates($('[data-role=candidates]', call.el), call);
      }
    }, 10000);
  }

  function sendNote(call, text) {
    const status = $('[data-role=note-status]', call.el);
    text = text.trim();
    if (!text) return;
    if (text.length > MAX_NOTE) {
      status.textContent = 'Too long: at most ' + MAX_NOTE + ' characters.';
      status.dataset.kind = 'error';
      return;
    }
    const ref = 'n' + (++noteRef);
    if (!send({ type: 'note', call_id: call.id, text: text, ref: ref })) {
      status.textContent = 'Not connected: the note was not saved yet.';
      status.dataset.kind = 'error';
      return;
    }
    call.pendingNote = ref;
    status.textContent = 'Saving…';
    status.dataset.kind = 'pending';
  }

  function findNoteCall(callID, ref) {
    const call = calls.get(callID);
    if (call) return call;
    for (const c of calls.values()) if (c.pendingNote === ref) return c;
    return null;
  }

  function onNoteSaved(callID, data) {
    const call = findNoteCall(callID, data.ref);
    if (!call || !call.el) return;
    const n = data.note || {};
    $('[data-role=note-list]', call.el).append(h('li', { class: 'note', 'data-note': '' },
      h('span', { class: 'note-meta' }, (n.agent === myID ? 'You' : n.agent) + ' · ' + (n.at ? timeFmt.format(new Date(n.at)) : '')),
      h('span', { class: 'note-text' }, n.text)));
    if (call.pendingNote === data.ref) {
      const ta = $('textarea', call.el);
      ta.value = '';
      $('[data-role=note-count]', call.el).textContent = '0 / ' + MAX_NOTE;
      call.pendingNote = null;
    }
    const status = $('[data-role=note-status]', call.el);
    status.textContent = 'Saved';
    status.dataset.kind = 'ok';
  }

  function onError(callID, data) {
    const call = calls.get(callID);
    if (data.request === 'note' && call && call.el) {
      const status = $('[data-role=note-status]', call.el);
      status.textContent = data.message || 'Not saved';
      status.dataset.kind = 'error';
      return;
    }
    if (data.request === 'select' && call) {
      call.selecting = false;
      renderCandidates($('[data-role=candidates]', call.el), call);
    }
    notice(data.message || 'The request failed.', { 'data-kind': 'error', 'data-code': data.code || '' });
  }

  // ---- connection --------------------------------------------------------

  function showAgent(agent) {
    const el = $('#agent');
    el.textContent = agent.name ? agent.name + ' · ' + agent.id : 'Agent ' + agent.id;
    el.dataset.agentId = agent.id;
  }

  function tokenExpired() {
    return me.exp && me.exp * 1000 < Date.now();
  }

  function signedOut(text) {
    setConnection('signed-out', text);
    $('#signin').hidden = false;
    emptyEl.hidden = true;
  }

  function connect() {
    retryTimer = null;
    if (tokenExpired()) {
      signedOut('Sign-in expired');
      return;
    }
    setConnection('connecting', attempts ? 'Reconnecting…' : 'Connecting…');
    const url = new URL('ws', location.href);
    url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
    url.hash = '';
    if (lastSeq) url.search = '?since=' + lastSeq;
    let opened = false;
    try {
      ws = new WebSocket(url.toString(), [SUBPROTOCOL, 'bearer.' + token]);
    } catch (e) {
      scheduleReconnect();
      return;
    }
    ws.onopen = () => {
      opened = true;
      attempts = 0;
      setConnection('open', 'Live');
    };
    ws.onmessage = ev => {
      let msg;
      try { msg = JSON.parse(ev.data); } catch (e) { return; }
      handle(msg);
    };
    ws.onclose = ev => {
      ws = null;
      if (!opened && tokenExpired()) {
        signedOut('Sign-in expired');
        return;
      }
      // Browsers do not say why a WebSocket was refused; a daemon restarted
      // with a new signing secret looks like a network problem.
      if (!opened && attempts === 4) {
        notice('Still cannot connect. If the server was restarted, your sign-in link may no longer be valid: ask for a new one.', { 'data-kind': 'error' }, 15000);
      }
      scheduleReconnect(ev.code === 1013 ? 0 : undefined);
    };
  }

  function scheduleReconnect(delay) {
    if (retryTimer) return;
    attempts++;
    if (delay === undefined) {
      const base = Math.min(15000, 500 * Math.pow(2, attempts - 1));
      delay = Math.round(base * (0.75 + Math.random() * 0.5));
    }
    const until = Date.now() + delay;
    const tick = () => {
      const left = Math.max(0, Math.ceil((until - Date.now()) / 1000));
      setConnection('offline', left > 0 ? 'Offline · retrying in ' + left + ' s' : 'Reconnecting…');
    };
    tick();
    const iv = setInterval(tick, 1000);
    retryTimer = setTimeout(() => { clearInterval(iv); connect(); }, delay);
  }

  // A sign-in link pasted into this tab changes only the fragment, which
  // does not reload the page: start over with the new token.
  window.addEventListener('hashchange', () => {
    if (/(?:^#|&)token=/.test(location.hash)) location.reload();
  });

  if (!token) {
    signedOut('Not signed in');
    return;
  }
  if (me.sub) showAgent({ id: me.sub, name: me.name });
  updateChrome();
  connect();
})();
