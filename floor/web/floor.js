// screenpop supervisor page: the floor view, live. Plain JavaScript, no
// build step: the daemon embeds this file. The server sends the whole
// view on every change (floor/README.md); the page keeps the waits
// ticking between two views. Every text a person reads comes from the
// message catalogs (i18n-*.js) through t().
'use strict';

(function () {
  // The agent page's: a link opened in the same tab, or the agent page
  // before, leave the sign-in here.
  const TOKEN_KEY = 'screenpop.token';
  const PREFS_KEY = 'screenpop.prefs';
  const SUBPROTOCOL = 'screenpop.floor.v1';
  const VIEW_PATH = 'view';
  const SOCKET_PATH = 'ws';

  const $ = (sel, root) => (root || document).querySelector(sel);
  const $$ = (sel, root) => [...(root || document).querySelectorAll(sel)];

  // h builds an element; text always goes through textContent.
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k === 'text') el.textContent = v;
      else el.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children.flat()) {
      if (c === undefined || c === null || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }

  // ---- language ----------------------------------------------------------

  const catalogs = window.screenpopFloorCatalogs || {};
  let catalog = catalogs.en || {};
  let plural = new Intl.PluralRules('en');
  let percent = new Intl.NumberFormat('en', { style: 'percent', maximumFractionDigits: 0 });
  let number = new Intl.NumberFormat('en');
  let dayFormat = new Intl.DateTimeFormat('en', { dateStyle: 'long', timeZone: 'UTC' });

  function prefs() {
    try { return JSON.parse(localStorage.getItem(PREFS_KEY) || '{}') || {}; } catch (e) { return {}; }
  }

  function savePrefs(change) {
    try { localStorage.setItem(PREFS_KEY, JSON.stringify(Object.assign(prefs(), change))); } catch (e) { /* private mode */ }
  }

  function pickLanguage(choice) {
    if (choice && catalogs[choice]) return choice;
    for (const l of navigator.languages || [navigator.language || 'en']) {
      const base = String(l).toLowerCase().split('-')[0];
      if (catalogs[base]) return base;
    }
    return 'en';
  }

  function setLanguage(code) {
    catalog = catalogs[code] || catalogs.en || {};
    const locale = (navigator.languages || []).find(l => String(l).toLowerCase().split('-')[0] === code) || code;
    plural = new Intl.PluralRules(locale);
    percent = new Intl.NumberFormat(locale, { style: 'percent', maximumFractionDigits: 0 });
    number = new Intl.NumberFormat(locale);
    dayFormat = new Intl.DateTimeFormat(locale, { dateStyle: 'long', timeZone: 'UTC' });
    document.documentElement.lang = code;
    document.documentElement.dir = catalog._dir || 'ltr';
    for (const el of $$('[data-i18n]')) el.textContent = t(el.dataset.i18n);
    document.title = t('title');
    render();
  }

  function t(key, params) {
    let s = catalog[key];
    if (s === undefined && catalogs.en) s = catalogs.en[key];
    if (s === undefined) return key;
    if (typeof s === 'object') s = s[plural.select(params && params.count)] || s.other;
    if (!params) return s;
    return s.replace(/\{(\w+)\}/g, (m, k) => (params[k] === undefined ? m : String(params[k])));
  }

  function renderLanguages() {
    const sel = $('#lang');
    const chosen = prefs().lang || '';
    sel.replaceChildren(h('option', { value: '', text: t('lang.auto') }),
      ...Object.keys(catalogs).map(code => h('option', { value: code, text: catalogs[code]._name || code })));
    sel.value = catalogs[chosen] ? chosen : '';
    sel.setAttribute('aria-label', t('lang.label'));
  }

  // ---- sign-in -----------------------------------------------------------

  function takeToken() {
    const m = location.hash.match(/(?:^#|&)token=([^&]+)/);
    if (m) {
      sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(m[1]));
      history.replaceState(null, '', location.pathname + location.search);
    }
    return sessionStorage.getItem(TOKEN_KEY);
  }

  const token = takeToken();

  function setConnection(state, key, params) {
    const el = $('#conn');
    el.dataset.connection = state;
    $('.conn-text', el).textContent = t(key, params);
  }

  // refuse shows why the floor is not shown: not signed in (a login link
  // when the daemon has a company sign-in), or no supervisor role.
  function refuse(reason, loginURL) {
    refused = reason;
    closeSocket();
    $('#floor').hidden = true;
    const panel = $('#refused');
    panel.hidden = false;
    panel.dataset.reason = reason;
    $('#refused-title').textContent = t('refused.' + reason + 'Title');
    $('[data-role=refused-text]', panel).textContent = t('refused.' + reason + 'Text');
    const link = $('#refused-login');
    const safe = safeLogin(loginURL);
    link.hidden = !safe;
    if (safe) link.href = safe;
    setConnection('signed-out', reason === 'notSupervisor' ? 'conn.notSupervisor' : 'conn.signedOut');
  }

  // safeLogin takes a login URL from the server only when it stays on
  // this origin or goes over https.
  function safeLogin(u) {
    if (!u) return '';
    try {
      const url = new URL(u, location.href);
      if (url.origin === location.origin || url.protocol === 'https:') return url.toString();
    } catch (e) { /* not a URL */ }
    return '';
  }

  // check asks the floor view once over HTTP, which judges the sign-in as
  // the socket does and says why it refuses: a refused WebSocket tells a
  // page nothing. 'ok', 'refused' (shown), or 'unknown' (no answer).
  function check() {
    const headers = token ? { Authorization: 'Bearer ' + token } : {};
    return fetch(VIEW_PATH, { headers: headers, cache: 'no-store', credentials: 'same-origin' })
      .then(resp => resp.json().catch(() => ({})).then(body => {
        if (resp.status === 200) {
          showWho(body.supervisor || {});
          if (body.view) take(body.view);
          return 'ok';
        }
        if (resp.status === 401) { refuse('signedOut', body.login_url); return 'refused'; }
        if (resp.status === 403) {
          refuse(body.error === 'not_supervisor' ? 'notSupervisor' : 'signedOut', body.login_url);
          return 'refused';
        }
        return 'unknown';
      }))
      .catch(() => 'unknown');
  }

  function showWho(who) {
    const el = $('#who');
    el.textContent = who.id ? t('who', { name: who.name || who.id, id: who.id }) : '';
  }

  // ---- socket ------------------------------------------------------------

  let ws = null;
  let attempts = 0;
  let retryTimer = null;
  let refused = '';

  function connect() {
    retryTimer = null;
    if (refused) return;
    setConnection('connecting', attempts ? 'conn.reconnecting' : 'conn.connecting');
    const url = new URL(SOCKET_PATH, location.href);
    url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
    url.hash = '';
    url.search = '';
    let opened = false;
    try {
      ws = new WebSocket(url.toString(), token ? [SUBPROTOCOL, 'bearer.' + token] : [SUBPROTOCOL]);
    } catch (e) {
      scheduleReconnect();
      return;
    }
    ws.onopen = () => {
      opened = true;
      attempts = 0;
      setConnection('open', 'conn.open');
    };
    ws.onmessage = ev => {
      let msg;
      try { msg = JSON.parse(ev.data); } catch (e) { return; }
      if (msg.type === 'floor' && msg.data) take(msg.data);
    };
    ws.onclose = ev => {
      ws = null;
      if (refused) return;
      if (ev.code === 4401) { refuse('signedOut'); return; }
      if (ev.code === 4403) { refuse('notSupervisor'); return; }
      setConnection('offline', 'conn.offline');
      if (opened) { scheduleReconnect(); return; }
      check().then(verdict => { if (verdict !== 'refused') scheduleReconnect(); });
    };
  }

  function closeSocket() {
    if (ws) {
      ws.onclose = null;
      ws.close();
      ws = null;
    }
    clearTimeout(retryTimer);
    retryTimer = null;
  }

  function scheduleReconnect() {
    if (retryTimer || refused) return;
    attempts++;
    const base = Math.min(15000, 500 * Math.pow(2, attempts - 1));
    retryTimer = setTimeout(connect, Math.round(base * (0.75 + Math.random() * 0.5)));
  }

  // ---- the view ----------------------------------------------------------

  let view = null;
  let received = 0; // performance.now() when view came

  function take(v) {
    view = v;
    received = performance.now();
    $('#refused').hidden = true;
    $('#floor').hidden = false;
    render();
  }

  // elapsed is how long ago the view was taken, in seconds: waits tick on
  // the page's own clock between views, never against the server's.
  function elapsed() { return view ? (performance.now() - received) / 1000 : 0; }

  function clock(seconds) {
    const s = Math.max(0, Math.floor(seconds));
    const m = Math.floor(s / 60);
    const rest = String(s % 60).padStart(2, '0');
    if (m < 60) return t('duration.ms', { m: m, s: rest });
    return t('duration.hms', { h: Math.floor(m / 60), m: String(m % 60).padStart(2, '0'), s: rest });
  }

  function since(iso) {
    const at = Date.parse(iso);
    if (!iso || isNaN(at) || !view) return '';
    // Against the view's own time, then the page's clock since.
    return clock((Date.parse(view.at) - at) / 1000 + elapsed());
  }

  function kpi(name, value, text, hint) {
    const el = $('[data-kpi="' + name + '"]');
    el.dataset.value = value === null || value === undefined ? '' : String(value);
    $('.kpi-value', el).textContent = text;
    $('.kpi-hint', el).textContent = hint || '';
  }

  function agentLabel(a) {
    return a.name ? t('agent.nameId', { name: a.name, id: a.id }) : t('agent.id', { id: a.id });
  }

  function render() {
    if (!view) return;
    const v = view;
    const today = v.today || {};
    const waiting = v.waiting || [];
    const longest = waiting.length ? v.longest_wait + elapsed() : 0;
    kpi('waiting', waiting.length, number.format(waiting.length));
    kpi('longest-wait', Math.floor(longest), waiting.length ? clock(longest) : t('kpi.none'));
    kpi('on-call', v.on_call, number.format(v.on_call || 0));
    kpi('answered', today.answered || 0, number.format(today.answered || 0));
    kpi('abandoned', today.abandoned || 0, number.format(today.abandoned || 0));
    const slHint = t('kpi.serviceLevelHint', { s: v.service_level_seconds });
    if (v.service_level === null || v.service_level === undefined) kpi('service-level', null, t('kpi.none'), slHint);
    else kpi('service-level', v.service_level, percent.format(v.service_level), slHint);
    if (v.popped_share === null || v.popped_share === undefined) kpi('popped', null, t('kpi.none'), t('kpi.poppedNone'));
    else kpi('popped', v.popped_share, percent.format(v.popped_share), t('kpi.poppedHint', { popped: today.popped || 0, count: today.answered || 0 }));

    renderWaiting(waiting);
    renderAgents(v.agents || []);
    renderHealth(v.health || []);
    const day = new Date(v.day + 'T00:00:00Z');
    const footer = [t('footer.day', { day: isNaN(day) ? v.day : dayFormat.format(day) })];
    footer.push(v.partial ? t('footer.partial') : t('footer.daemons', { count: (v.daemons || []).length }));
    $('[data-role=footer]').textContent = footer.join(' · ');
    $('[data-role=footer]').dataset.partial = v.partial ? 'true' : 'false';
  }

  function cell(labelKey, ...content) {
    return h('td', { 'data-label': t(labelKey) }, ...content);
  }

  function renderWaiting(waiting) {
    $('[data-role=waiting-empty]').hidden = waiting.length > 0;
    $('#waiting').hidden = waiting.length === 0;
    $('#waiting tbody').replaceChildren(...waiting.map(c => {
      const agents = c.agents || [];
      const ringing = agents.length === 0
        ? h('span', { class: 'muted', text: t(c.transfer ? 'waiting.transfer' : 'waiting.queued') })
        : h('ul', { class: 'ringing' }, agents.map(a => h('li', { 'data-agent-id': a.id, 'data-connected': a.connected ? 'true' : 'false' },
          agentLabel(a), a.connected ? null : h('span', { class: 'badge badge-warn', text: t('waiting.noPage') }))));
      return h('tr', { 'data-call-id': c.id },
        cell('waiting.wait', h('span', { class: 'wait', 'data-wait': Math.floor(c.wait), text: clock(c.wait + elapsed()) })),
        cell('waiting.caller', c.caller ? h('span', { class: 'number', dir: 'ltr', text: c.caller }) : h('span', { class: 'muted', text: t('waiting.withheld') })),
        cell('waiting.line', c.line === 'other' ? t('waiting.otherLine') : c.line),
        cell('waiting.ringingAt', ringing));
    }));
  }

  function renderAgents(agents) {
    $('[data-role=agents-empty]').hidden = agents.length > 0;
    $('#agents').hidden = agents.length === 0;
    $('#agents tbody').replaceChildren(...agents.map(a => {
      const blind = a.state === 'ringing' && !a.connected;
      let forText = '';
      if (a.state === 'on_call' || a.state === 'ringing') forText = since(a.since);
      else if (a.state === 'wrap_up' && a.until) forText = t('agents.until', { time: new Date(a.until).toLocaleTimeString(document.documentElement.lang, { hour: '2-digit', minute: '2-digit' }) });
      return h('tr', { 'data-agent-id': a.id, 'data-state': a.state, 'data-connected': a.connected ? 'true' : 'false' },
        h('th', { scope: 'row', 'data-label': t('agents.name') }, agentLabel(a)),
        cell('agents.state', h('span', { class: 'badge state-' + a.state, text: t('state.' + a.state) }),
          blind ? h('span', { class: 'badge badge-warn', text: t('agents.blind') }) : null),
        cell('agents.page', h('span', { class: 'page-' + (a.connected ? 'open' : 'closed'), text: t(a.connected ? 'page.open' : 'page.closed') })),
        cell('agents.since', forText));
    }));
  }

  // renderHealth groups the systems by kind (phone systems first), each
  // a chip with its state in words: a dozen sources stay a few lines.
  function renderHealth(health) {
    $('[data-role=health-empty]').hidden = health.length > 0;
    const kinds = [];
    for (const x of health) if (!kinds.includes(x.kind)) kinds.push(x.kind);
    $('#health').replaceChildren(...kinds.map(kind => h('div', { class: 'health-group' },
      h('h3', { class: 'health-kind', text: t('health.kind.' + kind) }),
      h('ul', { class: 'health-list' }, health.filter(x => x.kind === kind).map(x => {
        const where = (x.daemons || []).length ? t('health.on', { daemons: x.daemons.join(', ') }) : '';
        return h('li', { 'data-kind': x.kind, 'data-name': x.name, 'data-status': x.status, class: 'status-' + x.status },
          h('span', { class: 'health-name', text: x.name }),
          h('span', { class: 'health-status', text: t('health.status.' + x.status) }),
          where ? h('span', { class: 'health-where', text: where }) : null);
      })))));
  }

  // ---- start -------------------------------------------------------------

  $('#lang').addEventListener('change', ev => {
    savePrefs({ lang: ev.target.value });
    setLanguage(pickLanguage(ev.target.value));
    renderLanguages();
  });
  window.addEventListener('hashchange', () => {
    if (/(?:^#|&)token=/.test(location.hash)) location.reload();
  });
  setLanguage(pickLanguage(prefs().lang));
  renderLanguages();
  setConnection('connecting', 'conn.connecting');
  // The waits tick between two views.
  setInterval(() => { if (view && !$('#floor').hidden) render(); }, 1000);
  check().then(verdict => { if (verdict !== 'refused') connect(); });
})();
