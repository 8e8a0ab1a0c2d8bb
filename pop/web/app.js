// screenpop agent page. Plain JavaScript, no build step: the daemon embeds
// this file. Protocol: see pop/README.md. Every text a person reads comes
// from the message catalogs (i18n-*.js) through t(); none is written here.
'use strict';

(function () {
  const TOKEN_KEY = 'screenpop.token';
  const PREFS_KEY = 'screenpop.prefs';
  const ALERTED_KEY = 'screenpop.alerted';
  const SUBPROTOCOL = 'screenpop.v1';
  // Who the page is signed in as: the hub's own endpoint, there in every
  // deployment, judging the link's token or the session cookie as the
  // socket would.
  const SESSION_PATH = 'session';
  // Opening the page without a sign-in goes to the company sign-in at
  // once; a page back from it within this time without a session (cookies
  // blocked, a proxy that drops them) shows the button instead of looping.
  const AUTO_LOGIN_KEY = 'screenpop.autoLogin';
  const AUTO_LOGIN_HOLD_MS = 60 * 1000;
  const MAX_NOTE = 2000;
  const WITHDRAWN_VISIBLE_MS = 4000;
  const MISSED_VISIBLE_MS = 15000;
  const RECENT_MAX = 6;
  // The ring sound plays a few times, not for as long as the phone rings:
  // the desk phone rings too, and a tab that beeps for minutes gets muted.
  const RING_REPEATS = 3;
  const RING_EVERY_MS = 4000;
  // A tab that alerted for a call keeps the claim this long at most.
  const ALERT_HOLD_MS = 3 * 60 * 1000;
  // A replayed pop followed at once by its end must not make a sound.
  const ALERT_SETTLE_MS = 150;
  const ALERT_MEMORY_MS = 10 * 60 * 1000;
  // After this many failed connections in a row without an answer from the
  // sign-in check, the page says that the link may be the problem.
  const UNREACHABLE_AFTER = 3;

  const $ = (sel, root) => (root || document).querySelector(sel);
  const $$ = (sel, root) => [...(root || document).querySelectorAll(sel)];

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

  // ---- preferences -------------------------------------------------------

  // Preferences are per browser (localStorage), shared by the agent's tabs.
  const PREF_DEFAULTS = { sound: true, notify: false, lang: '', asked: false };

  function prefs() {
    try {
      return Object.assign({}, PREF_DEFAULTS, JSON.parse(localStorage.getItem(PREFS_KEY) || '{}'));
    } catch (e) {
      return Object.assign({}, PREF_DEFAULTS);
    }
  }

  function setPrefs(change) {
    const p = Object.assign(prefs(), change);
    try { localStorage.setItem(PREFS_KEY, JSON.stringify(p)); } catch (e) { /* private mode: this tab only */ }
    return p;
  }

  // ---- language ----------------------------------------------------------

  const catalogs = window.screenpopCatalogs || {};
  let lang = 'en';
  let catalog = catalogs.en || {};
  let locale = 'en';
  let plural = new Intl.PluralRules('en');
  const fmt = {};

  // pickLanguage: the agent's choice, else the browser's first language we
  // have a catalog for, else English.
  function pickLanguage(choice) {
    if (choice && catalogs[choice]) return choice;
    for (const l of navigator.languages || [navigator.language || 'en']) {
      const base = String(l).toLowerCase().split('-')[0];
      if (catalogs[base]) return base;
    }
    return 'en';
  }

  function setLanguage(code) {
    lang = code;
    catalog = catalogs[code] || catalogs.en || {};
    // Numbers and dates follow the browser's regional variant of the
    // chosen language (en-GB dates for a British agent), in the agent's own
    // time zone.
    locale = (navigator.languages || []).find(l => String(l).toLowerCase().split('-')[0] === code) || code;
    plural = new Intl.PluralRules(locale);
    fmt.number = new Intl.NumberFormat(locale);
    fmt.fraction = new Intl.NumberFormat(locale, { maximumFractionDigits: 1 });
    fmt.money = new Intl.NumberFormat(locale, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
    fmt.date = new Intl.DateTimeFormat(locale, { dateStyle: 'medium', timeZone: 'UTC' });
    fmt.localDate = new Intl.DateTimeFormat(locale, { dateStyle: 'medium' });
    fmt.dateTime = new Intl.DateTimeFormat(locale, { dateStyle: 'medium', timeStyle: 'short' });
    fmt.time = new Intl.DateTimeFormat(locale, { hour: '2-digit', minute: '2-digit' });
    fmt.currency = {};
    document.documentElement.lang = code;
    document.documentElement.dir = catalog._dir || 'ltr';
    translate(document);
  }

  function has(key) {
    return catalog[key] !== undefined || (catalogs.en || {})[key] !== undefined;
  }

  // t looks a message up: "{name}" placeholders take params; a message
  // with plural forms picks one by params.count.
  function t(key, params) {
    let s = catalog[key];
    if (s === undefined && catalogs.en) s = catalogs.en[key];
    if (s === undefined) return key;
    if (typeof s === 'object') s = s[plural.select(params && params.count)] || s.other;
    if (!params) return s;
    return s.replace(/\{(\w+)\}/g, (m, k) => (params[k] === undefined ? m : String(params[k])));
  }

  // translate fills the static texts of root: data-i18n="key" sets the
  // text, data-i18n-attr="attr:key,attr:key" sets attributes.
  function translate(root) {
    for (const el of $$('[data-i18n]', root)) el.textContent = t(el.dataset.i18n);
    for (const el of $$('[data-i18n-attr]', root)) {
      for (const pair of el.dataset.i18nAttr.split(',')) {
        const [attr, key] = pair.split(':');
        el.setAttribute(attr, t(key));
      }
    }
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
      return null;
    }
  }

  // ---- formatting --------------------------------------------------------

  const DATE_ONLY = /^\d{4}-\d{2}-\d{2}$/;
  const DATE_TIME = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}/;
  const TIME_ONLY = /^\d{2}:\d{2}(:\d{2})?$/;

  function toNumber(v) {
    if (typeof v === 'number') return v;
    if (typeof v === 'string' && v.trim() !== '' && !isNaN(Number(v))) return Number(v);
    return null;
  }

  // formatDate shows a date (withTime: a date and time) in the agent's
  // locale. A bare date, or midnight UTC (how databases hand over a DATE),
  // is a calendar day and is not shifted into the agent's time zone.
  function formatDate(v, withTime) {
    if (typeof v !== 'string') return null;
    if (DATE_ONLY.test(v)) {
      const d = new Date(v + 'T00:00:00Z');
      return isNaN(d) ? null : fmt.date.format(d);
    }
    if (!DATE_TIME.test(v)) return null;
    const d = new Date(v.replace(' ', 'T'));
    if (isNaN(d)) return null;
    const midnightUTC = d.getUTCHours() === 0 && d.getUTCMinutes() === 0 && d.getUTCSeconds() === 0;
    if (midnightUTC && !withTime) return fmt.date.format(d);
    return withTime ? fmt.dateTime.format(d) : fmt.localDate.format(d);
  }

  function formatMoney(n, currency) {
    const code = typeof currency === 'string' ? currency.trim().toUpperCase() : '';
    if (/^[A-Z]{3}$/.test(code)) {
      try {
        if (!fmt.currency[code]) fmt.currency[code] = new Intl.NumberFormat(locale, { style: 'currency', currency: code });
        // Intl puts a no-break space between currency and number: a long
        // amount in a narrow field (a phone) would then run into the next
        // one. That space may break; the number's own never do.
        const parts = fmt.currency[code].formatToParts(n);
        return parts.map((p, i) => p.type === 'literal' && /^\s+$/.test(p.value) &&
          (parts[i - 1]?.type === 'currency' || parts[i + 1]?.type === 'currency') ? ' ' : p.value).join('');
      } catch (e) { /* unknown currency code: fall through */ }
    }
    return fmt.money.format(n);
  }

  // formatValue returns {text, cls} for a field or cell value. Only number,
  // money and percent group digits: ids, codes and anything else shown as
  // text stay exactly as the source wrote them ("50403", not "50,403").
  function formatValue(v, format, currency) {
    if (v === null || v === undefined || v === '') return { text: t('value.none'), cls: 'muted' };
    const n = toNumber(v);
    switch (format) {
      case 'money':
        if (n !== null) return { text: formatMoney(n, currency), cls: n < 0 ? 'num neg' : 'num' };
        break;
      case 'number':
        if (n !== null) return { text: fmt.number.format(n), cls: 'num' };
        break;
      case 'percent':
        if (n !== null) {
          // Sources hand over either a fraction (0.85) or percent points (85).
          const p = Math.abs(n) <= 1 ? n * 100 : n;
          return { text: t('value.percent', { n: fmt.fraction.format(p) }), cls: 'num' };
        }
        break;
      case 'date': {
        const d = formatDate(v, false);
        if (d) return { text: d, cls: 'date' };
        break;
      }
      case 'datetime': {
        const d = formatDate(v, !DATE_ONLY.test(v));
        if (d) return { text: d, cls: 'date' };
        break;
      }
      case 'time':
        if (typeof v === 'string' && TIME_ONLY.test(v)) return { text: v.slice(0, 5), cls: 'date' };
        if (typeof v === 'string' && DATE_TIME.test(v)) {
          const d = new Date(v);
          if (!isNaN(d)) return { text: fmt.time.format(d), cls: 'date' };
        }
        break;
    }
    if (typeof v === 'boolean') return { text: t(v ? 'value.yes' : 'value.no'), cls: '' };
    if (Array.isArray(v)) return { text: v.join(', '), cls: '' };
    if (typeof v === 'object') return { text: JSON.stringify(v), cls: '' };
    if (!format) {
      // No format: an ISO date is still shown as a date.
      const d = formatDate(v, false);
      if (d) return { text: d, cls: 'date' };
    }
    return { text: String(v), cls: typeof v === 'number' ? 'code' : '' };
  }

  function formatDuration(ns) {
    const s = Math.round((ns || 0) / 1e9);
    if (s < 60) return t('duration.s', { s: s });
    const m = Math.floor(s / 60);
    if (m < 60) return t('duration.ms', { m: m, s: String(s % 60).padStart(2, '0') });
    return t('duration.hm', { h: Math.floor(m / 60), m: String(m % 60).padStart(2, '0') });
  }

  // Country calling codes of two digits; 1 and 7 have one, the rest three.
  const CC2 = new Set(('20 27 30 31 32 33 34 36 39 40 41 43 44 45 46 47 48 49 51 52 53 54 55 56 57 58 ' +
    '60 61 62 63 64 65 66 81 82 84 86 90 91 92 93 94 95 98').split(' '));

  function groupDigits(d) {
    const groups = [];
    for (let i = 0; i < d.length; i += 3) groups.push(d.slice(i, i + 3));
    // No lone digit at the end: "123 4567", not "123 456 7".
    if (groups.length > 1 && groups[groups.length - 1].length === 1) {
      const last = groups.pop();
      groups[groups.length - 1] += last;
    }
    return groups.join(' ');
  }

  // readableNumber groups the digits of a number so that it can be read
  // back to the caller: the country code apart, then blocks of three (four
  // for the North American plan's last block). A number that already has
  // spaces or dashes is shown as it came.
  function readableNumber(raw) {
    const s = String(raw || '').trim();
    if (!/^\+?\d{7,15}$/.test(s)) return s;
    if (s[0] !== '+') return groupDigits(s);
    const d = s.slice(1);
    if (d[0] === '1' && d.length === 11) return '+1 ' + d.slice(1, 4) + ' ' + d.slice(4, 7) + ' ' + d.slice(7);
    const cc = d[0] === '1' || d[0] === '7' ? d[0] : CC2.has(d.slice(0, 2)) ? d.slice(0, 2) : d.slice(0, 3);
    return '+' + cc + ' ' + groupDigits(d.slice(cc.length));
  }

  // displayNumber: the daemon's phone_display (libphonenumber: national in
  // the daemon's region, else international; a caller ID that is no number
  // as sent). Only a card without it (from an older daemon) falls back to
  // the PBX's own formatting, else the digits grouped by readableNumber.
  function displayNumber(card) {
    const caller = card.caller || {};
    if (caller.withheld) return '';
    if (card.phone_display) return card.phone_display;
    const given = caller.number || '';
    if (given && /[\s\-().\/]/.test(given)) return given;
    return readableNumber(given || card.phone || '');
  }

  // ---- state -------------------------------------------------------------

  const token = takeToken();
  const me = (token && claims(token)) || {};
  // Who is signed in: from the link's token, or, signed in by the session
  // cookie of a company sign-in (no token in the page), from the server.
  let myID = me.sub || '';
  let myName = me.name || '';
  let signedIn = !!token;
  let signInEnded = false; // a session that was live has ended
  let companySignIn = false; // the server signs in at an identity provider
  const calls = new Map(); // call_id -> call
  const recent = []; // call ids of the recent-calls strip, newest first
  let focusID = ''; // the call shown in full
  let arrivals = 0;
  let lastSeq = 0;
  let ws = null;
  let attempts = 0;
  let failedInARow = 0;
  let everOpen = false;
  let invalid = false;
  let invalidReason = 'invalid.text';
  let retryTimer = null;
  let countdown = null;
  let noteRef = 0;
  // The wrap-up asked after a call the agent answered, from the server's
  // hello: {dispositions: [{code, label}], required, time (ns)}; null: none.
  let wrapSettings = null;
  // The agent's wrap-up in progress, while it keeps them from being ready:
  // {callID, until (this browser's ms; 0: no after-call time)}.
  let wrapState = null;
  let wrapTimer = null;
  let wrapRef = 0;
  // The server keeps notes by call: a caller without a number takes notes
  // too, and notes can be changed by their authors.
  let notesByCall = false;
  let conn = { state: 'connecting', key: 'conn.connecting', params: null };

  const focusEl = $('#focus');
  const queueEl = $('#queue-list');
  const recentEl = $('#recent-list');
  const parkedEl = $('#parked');
  const emptyEl = $('#empty');
  const noticesEl = $('#notices');
  const connEl = $('#conn');
  const template = $('#pop-template');

  function setConnection(state, key, params) {
    conn = { state: state, key: key, params: params || null };
    connEl.dataset.connection = state;
    $('.conn-text', connEl).textContent = t(key, params);
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

  // The live region is emptied first, so that the same words said twice
  // (two calls from one customer) are read twice.
  function announce(text) {
    const el = $('#announcer');
    el.textContent = '';
    setTimeout(() => { el.textContent = text; }, 50);
  }

  function liveCalls() {
    return [...calls.values()].filter(c => c.state === 'ringing' || c.state === 'answered');
  }

  // showPanels shows the one message that fits the page's state in the
  // main column: sign in, invalid link, connecting, or no calls.
  function showPanels() {
    const hasCalls = !!focusEl.firstElementChild || !!queueEl.firstElementChild;
    $('#signin').hidden = signedIn || invalid || conn.state !== 'signed-out';
    $('#invalid').hidden = !invalid;
    $('#connecting').hidden = !signedIn || invalid || everOpen || hasCalls;
    emptyEl.hidden = !signedIn || invalid || !everOpen || hasCalls;
    $('#queue').dataset.count = String(queueEl.childElementCount);
    $('#side').hidden = !signedIn || invalid || (!everOpen && !hasCalls);
    $('#recent').hidden = recent.length === 0;
    $('#alert-offer').hidden = !signedIn || invalid || !everOpen || prefs().asked;
    const stale = liveCalls().some(c => c.stale);
    $('#stale-banner').hidden = !stale;
    // The ringing sheet of a phone-sized screen covers the bottom of the
    // page: the page gets that much room below its end.
    const q = $('#queue');
    const sheet = getComputedStyle(q).position === 'fixed' ? q.getBoundingClientRect().height : 0;
    document.body.style.setProperty('--sheet', Math.round(sheet) + 'px');
  }

  function updateChrome() {
    showPanels();
    const ringing = liveCalls().filter(c => c.state === 'ringing' && !c.stale);
    if (ringing.length > 0) {
      document.title = t('title.ringing', { count: ringing.length, who: callerTitle(ringing[ringing.length - 1].card) });
    } else if (conn.state === 'offline' && liveCalls().length) {
      document.title = t('title.offline');
    } else {
      document.title = t('title.idle');
    }
  }

  // ---- layout ------------------------------------------------------------
  //
  // One call is shown in full (the focus): the call the agent is on, else
  // the first that rings. Other live calls wait as compact cards in the side
  // column (a sheet at the bottom of a phone-sized screen), so that a call
  // ringing meanwhile never moves the one being worked on. Ended calls go
  // to a short strip of recent calls, from which they can be reopened.

  function place(call, where) {
    call.place = where;
    const el = call.el;
    el.dataset.place = where;
    el.dataset.layout = where === 'focus' ? 'full' : 'compact';
    const target = where === 'focus' ? focusEl : where === 'queue' ? queueEl : parkedEl;
    if (el.parentNode !== target) {
      if (where === 'focus') focusEl.replaceChildren(el);
      else target.append(el);
    }
    renderActions(call);
  }

  // busy: the agent is working on this card, so nothing takes its place
  // unless the agent picks up another call.
  function busy(call) {
    if (!call || call.place !== 'focus' || call.state === 'withdrawn') return false;
    if (call.state !== 'ended') return true;
    const ta = $('.note-form textarea', call.el);
    return ta.value.trim() !== '' || document.activeElement === ta || !!call.pendingNote || (!!wrapState && wrapState.callID === call.id);
  }

  function setFocus(call) {
    const prev = calls.get(focusID);
    focusID = call ? call.id : '';
    if (prev && prev !== call && calls.has(prev.id)) {
      if (prev.state === 'ended') toRecent(prev);
      else place(prev, 'queue');
    }
    if (call) {
      removeFromRecent(call.id);
      place(call, 'focus');
    }
  }

  // nextFocus: the call the agent talks to most recently, else the call
  // that has rung longest.
  function nextFocus() {
    const waiting = [...calls.values()].filter(c => c.place === 'queue');
    const talking = waiting.filter(c => c.state === 'answered').sort((a, b) => b.answeredAt - a.answeredAt);
    if (talking.length) return talking[0];
    return waiting.filter(c => c.state === 'ringing').sort((a, b) => a.arrival - b.arrival)[0] || null;
  }

  // arrange fills an empty focus and refreshes what depends on the layout.
  function arrange() {
    const f = calls.get(focusID);
    if (!f || f.place !== 'focus') {
      focusID = '';
      const next = nextFocus();
      if (next) setFocus(next);
      else if (focusEl.firstElementChild && !calls.has(focusEl.firstElementChild.dataset.callId)) focusEl.replaceChildren();
    }
    orderQueue();
    renderRecent();
    renderWrapMarks();
    updateChrome();
  }

  // orderQueue puts the calls that ring first, in the order they came, then
  // the calls on hold, then those about to leave: on a small screen the
  // sheet shows its top first.
  function orderQueue() {
    const rank = c => (c.state === 'ringing' ? 0 : c.state === 'answered' ? 1 : 2);
    const waiting = [...calls.values()].filter(c => c.place === 'queue')
      .sort((a, b) => rank(a) - rank(b) || a.arrival - b.arrival);
    waiting.forEach((c, i) => {
      if (queueEl.children[i] !== c.el) queueEl.insertBefore(c.el, queueEl.children[i] || null);
    });
  }

  function toRecent(call) {
    clearTimeout(call.removeTimer);
    if (focusID === call.id) focusID = '';
    place(call, 'recent');
    removeFromRecent(call.id);
    recent.unshift(call.id);
    while (recent.length > RECENT_MAX) {
      const oldest = calls.get(recent.pop());
      if (oldest) forget(oldest);
    }
  }

  function removeFromRecent(id) {
    const i = recent.indexOf(id);
    if (i >= 0) recent.splice(i, 1);
  }

  // forget drops a call from the page.
  function forget(call, animate) {
    if (!call) return;
    clearTimeout(call.removeTimer);
    stopAlert(call);
    calls.delete(call.id);
    removeFromRecent(call.id);
    if (focusID === call.id) focusID = '';
    if (animate && call.place !== 'recent') {
      call.el.classList.add('leaving');
      setTimeout(() => { call.el.remove(); arrange(); }, 300);
    } else {
      call.el.remove();
    }
  }

  // renderRecent redraws the strip only when what it lists changed: a
  // redraw would take the keyboard focus away from its buttons.
  let recentDrawn = '';
  function renderRecent() {
    const drawn = lang + JSON.stringify(recent.map(id => {
      const c = calls.get(id);
      return [id, c.outcome, callerTitle(c.card), $('.note-form textarea', c.el).value.trim() !== ''];
    }));
    if (drawn === recentDrawn) return;
    recentDrawn = drawn;
    recentEl.replaceChildren(...recent.map(id => {
      const call = calls.get(id);
      const who = callerTitle(call.card);
      const when = call.at ? new Date(call.at) : null;
      const draft = $('.note-form textarea', call.el).value.trim() !== '';
      return h('li', { class: 'recent-item', 'data-recent-call': id, 'data-outcome': call.outcome || '' },
        h('div', { class: 'recent-text' },
          h('span', { class: 'recent-who' }, who),
          h('span', { class: 'recent-meta' },
            [when && !isNaN(when) ? fmt.time.format(when) : '', outcomeText(call)].filter(Boolean).join(' · ')),
          draft ? h('span', { class: 'recent-draft' }, t('recent.draft')) : null),
        h('button', { type: 'button', class: 'btn-small btn-outline', 'data-action': 'reopen', onclick: () => reopen(call) }, t('recent.open')),
        h('button', {
          type: 'button', class: 'icon-button', 'data-action': 'forget',
          'aria-label': t('recent.remove', { who: who }), title: t('recent.remove', { who: who }),
          onclick: () => { forget(call); arrange(); focusAfterRemoval(); },
        }, h('span', { class: 'x-icon', 'aria-hidden': 'true' })));
    }));
  }

  // Keyboard users whose button just went away land on the strip, not on
  // the top of the page.
  function focusAfterRemoval() {
    const next = $('#recent-list button') || $('#main');
    next.focus();
  }

  function reopen(call) {
    setFocus(call);
    arrange();
    call.el.focus();
  }

  function renderActions(call) {
    const compact = call.place !== 'focus';
    $('[data-action=focus]', call.el).hidden = !compact || call.state === 'withdrawn';
    $('[data-action=dismiss]', call.el).hidden = compact || call.state !== 'ended';
  }

  // ---- rendering ---------------------------------------------------------

  function callerTitle(card) {
    if (!card) return t('caller.generic');
    if (card.customer && card.customer.name) return card.customer.name;
    if (card.caller && card.caller.withheld) return t('caller.withheld');
    if (card.resolution === 'ambiguous') return t('caller.several');
    return t('caller.unknown');
  }

  function outcomeText(call) {
    if (call.state === 'ended') return call.outcome ? t('outcome.' + call.outcome) : t('outcome.unknown');
    return '';
  }

  function renderCaller(el, card) {
    el.replaceChildren();
    const caller = card.caller || {};
    const cust = card.customer;
    el.dataset.resolution = card.resolution || '';
    const number = displayNumber(card);
    const numberAttrs = { 'data-field': 'number', title: card.phone || '', dir: 'ltr' };
    if (cust) {
      el.append(h('h2', { class: 'caller-name', 'data-field': 'customer-name' }, cust.name));
      const who = [];
      if (cust.contact) who.push(h('span', { class: 'contact', 'data-field': 'contact' }, cust.contact));
      if (cust.role) who.push(h('span', { class: 'role', 'data-field': 'role' }, cust.role));
      if (cust.kind === 'company' && !cust.contact) who.push(h('span', { class: 'kind' }, t('caller.company')));
      if (cust.kind === 'person') who.push(h('span', { class: 'kind' }, t('caller.person')));
      if (who.length) el.append(h('div', { class: 'caller-who' }, who));
      const facts = [];
      if (number) facts.push(h('span', Object.assign({ class: 'caller-number' }, numberAttrs), number));
      if (cust.city || cust.country) facts.push(h('span', { class: 'place' }, [cust.city, cust.country].filter(Boolean).join(', ')));
      if (cust.email) facts.push(h('span', { class: 'email' }, cust.email));
      facts.push(h('span', { class: 'customer-id' }, t('caller.customerId', { id: cust.id })));
      el.append(h('div', { class: 'caller-facts' }, facts));
      if (cust.tags && cust.tags.length) {
        el.append(h('ul', { class: 'tags', 'aria-label': t('caller.tags') }, cust.tags.map(tag => h('li', { class: 'tag', 'data-tag': tag }, tag))));
      }
    } else {
      let res = card.resolution === 'withheld' || card.resolution === 'ambiguous' || card.resolution === 'failed' ? card.resolution : 'unknown';
      if (caller.withheld) res = 'withheld';
      el.append(h('h2', { class: 'caller-name', 'data-field': 'caller-title' }, t('resolution.' + res + '.title')));
      if (number) el.append(h('div', Object.assign({ class: 'caller-number big' }, numberAttrs), number));
      // An unknown caller with no number at all was not looked up: the
      // phone system sent none (not withheld by the caller, not missing
      // from the directory).
      const hint = res === 'unknown' && !number ? 'resolution.nonumber.hint' : 'resolution.' + res + '.hint';
      el.append(h('p', { class: 'caller-hint', 'data-field': 'caller-hint' }, t(hint, { count: (card.candidates || []).length })));
    }
    if (caller.name && (!cust || caller.name !== cust.name)) {
      el.append(h('div', { class: 'caller-cnam' }, t('caller.cnam'), ' ', h('span', { 'data-field': 'caller-id-name' }, caller.name)));
    }
  }

  function renderCandidates(el, call) {
    const card = call.card;
    const list = card.candidates || [];
    el.replaceChildren();
    el.hidden = list.length === 0;
    if (!list.length) return;
    const picked = card.customer ? card.customer.id : '';
    el.append(h('h3', {}, t(picked ? 'candidates.repick' : 'candidates.pick')));
    el.append(h('ul', { class: 'candidate-list' }, list.map(k => h('li', {},
      h('button', {
        type: 'button',
        class: 'candidate' + (k.id === picked ? ' picked' : ''),
        'data-customer-id': k.id,
        'aria-pressed': k.id === picked ? 'true' : 'false',
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

  function sectionStatusText(s) {
    const title = s.title || s.name;
    switch (s.status) {
      case 'ok': return s.cached ? cachedText(s) : '';
      case 'loading': return t('section.loadingText');
      case 'empty': return t('section.emptyText');
      case 'timeout': return t('section.timeoutText', { title: title });
      case 'error': return s.error ? t('section.errorTextWhy', { title: title, why: s.error }) : t('section.errorText', { title: title });
      case 'unavailable': return t('section.unavailableText', { title: title });
      case 'skipped': return t('section.skippedText');
      default: return s.status || '';
    }
  }

  // The server's clock minus this browser's, as the last snapshot or hello
  // said (both are fresh, never replayed): the age of cached data is the
  // server's to tell, whatever the agent's computer thinks the time is.
  let serverOffset = 0;

  // cachedText says how old a section's cached answer is: "Data from 12
  // minutes ago".
  function cachedText(s) {
    const at = Date.parse(s.cached_at || '');
    if (isNaN(at)) return t('section.cachedEarlier');
    const minutes = Math.max(0, Math.floor((Date.now() + serverOffset - at) / 60000));
    if (minutes < 1) return t('section.cachedJustNow');
    if (minutes < 120) return t('section.cachedMinutes', { count: minutes });
    return t('section.cachedHours', { count: Math.floor(minutes / 60) });
  }

  // The ages on screen go on counting while their cards are shown.
  setInterval(() => {
    for (const el of $$('[data-role=cached]')) el.textContent = cachedText({ cached_at: el.dataset.cachedAt });
  }, 30000);

  const NUMERIC = { money: true, number: true, percent: true };

  // renderSection draws one section with its state in words, never only
  // in a tooltip: loading (until a section message brings it), ok, from
  // the cache and how old, empty, timed out, failed, unavailable, skipped.
  function renderSection(s) {
    const status = s.status || 'ok';
    const statusText = sectionStatusText(s);
    const cached = !!s.cached && (status === 'ok' || status === 'empty');
    let badge = has('status.' + status) ? t('status.' + status) : status;
    if (status === 'loading') {
      badge = [h('span', { class: 'busy-label' }, t('status.loading')), h('span', { class: 'stopped-label' }, t('status.stopped'))];
    } else if (cached && status === 'ok') {
      badge = t('status.cached');
    }
    const el = h('section', {
      class: 'card-section', 'data-section': s.name, 'data-status': status,
      'data-cached': cached ? 'true' : undefined, 'aria-busy': status === 'loading' ? 'true' : undefined,
    },
    h('header', { class: 'section-head' },
      h('h3', {}, s.title || s.name),
      h('span', { class: 'section-badge', 'data-role': 'section-status', title: statusText }, badge)));
    if (status === 'loading') {
      // Grey bars where the content will be; "not loaded" instead once the
      // call is over (style.css, by the card's state).
      el.append(
        h('p', { class: 'section-note loading-note', 'data-role': 'loading' }, statusText),
        h('p', { class: 'section-note stopped-note' }, t('section.stoppedText')),
        h('div', { class: 'skeleton', 'aria-hidden': 'true' }, h('span'), h('span'), h('span')));
      return el;
    }
    if (status !== 'ok' && statusText) {
      el.append(h('p', { class: 'section-note' }, statusText));
    }
    if (cached) {
      el.append(h('p', { class: 'section-note cached-note', 'data-role': 'cached', 'data-cached-at': s.cached_at || '' }, cachedText(s)));
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
      const label = l.label || l.key;
      const table = h('table', { class: 'list-table' },
        h('thead', {}, h('tr', {}, cols.map(c => h('th', { scope: 'col', class: NUMERIC[c.format] ? 'num' : '' }, c.label || c.key)))),
        h('tbody', {}, rows.length ? rows.map(r => h('tr', {}, cols.map(c => {
          const v = formatValue(r[c.key], c.format, currencyOf(s, r));
          // A value of one word (an invoice or serial number) is not
          // broken at its hyphens: only text with spaces wraps.
          return h('td', { class: v.cls || (/\s/.test(v.text) ? '' : 'word'), 'data-key': c.key }, v.text);
        }))) : h('tr', {}, h('td', { colspan: Math.max(cols.length, 1), class: 'muted' }, t('list.none')))));
      const wrap = h('div', { class: 'table-wrap', 'data-label': label }, table);
      scrollables.observe(wrap);
      el.append(h('div', { class: 'list', 'data-list': l.key },
        h('h4', {}, label, h('span', { class: 'count' }, String(rows.length) + (l.truncated ? '+' : ''))),
        wrap,
        l.truncated ? h('p', { class: 'muted small' }, t('list.truncated')) : null));
    }
    if (status === 'ok' && !fields.length && !(s.lists || []).length) {
      el.append(h('p', { class: 'muted small' }, t('section.nothing')));
    }
    return el;
  }

  // A table wider than its section scrolls inside it. Only then is it a
  // stop for the keyboard (arrow keys scroll it) with a name to announce.
  const scrollables = typeof ResizeObserver === 'function'
    ? new ResizeObserver(entries => entries.forEach(e => markScrollable(e.target)))
    : { observe: markScrollable };

  function markScrollable(wrap) {
    if (wrap.scrollWidth > wrap.clientWidth + 1) {
      wrap.setAttribute('tabindex', '0');
      wrap.setAttribute('role', 'region');
      wrap.setAttribute('aria-label', t('list.scroll', { label: wrap.dataset.label }));
      wrap.dataset.scrolls = 'true';
      // Its section takes the card's whole width, and keeps it: once
      // wide, the table may fit, and narrowing the section again would
      // only bring the scrolling back.
      const section = wrap.closest('.card-section');
      if (section) section.dataset.wide = 'true';
    } else {
      wrap.removeAttribute('tabindex');
      wrap.removeAttribute('role');
      wrap.removeAttribute('aria-label');
      delete wrap.dataset.scrolls;
    }
  }

  // personName names an agent of the history by the name they had then:
  // "you", the name, else their id.
  function personName(id, name) {
    if (!id) return '';
    if (id === myID) return t('agent.you');
    return name || t('agent.id', { id: id });
  }

  // noteMeta: who wrote a note and when, and whether it was changed since.
  function noteMeta(n, format) {
    return [personName(n.agent, n.agent_name), n.at ? format.format(new Date(n.at)) : '',
      n.edited_at ? t('notes.edited') : ''].filter(Boolean).join(' · ');
  }

  // renderHistory lists the caller's earlier calls, newest first: those of
  // the number and the customer's from their other numbers, each with who
  // took it, how it ended, the wrap-up chosen and the notes; and how many
  // calls came in the last 30 days.
  function renderHistory(el, card) {
    el.replaceChildren();
    const hist = card.history || [];
    if (card.history_loading) {
      // Read after the pop went out: a history message brings it.
      el.setAttribute('aria-busy', 'true');
      el.append(h('h3', {}, t('history.title')), h('p', { class: 'muted small loading-note', 'data-role': 'history-loading' }, t('history.loading')));
      return;
    }
    el.removeAttribute('aria-busy');
    el.append(h('h3', {}, t('history.title'), h('span', { class: 'count' }, String(hist.length))));
    const last30 = card.calls_last_30_days;
    if (typeof last30 === 'number') {
      el.append(h('p', { class: 'history-last30', 'data-role': 'last30', 'data-count': String(last30) }, t('history.last30', { count: last30 })));
    }
    if (!hist.length) {
      const known = card.phone || (card.customer && card.customer.id);
      el.append(h('p', { class: 'muted small' }, t(known ? 'history.none' : 'history.noNumber')));
      return;
    }
    el.append(h('ol', { class: 'history-list' }, hist.map(pc => h('li', { class: 'history-item', 'data-history-call': pc.call_id, 'data-outcome': pc.outcome },
      h('div', { class: 'history-row' },
        h('span', { class: 'history-when' }, pc.at ? fmt.dateTime.format(new Date(pc.at)) : ''),
        h('span', { class: 'history-outcome' }, has('history.outcome.' + pc.outcome) ? t('history.outcome.' + pc.outcome) : pc.outcome),
        pc.agent ? h('span', { class: 'history-agent' }, personName(pc.agent, pc.agent_name)) : null,
        pc.duration ? h('span', { class: 'history-duration' }, formatDuration(pc.duration)) : null),
      pc.disposition ? h('div', { class: 'history-disposition', 'data-disposition': pc.disposition },
        t('history.disposition', { label: pc.disposition_label || pc.disposition })) : null,
      (pc.notes || []).length ? h('ul', { class: 'history-notes' }, pc.notes.map(n => h('li', {},
        h('span', { class: 'note-meta' }, noteMeta(n, fmt.dateTime)),
        h('span', { class: 'note-text' }, n.text)))) : null))));
  }

  // renderNotes lists the notes saved on this page, an agent's own with a
  // button to change it (when the server keeps notes by call), and the
  // state of the note being written. The list is drawn again only when it
  // changed: a redraw would take the keyboard focus from an edit.
  function renderNotes(call) {
    const el = call.el;
    const list = $('[data-role=note-list]', el);
    const ed = call.editing;
    const drawn = lang + JSON.stringify([call.savedNotes, ed ? ed.id : '']);
    if (list.dataset.drawn !== drawn) {
      list.dataset.drawn = drawn;
      list.replaceChildren(...call.savedNotes.map(n => noteItem(call, n)));
    }
    if (ed) {
      const st = $('[data-role=note-edit-status]', list);
      if (st) {
        st.textContent = ed.status ? (ed.status.text || t(ed.status.key, ed.status.params)) : '';
        st.dataset.kind = ed.status ? ed.status.kind : '';
      }
    }
    const ta = $('.note-form textarea', el);
    $('[data-role=note-count]', el).textContent = t('notes.count', { n: ta.value.length, max: MAX_NOTE });
    const status = $('[data-role=note-status]', el);
    const st = call.noteStatus;
    status.textContent = st ? (st.text || t(st.key, st.params)) : '';
    if (st) status.dataset.kind = st.kind;
    else delete status.dataset.kind;
  }

  function noteItem(call, n) {
    const ed = call.editing;
    if (ed && ed.id === n.id) {
      const area = h('textarea', { rows: 3, maxlength: MAX_NOTE, 'aria-label': t('notes.editLabel'), 'data-role': 'note-edit-text',
        oninput: ev => { ed.text = ev.target.value; } });
      area.value = ed.text;
      return h('li', { class: 'note note-editing', 'data-note': n.id },
        h('span', { class: 'note-meta' }, noteMeta(n, fmt.time)),
        area,
        h('div', { class: 'note-actions' },
          h('span', { class: 'note-status', 'data-role': 'note-edit-status', 'aria-live': 'polite' }),
          h('button', { type: 'button', class: 'btn-small btn-outline', 'data-action': 'note-edit-cancel',
            onclick: () => {
              call.editing = null;
              renderNotes(call);
              const back = $('[data-note="' + n.id + '"] [data-action=note-edit]', call.el);
              if (back) back.focus();
            } }, t('notes.editCancel')),
          h('button', { type: 'button', class: 'btn-small', 'data-action': 'note-edit-save', onclick: () => sendNoteEdit(call) }, t('notes.editSave'))));
    }
    const mine = notesByCall && n.id && n.agent === myID;
    return h('li', { class: 'note', 'data-note': n.id || '' },
      h('span', { class: 'note-meta' }, noteMeta(n, fmt.time)),
      h('span', { class: 'note-text' }, n.text),
      mine ? h('button', { type: 'button', class: 'btn-quiet btn-small note-edit', 'data-action': 'note-edit',
        'aria-label': t('notes.editLabel'), onclick: () => startNoteEdit(call, n) }, t('notes.edit')) : null);
  }

  function startNoteEdit(call, n) {
    call.editing = { id: n.id, text: n.text, status: null, ref: '' };
    renderNotes(call);
    const area = $('[data-role=note-edit-text]', call.el);
    if (area) area.focus();
  }

  function sendNoteEdit(call) {
    const ed = call.editing;
    if (!ed) return;
    const text = ed.text.trim();
    const setStatus = (kind, key, params, msg) => { ed.status = { kind: kind, key: key, params: params, text: msg }; renderNotes(call); };
    if (!text) return;
    if (text.length > MAX_NOTE) return setStatus('error', 'notes.tooLong', { max: MAX_NOTE });
    ed.ref = 'e' + (++noteRef);
    if (!send({ type: 'note_edit', call_id: call.id, note_id: ed.id, text: text, ref: ed.ref })) return setStatus('error', 'notes.offline');
    setStatus('pending', 'notes.saving');
  }

  function setNoteStatus(call, kind, key, params, text) {
    call.noteStatus = { kind: kind, key: key, params: params, text: text };
    renderNotes(call);
  }

  function stateText(call) {
    switch (call.state) {
      case 'ringing': return t(call.transfer && call.transfer.consult ? 'state.consult' : 'state.ringing');
      case 'answered': return t(call.transferred ? 'state.answeredTransferred' : 'state.answered');
      case 'ended': return t('state.ended', { outcome: outcomeText(call) });
      case 'withdrawn': return t('state.withdrawn');
    }
    return '';
  }

  function renderState(call) {
    const el = call.el;
    el.dataset.state = call.state;
    if (call.state === 'ended') el.dataset.outcome = call.outcome || '';
    $('[data-role=state]', el).textContent = stateText(call);
    const transfer = $('[data-role=transfer]', el);
    const why = call.state === 'ringing' ? transferText(call.transfer) : '';
    transfer.textContent = why;
    transfer.hidden = !why;
    const w = $('[data-role=withdrawn]', el);
    w.hidden = call.state !== 'withdrawn';
    w.textContent = call.state === 'withdrawn' ? withdrawnText(call.withdrawnReason, call.withdrawnBy) : '';
    const stale = $('[data-role=stale]', el);
    stale.hidden = !call.stale;
    stale.textContent = call.stale ? t(call.state === 'ringing' ? 'stale.ringing' : 'stale.answered') : '';
    if (call.stale) el.dataset.stale = 'true';
    else delete el.dataset.stale;
    const form = $('[data-role=note-form]', el);
    const canNote = !!(call.card && (notesByCall || (call.card.phone && !(call.card.caller || {}).withheld)));
    form.hidden = !canNote;
    $('[data-role=note-unavailable]', el).hidden = canNote || !call.card;
    const pending = $('[data-role=wrapup-pending]', el);
    const wrapping = call.state === 'ringing' && !!wrapState && wrapState.callID !== call.id;
    pending.hidden = !wrapping;
    pending.textContent = wrapping ? t('wrapup.ringingWhile') : '';
    renderWrapUp(call);
    if (call.card) renderCandidates($('[data-role=candidates]', el), call);
    renderFind(call);
    renderActions(call);
    // A section the call ended before is not loading any more: not loaded.
    const live = call.state === 'ringing' || call.state === 'answered';
    for (const busyEl of $$('[aria-busy]', el)) busyEl.setAttribute('aria-busy', String(live));
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
    const number = line.display || line.number;
    el.title = t('line.title', { number: number });
    el.append(t('line.label'), ' ', h('span', { class: 'line-label', 'data-field': 'line' }, line.label || number));
    if (line.label) el.append(' ', h('span', { class: 'line-number', 'data-field': 'line-number' }, '(' + number + ')'));
  }

  function agentName(ref) {
    if (!ref) return t('agent.colleague');
    if (ref.id === myID) return t('agent.you');
    return ref.name || t('agent.id', { id: ref.id });
  }

  // transferText says why the phone rings when it is not a first ring: a
  // call a colleague transferred, or a colleague consulting before an
  // attended transfer.
  function transferText(tr) {
    if (!tr || !tr.from) return '';
    if (tr.from.id === myID) return t('transfer.back');
    return t(tr.consult ? 'transfer.consult' : 'transfer.blind', { who: agentName(tr.from) });
  }

  function withdrawnText(reason, by) {
    if (reason === 'transferred' && !by) return t('withdrawn.transferredAway');
    const key = 'withdrawn.' + reason;
    return t(has(key) ? key : 'withdrawn.other', { who: agentName(by) });
  }

  function renderCard(call) {
    const el = call.el;
    const card = call.card;
    translate(el);
    el.dataset.resolution = card.resolution || '';
    const at = call.at ? new Date(call.at) : null;
    $('[data-role=time]', el).textContent = at && !isNaN(at) ? fmt.time.format(at) : '';
    renderLine($('[data-role=line]', el), card.line);
    renderCaller($('[data-role=caller]', el), card);
    renderLinks(call);
    el.setAttribute('aria-label', callerTitle(card));
    const incomplete = $('[data-role=incomplete]', el);
    const missing = card.incomplete || [];
    incomplete.hidden = missing.length === 0;
    incomplete.textContent = missing.length ? t('card.incomplete', { systems: missing.join(', ') }) : '';
    $('[data-role=sections]', el).replaceChildren(...(card.sections || []).map(renderSection));
    renderHistory($('[data-role=history]', el), card);
    renderNotes(call);
    renderState(call);
  }

  function createCallElement(call) {
    const el = template.content.firstElementChild.cloneNode(true);
    el.dataset.callId = call.id;
    call.el = el;
    const form = $('[data-role=note-form]', el);
    const textarea = $('textarea', form);
    textarea.addEventListener('input', () => {
      $('[data-role=note-count]', el).textContent = t('notes.count', { n: textarea.value.length, max: MAX_NOTE });
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
    $('[data-action=dismiss]', el).addEventListener('click', () => {
      toRecent(call);
      arrange();
      focusAfterRemoval();
    });
    $('[data-action=focus]', el).addEventListener('click', () => reopen(call));
    $('[data-action=wrapup]', el).addEventListener('click', () => finishWrapUp(call));
    return el;
  }

  // ---- messages ----------------------------------------------------------

  function upsertPop(callID, data, at) {
    let call = calls.get(callID);
    if (call && (call.state === 'withdrawn' || call.state === 'ended')) {
      // The call comes back (a transfer returned): a new card.
      forget(call);
      call = null;
    }
    const isNew = !call;
    if (isNew) {
      call = { id: callID, at: at, arrival: ++arrivals, savedNotes: [], answeredAt: 0 };
      calls.set(callID, call);
      createCallElement(call);
    }
    clearTimeout(call.removeTimer);
    const before = call.state;
    call.card = data.card;
    call.state = data.state === 'answered' ? 'answered' : 'ringing';
    call.answeredBy = data.answered_by || null;
    call.transfer = data.state === 'answered' ? null : (data.transfer || null);
    call.stale = false;
    if (call.state === 'answered' && before !== 'answered') call.answeredAt = Date.now();
    renderCard(call);
    if (call.state === 'answered') {
      if (call.place !== 'focus') setFocus(call);
    } else if (isNew) {
      if (busy(calls.get(focusID))) place(call, 'queue');
      else setFocus(call);
    }
    arrange();
    if (call.state === 'ringing') ringAlert(call);
    else stopAlert(call);
    if (call.state === 'answered' && before !== 'answered') openOnAnswer(call);
  }

  function onAnswered(callID, data) {
    const call = calls.get(callID);
    if (!call || call.state === 'ended') return;
    call.state = 'answered';
    call.transferred = !!data.transferred;
    call.answeredAt = Date.now();
    stopAlert(call);
    openOnAnswer(call);
    renderState(call);
    // The agent picked up: this is the call to show, whatever was shown.
    if (call.place !== 'focus') setFocus(call);
    arrange();
  }

  function onWithdrawn(callID, data) {
    const call = calls.get(callID);
    const text = withdrawnText(data.reason, data.by);
    const who = call ? callerTitle(call.card) : t('caller.aCall');
    // A blind transfer is told at once, and again with the target's name
    // when their phone rings: the second only updates the card.
    const retold = call && call.state === 'withdrawn' && call.withdrawnReason === data.reason;
    if (!retold) {
      notice(t('notice.withdrawn', { who: who, what: text }), { 'data-call-id': callID, 'data-reason': data.reason });
    }
    if (!call) return;
    clearTimeout(call.removeTimer);
    stopAlert(call);
    call.withdrawnReason = data.reason;
    call.withdrawnBy = data.by || null;
    call.state = 'withdrawn';
    renderState(call);
    call.removeTimer = setTimeout(() => { forget(call, true); arrange(); }, WITHDRAWN_VISIBLE_MS);
    arrange();
  }

  function onEnded(callID, data) {
    const call = calls.get(callID);
    if (!call) return;
    const wasMine = call.state === 'answered';
    call.state = 'ended';
    // A call that ended while it rang here (a transfer the caller left
    // during) was not answered by this agent, whatever happened before.
    call.outcome = !wasMine && data.outcome === 'answered' ? 'abandoned' : data.outcome;
    stopAlert(call);
    if (wasMine && call.outcome === 'answered') {
      // A call the agent talked to: its wrap-up starts now.
      call.mine = true;
      startWrapUp(call);
    }
    renderState(call);
    if (call.place === 'queue') {
      toRecent(call);
    } else if (call.place === 'focus' && !wasMine) {
      // Only rang here: say why it went, then make room. A call you talked
      // to stays until you close it: notes are written after the call.
      const makeRoom = () => {
        if (call.place === 'focus' && !busy(call)) {
          toRecent(call);
          arrange();
        }
      };
      if (nextFocus()) makeRoom();
      else call.removeTimer = setTimeout(makeRoom, MISSED_VISIBLE_MS);
    }
    arrange();
  }

  // A snapshot replaces what the page shows. What is not in it was
  // withdrawn or ended while the page was away: it goes first, so that the
  // calls in the snapshot are placed as if they had just rung. A call the
  // agent talked to stays, ended, for its notes.
  function onSnapshot(data) {
    const live = new Set((data.pops || []).map(p => p.call_id));
    for (const call of [...calls.values()]) {
      if (live.has(call.id)) continue;
      if (call.state === 'ringing') forget(call);
      else if (call.state === 'answered') {
        call.state = 'ended';
        call.mine = true;
        call.outcome = '';
        call.stale = false;
        renderState(call);
        if (call.place === 'queue') toRecent(call);
      }
    }
    for (const p of data.pops || []) upsertPop(p.call_id, p, p.card && p.card.built_at);
    if (data.agent) showAgent(data.agent);
    arrange();
  }

  function handle(msg) {
    if (msg.seq) lastSeq = msg.seq;
    const data = msg.data || {};
    if ((msg.type === 'snapshot' || msg.type === 'hello') && msg.at) serverOffset = (Date.parse(msg.at) - Date.now()) || 0;
    switch (msg.type) {
      case 'snapshot':
        onSnapshot(data);
        break;
      case 'pop':
        upsertPop(msg.call_id, data, msg.at);
        break;
      case 'answered':
        onAnswered(msg.call_id, data);
        break;
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
          if (call.place === 'recent') renderRecent();
        }
        break;
      }
      case 'section':
        onSection(msg.call_id, data.section);
        break;
      case 'history':
        onHistory(msg.call_id, data);
        break;
      case 'note_saved':
        onNoteSaved(msg.call_id, data);
        break;
      case 'hello':
        onHello(data, msg.at);
        break;
      case 'wrapped_up':
        onWrappedUp(msg.call_id, data);
        break;
      case 'error':
        onError(msg.call_id, data);
        break;
      case 'search_results':
        onSearchResults(msg.call_id, data);
        break;
    }
    // Whatever the message drew, a pop shown is acknowledged once painted.
    if (msg.type === 'snapshot') for (const p of data.pops || []) acknowledge(calls.get(p.call_id));
    else if (msg.call_id) acknowledge(calls.get(msg.call_id));
  }

  // A section of a card sent while it was built, now settled: it takes the
  // place of the loading one, and nothing else is drawn again (a note being
  // written, the focus and the scroll position stay).
  function onSection(callID, section) {
    const call = calls.get(callID);
    if (!call || !call.card || !section) return;
    const sections = call.card.sections || [];
    const i = sections.findIndex(s => s.name === section.name);
    if (i < 0) return;
    sections[i] = section;
    const old = $('[data-section="' + CSS.escape(section.name) + '"]', call.el);
    if (old) old.replaceWith(renderSection(section));
  }

  // The earlier calls of a card sent before they were read.
  function onHistory(callID, data) {
    const call = calls.get(callID);
    if (!call || !call.card) return;
    call.card.history = data.history || [];
    call.card.calls_last_30_days = data.calls_last_30_days;
    call.card.history_loading = false;
    renderHistory($('[data-role=history]', call.el), call.card);
  }

  // ---- ring alert --------------------------------------------------------
  //
  // Every tab shows the call, updates its title and tells a screen reader;
  // only one tab of the browser plays the sound and shows the desktop
  // notification. The tab that first takes the call's Web Lock alerts and
  // holds the lock while the call rings; where Web Locks are missing (a page
  // served over plain http), a claim in localStorage decides.

  const alerted = new Set(); // calls this tab has alerted for, or let another tab
  const alerts = new Map(); // call id -> {release, notification, timer}
  const tabID = Math.random().toString(36).slice(2);
  let audioCtx = null;

  function ringAlert(call) {
    if (call.stale || alerted.has(call.id)) return;
    alerted.add(call.id);
    announce(t('announce.ringing', { who: callerTitle(call.card), line: lineName(call.card) }));
    setTimeout(() => {
      if (call.state !== 'ringing' || !calls.has(call.id)) return;
      claimAlert(call, () => startAlert(call));
    }, ALERT_SETTLE_MS);
  }

  function lineName(card) {
    const l = card && card.line;
    return l && l.number ? t('announce.line', { line: l.label || l.display || l.number }) : '';
  }

  function claimKey(call) {
    return myID + ':' + call.id;
  }

  // rememberAlerted notes in localStorage which calls have alerted, so that
  // a tab opened or reconnected later does not ring for them again.
  function rememberAlerted(key, owner) {
    let seen = {};
    try { seen = JSON.parse(localStorage.getItem(ALERTED_KEY) || '{}'); } catch (e) { seen = {}; }
    const now = Date.now();
    for (const k of Object.keys(seen)) if (!seen[k] || now - seen[k].at > ALERT_MEMORY_MS) delete seen[k];
    if (owner === undefined) return seen[key] || null;
    if (!seen[key]) seen[key] = { at: now, tab: owner };
    try { localStorage.setItem(ALERTED_KEY, JSON.stringify(seen)); } catch (e) { /* full or private */ }
    return seen[key];
  }

  function claimAlert(call, alert) {
    const key = claimKey(call);
    if (rememberAlerted(key)) return;
    if (navigator.locks && navigator.locks.request) {
      navigator.locks.request('screenpop.ring.' + key, { ifAvailable: true }, lock => {
        if (!lock || rememberAlerted(key) || call.state !== 'ringing') return null;
        rememberAlerted(key, tabID);
        alert();
        // Held while the call rings here, so that the other tabs asking for
        // it now are refused.
        return new Promise(resolve => {
          const a = alerts.get(call.id);
          if (!a) return resolve();
          a.release = resolve;
          setTimeout(resolve, ALERT_HOLD_MS);
        });
      }).catch(() => { /* the lock manager refused: no alert from this tab */ });
      return;
    }
    // Claim, let the other tabs' claims land, and alert if ours stood.
    rememberAlerted(key, tabID);
    setTimeout(() => {
      const owner = rememberAlerted(key);
      if (owner && owner.tab === tabID && call.state === 'ringing') alert();
    }, ALERT_SETTLE_MS);
  }

  function startAlert(call) {
    const p = prefs();
    const a = { release: null, notification: null, timer: null };
    alerts.set(call.id, a);
    if (p.sound) {
      let played = 0;
      const ring = () => {
        if (call.state !== 'ringing' || call.stale || played >= RING_REPEATS) return;
        played++;
        playRing();
        a.timer = setTimeout(ring, RING_EVERY_MS);
      };
      ring();
    }
    if (p.notify && window.Notification && Notification.permission === 'granted') {
      try {
        const n = new Notification(t('notify.title', { who: callerTitle(call.card) }), {
          body: [lineName(call.card), displayNumber(call.card || {})].filter(Boolean).join(' · '),
          tag: 'screenpop-' + call.id,
          silent: !!p.sound,
        });
        n.onclick = () => {
          window.focus();
          if (calls.has(call.id) && call.place !== 'focus') reopen(call);
          n.close();
        };
        a.notification = n;
      } catch (e) { /* notifications need a secure page; the sound still plays */ }
    }
  }

  function stopAlert(call) {
    const a = alerts.get(call.id);
    if (!a) return;
    alerts.delete(call.id);
    clearTimeout(a.timer);
    if (a.notification) a.notification.close();
    if (a.release) a.release();
  }

  function audio() {
    if (!audioCtx) {
      const AC = window.AudioContext || window.webkitAudioContext;
      if (!AC) return null;
      audioCtx = new AC();
      audioCtx.onstatechange = updateSettings;
    }
    return audioCtx;
  }

  // playRing plays a desk phone's double ring, made on the spot: no sound
  // file to serve.
  function playRing() {
    const ctx = audio();
    if (!ctx) return;
    if (ctx.state === 'suspended') ctx.resume().catch(() => {});
    const t0 = ctx.currentTime + 0.05;
    for (const [start, freq] of [[0, 880], [0.16, 660], [0.55, 880], [0.71, 660]]) {
      const osc = ctx.createOscillator();
      const gain = ctx.createGain();
      osc.type = 'sine';
      osc.frequency.value = freq;
      gain.gain.setValueAtTime(0, t0 + start);
      gain.gain.linearRampToValueAtTime(0.2, t0 + start + 0.02);
      gain.gain.linearRampToValueAtTime(0, t0 + start + 0.14);
      osc.connect(gain);
      gain.connect(ctx.destination);
      osc.start(t0 + start);
      osc.stop(t0 + start + 0.15);
    }
    updateSettings();
  }

  // Browsers keep a page silent until the person has clicked or typed in
  // it; the first click or key lets the ring sound play from then on.
  function unlockAudio() {
    if (!prefs().sound) return;
    const ctx = audio();
    if (ctx && ctx.state === 'suspended') ctx.resume().then(updateSettings, () => {});
    updateSettings();
  }
  document.addEventListener('pointerdown', unlockAudio, true);
  document.addEventListener('keydown', unlockAudio, true);

  function soundBlocked() {
    const activated = navigator.userActivation ? navigator.userActivation.hasBeenActive : true;
    return prefs().sound && (audioCtx ? audioCtx.state === 'suspended' : !activated);
  }

  function notifyState() {
    if (!window.Notification) return 'unsupported';
    return Notification.permission; // granted, denied, default
  }

  function askNotifications() {
    if (!window.Notification) return Promise.resolve('unsupported');
    if (Notification.permission !== 'default') return Promise.resolve(Notification.permission);
    return Promise.resolve(Notification.requestPermission()).catch(() => 'denied');
  }

  // ---- settings ----------------------------------------------------------

  function updateSettings() {
    const p = prefs();
    $('#pref-sound').checked = !!p.sound;
    const ns = notifyState();
    $('#pref-notify').checked = !!p.notify && ns === 'granted';
    $('#pref-notify').disabled = ns === 'unsupported' || ns === 'denied';
    const soundHint = $('#sound-hint');
    const blocked = soundBlocked();
    soundHint.hidden = !blocked;
    soundHint.textContent = blocked ? t('settings.soundBlocked') : '';
    const notifyHint = $('#notify-hint');
    const nk = ns === 'denied' ? 'settings.notifyDenied' : ns === 'unsupported' ? 'settings.notifyUnsupported' : '';
    notifyHint.hidden = !nk;
    notifyHint.textContent = nk ? t(nk) : '';
    $('[data-role=settings-warn]').hidden = !blocked;
    $('#settings summary').title = blocked ? t('settings.soundBlocked') : t('settings.open');
    $('#pref-lang').value = p.lang && catalogs[p.lang] ? p.lang : '';
  }

  // Each language is named in itself ("Polski"), so that an agent who
  // cannot read the current one still finds their own.
  function renderLanguageChoices() {
    const choices = [['', t('settings.languageAuto')]].concat(Object.keys(catalogs).sort().map(c => [c, catalogs[c]._name || c]));
    $('#pref-lang').replaceChildren(...choices.map(([v, name]) => h('option', { value: v, lang: v || undefined }, name)));
  }

  function turnOnAlerts() {
    setPrefs({ sound: true, asked: true });
    unlockAudio();
    askNotifications().then(state => {
      setPrefs({ notify: state === 'granted' });
      updateSettings();
      showPanels();
    });
    showPanels();
  }

  $('#offer-yes').addEventListener('click', () => {
    turnOnAlerts();
    $('#main').focus();
  });
  $('#offer-no').addEventListener('click', () => {
    setPrefs({ asked: true });
    showPanels();
    $('#main').focus();
  });
  $('#pref-sound').addEventListener('change', ev => {
    setPrefs({ sound: ev.target.checked, asked: true });
    if (ev.target.checked) unlockAudio();
    updateSettings();
    showPanels();
  });
  $('#pref-sound-test').addEventListener('click', () => playRing());
  $('#pref-notify').addEventListener('change', ev => {
    if (!ev.target.checked) {
      setPrefs({ notify: false, asked: true });
      updateSettings();
      return;
    }
    askNotifications().then(state => {
      setPrefs({ notify: state === 'granted', asked: true });
      updateSettings();
      showPanels();
    });
  });
  $('#pref-lang').addEventListener('change', ev => {
    setPrefs({ lang: ev.target.value });
    relabel();
  });
  $('#recent-clear').addEventListener('click', () => {
    for (const id of [...recent]) forget(calls.get(id));
    arrange();
    $('#main').focus();
  });
  // Escape closes the settings and gives the focus back to their button.
  $('#settings').addEventListener('keydown', ev => {
    if (ev.key === 'Escape' && $('#settings').open) {
      $('#settings').open = false;
      $('#settings summary').focus();
    }
  });
  // Another tab changed the preferences (its language, its alerts).
  window.addEventListener('storage', ev => {
    if (ev.key !== PREFS_KEY) return;
    if (pickLanguage(prefs().lang) !== lang) relabel();
    else updateSettings();
    showPanels();
  });

  // relabel redraws every text in the language now chosen.
  function relabel() {
    setLanguage(pickLanguage(prefs().lang));
    for (const call of calls.values()) renderCard(call);
    setConnection(conn.state, conn.key, conn.params);
    if (myID) showAgent({ id: myID, name: myName });
    renderConnecting();
    renderSignIn();
    $('[data-role=invalid-text]').textContent = t(invalidReason);
    renderLanguageChoices();
    updateSettings();
    arrange();
  }

  // ---- wrap-up -----------------------------------------------------------
  //
  // After a call the agent answered, its card asks how the call ended (one
  // of the configured dispositions) beside its notes, by keyboard: the
  // choices, the notes, "Finish wrap-up". With a required disposition or an
  // after-call time the agent is "in wrap-up" until they finish it (or the
  // time runs out, when not required): the top bar says so, and a call that
  // rings meanwhile still pops, marked. A page opened during a wrap-up
  // learns it from the server's hello and offers the choice on its own.

  function wrapConfigured() {
    return !!(wrapSettings && (wrapSettings.dispositions || []).length);
  }

  // wrapKeeps: the wrap-up keeps the agent from being ready after a call.
  function wrapKeeps() {
    return wrapConfigured() && (!!wrapSettings.required || (wrapSettings.time || 0) > 0);
  }

  function startWrapUp(call) {
    if (!wrapKeeps()) return;
    const ms = Math.round((wrapSettings.time || 0) / 1e6);
    wrapState = { callID: call.id, until: ms > 0 ? Date.now() + ms : 0 };
    tickWrapUp();
  }

  function wrapOverdue() {
    return !!wrapState && wrapState.until > 0 && Date.now() >= wrapState.until;
  }

  function clock(ms) {
    const s = Math.max(0, Math.ceil(ms / 1000));
    return Math.floor(s / 60) + ':' + String(s % 60).padStart(2, '0');
  }

  // dueText says what the wrap-up in progress still asks.
  function dueText() {
    if (!wrapState) return '';
    if (wrapOverdue()) return t('wrapup.overdue');
    if (wrapState.until) return t('wrapup.left', { time: clock(wrapState.until - Date.now()) });
    return t('wrapup.required');
  }

  // tickWrapUp follows the after-call time: the agent is ready again when
  // it ends, unless a disposition is required (then it is overdue).
  function tickWrapUp() {
    clearTimeout(wrapTimer);
    wrapTimer = null;
    if (wrapOverdue() && !wrapSettings.required) wrapState = null;
    renderWrapMarks();
    if (wrapState && wrapState.until && !wrapOverdue()) wrapTimer = setTimeout(tickWrapUp, 1000);
  }

  // renderWrapMarks updates what depends on the wrap-up in progress (the
  // top bar, ringing cards, the countdowns) without drawing the choices
  // again, which would take the keyboard focus.
  function renderWrapMarks() {
    const el = $('#agent-state');
    const overdue = wrapOverdue();
    el.hidden = !wrapState;
    el.dataset.state = !wrapState ? '' : overdue ? 'overdue' : 'wrapup';
    el.textContent = !wrapState ? '' : overdue ? t('wrapup.stateOverdue')
      : wrapState.until ? t('wrapup.stateLeft', { time: clock(wrapState.until - Date.now()) }) : t('wrapup.state');
    for (const call of calls.values()) {
      if (!call.el) continue;
      const pending = $('[data-role=wrapup-pending]', call.el);
      const wrapping = call.state === 'ringing' && !!wrapState && wrapState.callID !== call.id;
      pending.hidden = !wrapping;
      pending.textContent = wrapping ? t('wrapup.ringingWhile') : '';
      renderWrapRow($('[data-role=wrapup-finish]', call.el), call);
    }
    renderWrapAlone();
  }

  // renderWrapUp shows the wrap-up of an ended call the agent answered.
  function renderWrapUp(call) {
    const box = $('[data-role=wrapup]', call.el);
    const row = $('[data-role=wrapup-finish]', call.el);
    const show = !!call.mine && call.state === 'ended' && wrapConfigured();
    box.hidden = row.hidden = !show;
    if (!show) return;
    drawChoices(box, 'wrapup-' + call.id, call.wrapped ? call.wrapped.code : '');
    renderWrapRow(row, call);
  }

  // drawChoices lists the dispositions as one radio group (arrow keys move
  // the choice), drawn again only when they, the language or the choice
  // kept by the server changed; a choice not sent yet survives.
  function drawChoices(box, name, chosen) {
    const drawn = lang + JSON.stringify([wrapSettings.dispositions, chosen]);
    if (box.dataset.drawn === drawn) return;
    const picked = $('input:checked', box);
    const keep = chosen && box.dataset.chosen !== chosen ? chosen : (picked ? picked.value : chosen);
    box.dataset.drawn = drawn;
    box.dataset.chosen = chosen;
    box.replaceChildren(h('fieldset', { class: 'wrapup-choices' },
      h('legend', {}, t('wrapup.choose')),
      wrapSettings.dispositions.map(d => h('label', { class: 'wrapup-choice', 'data-code': d.code },
        h('input', { type: 'radio', name: name, value: d.code, checked: d.code === keep }),
        h('span', { class: 'wrapup-label' }, d.label)))));
  }

  // renderWrapRow fills the row of "Finish wrap-up": what is due (for the
  // call wrapped up now) and the state of the last request.
  function renderWrapRow(row, call) {
    const here = !!wrapState && (call ? wrapState.callID === call.id : true);
    const due = $('[data-role=wrapup-due]', row);
    due.textContent = here ? dueText() : '';
    due.dataset.kind = here && wrapOverdue() ? 'overdue' : '';
    const status = call ? call.wrapStatus : wrapAloneStatus;
    const st = $('[data-role=wrapup-status]', row);
    st.textContent = status ? (status.text || t(status.key, status.params)) : '';
    if (status) st.dataset.kind = status.kind;
    else delete st.dataset.kind;
  }

  // The wrap-up of a call whose card is not on this page.
  let wrapAloneStatus = null;
  function renderWrapAlone() {
    const panel = $('#wrapup-alone');
    const show = !!wrapState && wrapConfigured() && !calls.has(wrapState.callID);
    panel.hidden = !show;
    if (!show) return;
    drawChoices($('[data-role=wrapup]', panel), 'wrapup-alone', '');
    renderWrapRow(panel, null);
  }

  $('#wrapup-alone [data-action=wrapup]').addEventListener('click', () => {
    if (!wrapState) return;
    wrapAloneStatus = sendWrapUp(wrapState.callID, $('#wrapup-alone [data-role=wrapup]'));
    renderWrapAlone();
  });

  // finishWrapUp sends the disposition chosen, and the note written, if any.
  function finishWrapUp(call) {
    const ta = $('.note-form textarea', call.el);
    if (ta.value.trim() && !call.pendingNote && !$('[data-role=note-form]', call.el).hidden) sendNote(call, ta.value);
    call.wrapStatus = sendWrapUp(call.id, $('[data-role=wrapup]', call.el));
    renderWrapUp(call);
  }

  // sendWrapUp sends the choice made in box and returns the state to show.
  function sendWrapUp(callID, box) {
    const picked = $('input:checked', box);
    if (!picked) {
      const first = $('input', box);
      if (first) first.focus();
      return { kind: 'error', key: 'wrapup.pick' };
    }
    if (!send({ type: 'wrapup', call_id: callID, code: picked.value, ref: 'w' + (++wrapRef) })) {
      return { kind: 'error', key: 'wrapup.offline' };
    }
    return { kind: 'pending', key: 'wrapup.saving' };
  }

  // onWrappedUp: the server keeps the disposition (from this tab or
  // another of the agent's): the agent is ready again.
  function onWrappedUp(callID, data) {
    const saved = { kind: 'ok', key: 'wrapup.saved', params: { label: data.label || data.code } };
    if (wrapState && wrapState.callID === callID) {
      wrapState = null;
      wrapAloneStatus = null;
    }
    const call = calls.get(callID);
    if (call && call.el) {
      call.mine = true;
      call.wrapped = { code: data.code, label: data.label };
      call.wrapStatus = saved;
      renderWrapUp(call);
      if (call.place === 'focus') arrange();
    }
    tickWrapUp();
  }

  function onWrapUpRefused(callID, key, text) {
    const status = { kind: 'error', key: key, text: text };
    const call = calls.get(callID);
    if (call && call.el) {
      call.wrapStatus = status;
      renderWrapUp(call);
    } else {
      wrapAloneStatus = status;
      renderWrapAlone();
    }
  }

  // onHello takes what the server asks of this page: the wrap-up, and the
  // agent's wrap-up state as the history has it (a wrap-up begun before
  // the page was opened, or already finished in another tab).
  function onHello(data, at) {
    notesByCall = !!data.notes_by_call;
    searchLimits = data.search || null;
    wrapSettings = data.wrapup || null;
    const st = data.state;
    if (!wrapKeeps() || (st && st.ready)) {
      wrapState = null;
    } else if (st && st.call_id) {
      // The server's clock says how long is left; this browser's counts it.
      const left = st.until ? Date.parse(st.until) - Date.parse(at) : 0;
      wrapState = { callID: st.call_id, until: st.until ? Date.now() + (isNaN(left) ? 0 : left) : 0 };
      const call = calls.get(st.call_id);
      if (call) call.mine = true;
    }
    for (const call of calls.values()) if (call.el) renderState(call);
    tickWrapUp();
  }

  // ---- unknown callers: search and link ----------------------------------
  //
  // A caller the directory did not know by number: the agent searches the
  // directory (name, customer number, e-mail) and links the number to the
  // customer found. The server keeps the link and builds the card for the
  // customer at once (a card message); the caller's next call resolves by
  // it. What the agent typed stays in this tab: results come back by ref.

  let searchLimits = null; // what a search takes (the hello); null: no search here
  let findRef = 0;
  const LINK_WAIT_MS = 15000;

  function canFind(call) {
    const card = call.card;
    return !!searchLimits && !!card && card.resolution === 'unknown' && !!card.phone &&
      !(card.caller || {}).withheld && (call.state === 'ringing' || call.state === 'answered');
  }

  function renderFind(call) {
    const el = $('[data-role=find]', call.el);
    if (!el) return;
    const f = call.find;
    if (f && f.linking && call.card && call.card.customer && call.card.customer.id === f.linking.id) {
      // The card of the customer the agent linked: said once.
      const said = t('find.linked', { number: displayNumber(call.card), name: f.linking.name });
      notice(said, { 'data-kind': 'linked', 'data-call-id': call.id });
      announce(said);
      call.find = null;
    }
    const show = canFind(call);
    el.hidden = !show;
    if (!show) return;
    if (!el.firstElementChild) buildFind(call, el);
    drawFind(call, el);
  }

  function buildFind(call, el) {
    const id = 'find-' + (++findRef);
    const input = h('input', {
      type: 'search', id: id, name: 'q', autocomplete: 'off', spellcheck: 'false', 'data-role': 'find-text',
      minlength: searchLimits.min_length, maxlength: searchLimits.max_length,
      'aria-describedby': id + '-status', 'data-i18n-attr': 'placeholder:find.placeholder', placeholder: t('find.placeholder'),
    });
    // novalidate: the page says what is wrong in the agent's language.
    const form = h('form', { class: 'find-form', role: 'search', novalidate: true, 'aria-labelledby': id + '-title', onsubmit: ev => { ev.preventDefault(); searchCustomer(call, input.value); } },
      h('label', { for: id, class: 'find-label', 'data-i18n': 'find.label' }, t('find.label')),
      h('div', { class: 'find-row' }, input,
        h('button', { type: 'submit', class: 'btn', 'data-action': 'find', 'data-i18n': 'find.button' }, t('find.button'))),
      h('p', { class: 'find-status', id: id + '-status', 'data-role': 'find-status', 'aria-live': 'polite' }));
    el.setAttribute('aria-labelledby', id + '-title');
    el.append(
      h('h3', { id: id + '-title', 'data-i18n': 'find.title' }, t('find.title')),
      h('p', { class: 'find-hint', 'data-i18n': 'find.hint' }, t('find.hint')),
      form,
      h('ul', { class: 'find-results', 'data-role': 'find-results', 'data-i18n-attr': 'aria-label:find.results', 'aria-label': t('find.results'), hidden: true }));
  }

  // drawFind shows the status and the results; the list is drawn anew only
  // when they changed, so that a card update keeps the agent's focus.
  function drawFind(call, el) {
    const f = call.find || {};
    const status = $('[data-role=find-status]', el);
    const s = f.status;
    status.textContent = s ? (s.text || t(s.key, s.params)) : '';
    status.dataset.kind = s ? s.kind : '';
    const busy = !!f.linking;
    $('[data-action=find]', el).disabled = busy;
    const list = $('[data-role=find-results]', el);
    const results = f.results || [];
    if (list.screenpopDrawn !== results || list.screenpopLang !== lang) {
      list.screenpopDrawn = results;
      list.screenpopLang = lang;
      list.replaceChildren(...results.map(k => h('li', { class: 'find-result', 'data-customer-id': k.id },
        h('div', { class: 'find-who' },
          h('span', { class: 'find-name' }, k.name || k.id),
          h('span', { class: 'find-sub' }, [k.contact, k.city, k.email, t('caller.customerId', { id: k.id })].filter(Boolean).join(' · '))),
        h('button', {
          type: 'button', class: 'btn btn-small', 'data-action': 'link', 'data-customer-id': k.id,
          'aria-label': t('find.linkLabel', { name: k.name || k.id }), onclick: () => linkCustomer(call, k),
        }, t('find.link')))));
    }
    for (const b of $$('[data-action=link]', list)) b.disabled = busy;
    list.hidden = results.length === 0;
  }

  function redrawFind(call) {
    if (call.el) renderFind(call);
  }

  function searchCustomer(call, text) {
    text = text.trim().replace(/\s+/g, ' ');
    const f = call.find = call.find || {};
    if (f.linking) return;
    if ([...text].length < searchLimits.min_length) {
      f.status = { kind: 'error', key: 'find.tooShort', params: { count: searchLimits.min_length } };
      redrawFind(call);
      return;
    }
    const ref = 'f' + (++findRef);
    if (!send({ type: 'search', call_id: call.id, text: text, ref: ref })) {
      f.status = { kind: 'error', key: 'find.offline' };
      redrawFind(call);
      return;
    }
    f.ref = ref;
    f.status = { kind: 'pending', key: 'find.searching' };
    redrawFind(call);
  }

  // Results come to every tab of the agent: a tab shows only those of its
  // own, latest search.
  function onSearchResults(callID, data) {
    const call = calls.get(callID);
    if (!call || !call.find || call.find.ref !== data.ref) return;
    const f = call.find;
    f.results = data.customers || [];
    const n = f.results.length;
    if (n === 0) f.status = { kind: 'ok', key: 'find.none' };
    else f.status = { kind: 'ok', key: data.more ? 'find.more' : 'find.count', params: { count: n } };
    redrawFind(call);
  }

  function linkCustomer(call, k) {
    const f = call.find;
    if (!f || f.linking) return;
    const ref = 'l' + (++findRef);
    if (!send({ type: 'link', call_id: call.id, customer_id: k.id, ref: ref })) {
      f.status = { kind: 'error', key: 'find.offline' };
      redrawFind(call);
      return;
    }
    f.linking = { id: k.id, name: k.name || k.id, ref: ref };
    f.status = { kind: 'pending', key: 'find.linking', params: { name: f.linking.name } };
    redrawFind(call);
    setTimeout(() => {
      if (call.find === f && f.linking && f.linking.ref === ref) {
        f.linking = null;
        f.status = { kind: 'error', key: 'error.other' };
        redrawFind(call);
      }
    }, LINK_WAIT_MS);
  }

  // findRefused shows a refused search or link in the search box.
  function findRefused(call, data, key, text) {
    const f = call && call.find;
    if (!f || !call.el) return false;
    if (data.request === 'link') f.linking = null;
    f.status = { kind: 'error', key: key, text: text };
    redrawFind(call);
    return true;
  }

  // ---- links to other systems --------------------------------------------
  //
  // The card's links ("Open in CRM") come filled in for this agent by the
  // server; one may open by itself when the agent answers: in one tab of
  // the browser only (the one that rang, else the first to claim it), once.

  const OPENED_KEY = 'screenpop.opened';
  const OPENED_MEMORY_MS = 12 * 60 * 60 * 1000;
  // A tab that did not ring waits this long for the one that did.
  const OPEN_DEFER_MS = 600;
  const OPEN_HOLD_MS = 2000;

  function linkLabel(l) {
    return (l.labels && (l.labels[lang] || l.labels[locale])) || l.label;
  }

  function safeLink(l) {
    return /^https?:\/\//i.test(l.url || '');
  }

  function renderLinks(call) {
    const el = $('[data-role=links]', call.el);
    if (!el) return;
    const links = ((call.card && call.card.links) || []).filter(safeLink);
    el.hidden = links.length === 0;
    el.replaceChildren(...links.map(l => h('a', {
      class: 'card-link', href: l.url, target: '_blank', rel: 'noopener noreferrer',
      'data-open-on-answer': l.open_on_answer ? 'true' : undefined, 'aria-label': t('links.newTab', { label: linkLabel(l) }),
    }, linkLabel(l))));
  }

  // openedMemory is rememberAlerted for the links opened on answer.
  function openedMemory(key, owner) {
    let seen = {};
    try { seen = JSON.parse(localStorage.getItem(OPENED_KEY) || '{}'); } catch (e) { seen = {}; }
    const now = Date.now();
    for (const k of Object.keys(seen)) if (!seen[k] || now - seen[k].at > OPENED_MEMORY_MS) delete seen[k];
    if (owner === undefined) return seen[key] || null;
    if (!seen[key]) seen[key] = { at: now, tab: owner };
    try { localStorage.setItem(OPENED_KEY, JSON.stringify(seen)); } catch (e) { /* full or private */ }
    return seen[key];
  }

  function openOnAnswer(call) {
    const link = ((call.card && call.card.links) || []).find(l => l.open_on_answer && safeLink(l));
    if (!link) return;
    const key = claimKey(call);
    if (openedMemory(key)) return;
    const rang = rememberAlerted(key);
    setTimeout(() => claimOpen(key, () => openLink(link)), rang && rang.tab !== tabID ? OPEN_DEFER_MS : 0);
  }

  function claimOpen(key, open) {
    if (openedMemory(key)) return;
    if (navigator.locks && navigator.locks.request) {
      // Queued, not ifAvailable, and held a while after: the next tab gets
      // it once this tab's note in localStorage has reached it (another
      // tab's process sees it a moment later, not at once).
      navigator.locks.request('screenpop.open.' + key, () => {
        if (openedMemory(key)) return null;
        openedMemory(key, tabID);
        open();
        return new Promise(resolve => setTimeout(resolve, OPEN_HOLD_MS));
      }).catch(() => { /* the lock manager refused: not from this tab */ });
      return;
    }
    openedMemory(key, tabID);
    setTimeout(() => {
      const owner = openedMemory(key);
      if (owner && owner.tab === tabID) open();
    }, ALERT_SETTLE_MS);
  }

  // openLink opens a blank tab first and cuts it off this page before it
  // goes to the link: the other system never holds a handle on this page.
  // A browser that blocks it gets a notice with the link to click.
  function openLink(link) {
    const label = linkLabel(link);
    let w = null;
    try { w = window.open('', '_blank'); } catch (e) { w = null; }
    if (w) {
      try { w.opener = null; } catch (e) { /* nothing to cut */ }
      w.location.href = link.url;
      notice(t('links.opened', { label: label }), { 'data-kind': 'opened' });
      return;
    }
    const a = h('a', { class: 'notice-link', href: link.url, target: '_blank', rel: 'noopener noreferrer' }, label);
    notice([t('links.blocked', { label: label }), ' ', a], { 'data-kind': 'blocked' }, 20000);
  }

  // ---- requests ----------------------------------------------------------

  function send(req) {
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(JSON.stringify(req));
    return true;
  }

  // ---- acknowledgements --------------------------------------------------
  //
  // The page tells the daemon when a pop is on the agent's screen ('shown')
  // and when it is there whole, no section or earlier call still loading
  // ('complete'): once the frame that draws it has been painted, so a tab
  // in the background (which paints nothing) tells when it is seen. Each
  // stage once per call; the daemon times them by its own clock, and
  // ignores repeats and calls the agent does not hold (pop/README.md).

  function cardLoading(card) {
    return !!card.history_loading || (card.sections || []).some(s => s.status === 'loading');
  }

  function acknowledge(call) {
    if (!call || !call.card || call.acked === 'complete' || call.ackPending) return;
    if (call.state !== 'ringing' && call.state !== 'answered') return;
    if (call.acked === 'shown' && cardLoading(call.card)) return;
    call.ackPending = true;
    // The frame callback runs before the paint; the task after it, once
    // painted.
    requestAnimationFrame(() => setTimeout(() => {
      call.ackPending = false;
      if (call.state !== 'ringing' && call.state !== 'answered') return;
      const stage = cardLoading(call.card) ? 'shown' : 'complete';
      if (call.acked === stage) return;
      if (send({ type: 'shown', call_id: call.id, stage: stage })) call.acked = stage;
    }, 0));
  }

  function selectCustomer(call, customerID) {
    if (!send({ type: 'select', call_id: call.id, customer_id: customerID })) {
      notice(t('notice.selectOffline'), { 'data-kind': 'error' });
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
    text = text.trim();
    if (!text) return;
    if (text.length > MAX_NOTE) {
      setNoteStatus(call, 'error', 'notes.tooLong', { max: MAX_NOTE });
      return;
    }
    const ref = 'n' + (++noteRef);
    if (!send({ type: 'note', call_id: call.id, text: text, ref: ref })) {
      setNoteStatus(call, 'error', 'notes.offline');
      return;
    }
    call.pendingNote = ref;
    setNoteStatus(call, 'pending', 'notes.saving');
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
    const note = data.note || {};
    const i = note.id ? call.savedNotes.findIndex(n => n.id === note.id) : -1;
    if (i >= 0) {
      // An edit: the note reads anew; the history keeps the original.
      call.savedNotes[i] = note;
      if (call.editing && call.editing.id === note.id) call.editing = null;
      setNoteStatus(call, 'ok', 'notes.saved');
      return;
    }
    call.savedNotes.push(note);
    if (call.pendingNote === data.ref) {
      $('.note-form textarea', call.el).value = '';
      call.pendingNote = null;
    }
    setNoteStatus(call, 'ok', 'notes.saved');
  }

  // A refusal is said in the agent's language when its code is known; the
  // server's English message is the fallback for a code this page predates.
  function onError(callID, data) {
    const call = calls.get(callID);
    const key = 'error.' + data.code;
    const text = has(key) ? '' : (data.message || t('error.other'));
    if ((data.request === 'search' || data.request === 'link') && findRefused(call, data, has(key) ? key : 'error.other', text)) return;
    if (data.request === 'note' && call && call.el) {
      call.pendingNote = null;
      setNoteStatus(call, 'error', has(key) ? key : 'error.other', null, text);
      return;
    }
    if (data.request === 'note_edit' && call && call.editing) {
      // The change stays in its box, to save again.
      call.editing.status = { kind: 'error', key: has(key) ? key : 'error.other', text: text };
      renderNotes(call);
      return;
    }
    if (data.request === 'wrapup') {
      onWrapUpRefused(callID, has(key) ? key : 'error.other', text);
      return;
    }
    if (data.request === 'select' && call) {
      call.selecting = false;
      renderCandidates($('[data-role=candidates]', call.el), call);
    }
    notice(text || t(key), { 'data-kind': 'error', 'data-code': data.code || '' });
  }

  // ---- connection --------------------------------------------------------

  function showAgent(agent) {
    const el = $('#agent');
    el.textContent = agent.name ? t('agent.nameId', { name: agent.name, id: agent.id }) : t('agent.id', { id: agent.id });
    el.dataset.agentId = agent.id;
  }

  function tokenExpired() {
    return me.exp && me.exp * 1000 < Date.now();
  }

  // markStale says on every live card that it may be out of date: while the
  // page is cut off, a ringing card may have been answered elsewhere or the
  // caller may have hung up. The next snapshot or replay puts it right.
  function markStale(on) {
    for (const call of calls.values()) {
      const stale = on && (call.state === 'ringing' || call.state === 'answered');
      if (stale === !!call.stale) continue;
      call.stale = stale;
      if (stale) stopAlert(call);
      renderState(call);
    }
    updateChrome();
  }

  // showInvalid: the server refused the sign-in. Retrying would not help;
  // the agent needs a new link (or to sign in again, when the server says
  // where).
  function showInvalid(loginURL, reasonKey) {
    invalid = true;
    clearTimeout(retryTimer);
    retryTimer = null;
    clearInterval(countdown);
    markStale(true);
    setConnection('signed-out', 'conn.invalid');
    invalidReason = reasonKey || 'invalid.text';
    $('[data-role=invalid-text]').textContent = t(invalidReason);
    const link = $('#invalid-login');
    const safe = safeLogin(loginURL);
    link.hidden = !safe;
    if (safe) link.href = safe;
    updateChrome();
  }

  // safeLogin accepts only a path on this site: a sign-in link from a
  // response must not send the agent elsewhere.
  function safeLogin(u) {
    if (typeof u !== 'string' || !u.startsWith('/') || u.startsWith('//') || u.startsWith('/\\')) return '';
    return u;
  }

  // checkSignIn asks the server whether the token (or the session cookie)
  // is good, because a refused WebSocket tells the page nothing: the
  // browser reports close code 1006 for a 401 and for a dead server alike.
  // It resolves to 'ok', 'invalid' (having shown so), or 'unknown' (no
  // such endpoint on this server, or no answer).
  // On opening the page (opening), a company sign-in starts by itself.
  function checkSignIn(opening) {
    const headers = token ? { Authorization: 'Bearer ' + token } : {};
    return fetch(SESSION_PATH, { headers: headers, cache: 'no-store', credentials: 'same-origin' })
      .then(resp => {
        if (resp.status === 200) {
          return resp.json().catch(() => ({})).then(body => {
            if (!token) signedInBySession(body);
            return 'ok';
          });
        }
        if (resp.status !== 401 && resp.status !== 403) return 'unknown';
        return resp.json().catch(() => ({})).then(body => {
          if (resp.status === 403 && body.error !== 'not_agent') return 'unknown';
          if (!token && resp.status === 401) {
            signedOut(body.login_url, opening);
            return 'invalid';
          }
          showInvalid(body.login_url || '', resp.status === 403 ? 'invalid.notAgent' : '');
          return 'invalid';
        });
      })
      .catch(() => 'unknown');
  }

  // signedInBySession takes who the session cookie signs in, as the
  // server says: the socket then carries the cookie, not a token.
  function signedInBySession(info) {
    signedIn = true;
    signInEnded = false;
    sessionStorage.removeItem(AUTO_LOGIN_KEY);
    myID = info.agent_id || '';
    myName = info.name || '';
    if (myID) showAgent({ id: myID, name: myName });
    $('#signout').hidden = info.method !== 'session';
  }

  // signedOut: not signed in (no link, no session), or a session that
  // ended (its expiry, a sign-out elsewhere). With a company sign-in
  // (loginURL) one click signs in again; on opening the page it starts
  // by itself.
  function signedOut(loginURL, opening) {
    const safe = safeLogin(loginURL);
    signInEnded = signInEnded || signedIn;
    signedIn = false;
    companySignIn = !!safe;
    clearTimeout(retryTimer);
    retryTimer = null;
    clearInterval(countdown);
    $('#signout').hidden = true;
    if (opening && safe && startLogin(safe)) return;
    markStale(true);
    setConnection('signed-out', 'conn.signedOut');
    const link = $('#signin-login');
    link.hidden = !safe;
    if (safe) link.href = safe;
    renderSignIn();
    updateChrome();
  }

  // startLogin goes to the company sign-in, unless the page came back
  // from one moments ago still without a session.
  function startLogin(url) {
    const last = Number(sessionStorage.getItem(AUTO_LOGIN_KEY)) || 0;
    if (Date.now() - last < AUTO_LOGIN_HOLD_MS) return false;
    sessionStorage.setItem(AUTO_LOGIN_KEY, String(Date.now()));
    location.assign(url);
    return true;
  }

  // renderSignIn words the sign-in panel: the personal link of a demo, a
  // company sign-in, or a company sign-in that ended.
  function renderSignIn() {
    $('#signin h2').textContent = t(signInEnded ? 'signin.endedTitle' : 'signin.title');
    let text = t('signin.text');
    if (signInEnded) text = t('signin.ended');
    else if (companySignIn) text = t('signin.company');
    $('[data-role=signin-text]').textContent = text;
    $('#signin-login').textContent = t(signInEnded ? 'signin.again' : 'signin.button');
  }

  function renderConnecting() {
    const unreachable = failedInARow >= UNREACHABLE_AFTER;
    $('[data-role=connecting-title]').textContent = t(unreachable ? 'connecting.unreachableTitle' : 'connecting.title');
    $('[data-role=connecting-text]').textContent = t(unreachable ? 'connecting.unreachableText' : 'connecting.text');
  }

  function connect() {
    retryTimer = null;
    if (invalid) return;
    if (token && tokenExpired()) {
      showInvalid('', 'invalid.expired');
      return;
    }
    setConnection('connecting', attempts ? 'conn.reconnecting' : 'conn.connecting');
    const url = new URL('ws', location.href);
    url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
    url.hash = '';
    url.search = lastSeq ? '?since=' + lastSeq : '';
    let opened = false;
    try {
      ws = new WebSocket(url.toString(), token ? [SUBPROTOCOL, 'bearer.' + token] : [SUBPROTOCOL]);
    } catch (e) {
      scheduleReconnect();
      return;
    }
    ws.onopen = () => {
      opened = true;
      everOpen = true;
      attempts = 0;
      failedInARow = 0;
      setConnection('open', 'conn.open');
      // What the page shows is put right by the snapshot or the replay
      // that the server sends first on this connection.
      markStale(false);
      renderConnecting();
      updateChrome();
    };
    ws.onmessage = ev => {
      let msg;
      try { msg = JSON.parse(ev.data); } catch (e) { return; }
      handle(msg);
    };
    ws.onclose = ev => {
      ws = null;
      if (invalid) return;
      if (opened) markStale(true);
      if (opened && ev.code !== 4401) {
        scheduleReconnect(ev.code === 1013 ? 0 : undefined);
        return;
      }
      failedInARow++;
      if (token && tokenExpired()) {
        showInvalid('', 'invalid.expired');
        return;
      }
      setConnection('offline', 'conn.checking');
      checkSignIn().then(verdict => {
        if (verdict === 'invalid') return;
        // A page that was live cannot tell a daemon restarted with a new
        // signing secret from one that is down, when it has no sign-in check.
        if (verdict === 'unknown' && everOpen && failedInARow === UNREACHABLE_AFTER + 1) {
          notice(t('notice.stillOffline'), { 'data-kind': 'error' }, 15000);
        }
        renderConnecting();
        scheduleReconnect(ev.code === 1013 ? 0 : undefined);
        updateChrome();
      });
    };
  }

  function scheduleReconnect(delay) {
    if (retryTimer || invalid) return;
    attempts++;
    if (delay === undefined) {
      const base = Math.min(15000, 500 * Math.pow(2, attempts - 1));
      delay = Math.round(base * (0.75 + Math.random() * 0.5));
    }
    const until = Date.now() + delay;
    const tick = () => {
      const left = Math.max(0, Math.ceil((until - Date.now()) / 1000));
      if (left > 0) setConnection('offline', 'conn.retrying', { s: left });
      else setConnection('offline', 'conn.reconnecting');
      updateChrome();
    };
    tick();
    clearInterval(countdown);
    countdown = setInterval(tick, 1000);
    retryTimer = setTimeout(() => { clearInterval(countdown); connect(); }, delay);
  }

  // A sign-in link pasted into this tab changes only the fragment, which
  // does not reload the page: start over with the new token.
  window.addEventListener('hashchange', () => {
    if (/(?:^#|&)token=/.test(location.hash)) location.reload();
  });
  window.addEventListener('resize', () => showPanels());

  setLanguage(pickLanguage(prefs().lang));
  renderLanguageChoices();
  updateSettings();
  renderConnecting();
  if (token && !me.sub) {
    // Not a token at all: a link cut short when it was copied.
    showInvalid('', 'invalid.text');
    return;
  }
  if (!token) {
    // Without a link the page may still be signed in by a session cookie,
    // when the server offers one; otherwise it says how to sign in.
    setConnection('connecting', 'conn.connecting');
    checkSignIn(true).then(verdict => {
      if (verdict === 'ok') connect();
      else if (verdict !== 'invalid') signedOut('');
    });
    updateChrome();
    return;
  }
  showAgent({ id: me.sub, name: me.name });
  updateChrome();
  connect();
})();
